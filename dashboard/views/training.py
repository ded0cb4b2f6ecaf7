"""The training view's callbacks: uploads and inbox picks, preview, a background training job, its status.

Training runs as a Dash background callback (diskcache manager). The form becomes a
:class:`~core.workflow.request.TrainRequest` (:func:`build_request`, plain and tested), and the job
process runs it with :func:`~core.workflow.request.supervise` (a fresh ``python -m core add-dataset``
process: torch hangs in a forked one, see NOTES). Progress goes through the job registry: the worker
writes a status file, and every open page polls it, so a reloaded page (or another browser) finds
the running job, its progress and its cancel button.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
import dash_leaflet as dl
import numpy as np
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from core import knobs
from core.errors import InputError, InputProblems
from core.geo.meshcode import code_bounds
from core.mobility.columns import GPS, ROLES, STAYS, ColumnMap, ColumnsNotRecognised, parse_optional
from core.workflow.isolate import run_limited
from core.workflow.request import TrainRequest, busy_status, supervise
from core.workflow.userdata import (
    USER_RELEASE,
    anchor_sets,
    dataset_exists,
    dataset_name,
    delete_dataset,
    describe_dataset,
    inbox_files,
    input_columns,
    preview,
    rename_dataset,
    resolve_inbox,
    safe_file_name,
    save_upload,
    upload_folder,
    user_dataset_name,
)

from .. import ids
from ..catalog import app_context
from ..components import knob_input


def anchor_options(data_dir: Path) -> list[dict]:
    def where(folder: Path) -> str:
        try:
            return str(folder.relative_to(data_dir))
        except ValueError:
            return str(folder)

    return [{"label": f"{name} ({where(folder)})", "value": name} for name, folder in sorted(anchor_sets(data_dir).items())]


def inbox_options(data_dir: Path) -> list[dict]:
    return [{"label": f"{f['name']} ({f['size'] / 2**20:.1f} MB)", "value": f["name"]} for f in inbox_files(data_dir)]


def input_paths(data_dir: Path, source: dict | None) -> list[Path]:
    """The files of the chosen input (an upload token or an inbox name), validated."""
    if not source:
        raise InputError("input", "no file chosen", expected="an upload or a file from the inbox")
    if not isinstance(source, dict):  # the store lives in the browser: anything may come back
        raise InputError("input", "not a file choice", expected="an upload or a file from the inbox")
    if source.get("kind") == "inbox":
        return [resolve_inbox(data_dir, source.get("name"))]
    folder = upload_folder(data_dir, source.get("token"))
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise InputError("upload", "the upload holds no file")
    return files


def _first_rows(exc: InputError) -> str:
    values = list(exc.values) + [None] * len(exc.rows)
    shown = ", ".join(f"{r}" + (f" ({v!r})" if v is not None else "") for r, v in zip(exc.rows, values))
    more = exc.n_bad - len(exc.rows)
    return shown + (f" and {more:,} more" if more > 0 else "")


def problems_view(exc: InputProblems) -> html.Div:
    """Every problem of a bad file: one row per column and problem, with its count and first rows."""
    n_rows = sum(p.n_bad for p in exc.problems)
    return html.Div(
        [
            html.Strong("Problems: "),
            html.Span(
                f"{exc.source}: {len(exc.problems)} problems in {len({p.column for p in exc.problems})} columns "
                f"({n_rows:,} row problems in all).",
                className="error-text",
            ),
            html.Table(
                className="error-problems",
                children=[
                    html.Thead(html.Tr([html.Th("column"), html.Th("problem"), html.Th("rows"), html.Th("first rows (value)")])),
                    html.Tbody(
                        [
                            html.Tr(
                                [
                                    html.Td(p.column or ""),
                                    html.Td(p.problem + (f"; expected {p.expected}" if p.expected else "")),
                                    html.Td(f"{p.n_bad:,}"),
                                    html.Td(_first_rows(p)),
                                ]
                            )
                            for p in exc.problems
                        ]
                    ),
                ],
            ),
        ],
        className="error",
        role="alert",
    )


def error_view(exc: InputError) -> html.Div:
    """A readable error: the message, then the first offending rows with their values (every problem for a bad file)."""
    if isinstance(exc, InputProblems):
        return problems_view(exc)
    children = [html.Strong("Problem: "), html.Span(str(exc), className="error-text")]
    rows = getattr(exc, "rows", [])
    if rows:
        values = list(getattr(exc, "values", [])) + [""] * len(rows)
        children.append(
            html.Table(
                className="error-rows",
                children=[
                    html.Thead(html.Tr([html.Th("row"), html.Th(exc.column or "value")])),
                    html.Tbody(
                        [
                            html.Tr([html.Td(str(r)), html.Td(repr(v) if isinstance(v, str) else str(v))])
                            for r, v in zip(rows, values)
                        ]
                    ),
                ],
            )
        )
        more = exc.n_bad - len(rows)
        if more > 0:
            children.append(html.P(f"... and {more:,} more rows with this problem."))
    return html.Div(children, className="error", role="alert")


def warnings_view(warnings: list[str] | None) -> html.Div | None:
    """The input's warnings (heavy privacy drop, too few meshes), or ``None``."""
    if not warnings:
        return None
    return html.Div([html.Strong("Warning"), *[html.P(w) for w in warnings]], className="warning", role="note")


def preview_view(rep: dict, basemap: str | None) -> html.Div:
    sizes = ", ".join(f"{n:,} of {s} m" for s, n in sorted(rep["meshes_by_size"].items()))
    facts = [
        (
            "input",
            f"{'raw GPS' if rep['kind'] == 'gps' else 'stay table'}: {', '.join(rep['files'][:4])}{' ...' if len(rep['files']) > 4 else ''}",
        )
    ]
    if rep["kind"] == "gps":
        priv = rep["privacy"]
        facts += [
            ("fixes", f"{rep['fixes']:,} from {rep['people']:,} people"),
            ("stays detected", f"{rep['stays_detected']:,}"),
            (
                "privacy rule",
                f"meshes with more than {priv['min_users']} people: {priv['stays_out']:,} stays kept, {priv['stays_dropped']:,} dropped",
            ),
        ]
    facts += [
        ("stays", f"{rep['stays']:,}" + (f" ({rep['skipped']:,} without a mesh skipped)" if rep.get("skipped") else "")),
        ("meshes", f"{rep['meshes']:,} ({sizes})"),
        ("date range", " to ".join(rep["date_range"]) if rep.get("date_range") else "not in a stay table (weekday names only)"),
        ("weekend / holiday stays", f"{rep['weekend_holiday_share']:.0%} ({rep['holiday_stays']:,} on national holidays)"),
        (
            "by weekday",
            "  ".join(f"{d} {x:.0%}" for d, x in zip(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), rep["weekday_share"])),
        ),
    ]
    if rep.get("mapping"):
        facts.append(("mesh ids", f"mapped to codes by {rep['mapping']}"))
    if rep.get("columns"):
        facts.append(("columns", ", ".join(f"{role} = {col}" for role, col in rep["columns"].items())))
    codes, msizes = np.asarray(rep["sample"]["codes"], np.int64), np.asarray(rep["sample"]["sizes"], np.int64)
    s, w, n, e = code_bounds(codes, msizes)
    features = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [[[a, b], [a, c], [d, c], [d, b], [a, b]]]},
        }
        for a, b, c, d in zip(w.tolist(), s.tolist(), n.tolist(), e.tolist())
    ]
    bs, bw, bn, be = rep["bounds"]
    layers = ([dl.TileLayer(url=basemap, maxZoom=19)] if basemap else []) + [
        dl.GeoJSON(
            data={"type": "FeatureCollection", "features": features}, style={"color": "#c0392b", "weight": 1, "fillOpacity": 0.5}
        )
    ]
    shown = "" if len(codes) == rep["meshes"] else f" ({len(codes):,} of {rep['meshes']:,} shown)"
    tag = f"{bs:.5f}-{bw:.5f}-{len(codes)}".replace(".", "_")
    small_map = html.Div(
        id=f"preview-map-at-{tag}",
        children=dl.Map(
            id="preview-map",
            bounds=[[bs, bw], [bn, be]],
            trackViewport=False,
            children=layers,
            style={"height": "320px"},
            zoomAnimation=False,
            fadeAnimation=False,
        ),
    )
    return html.Div(
        className="row",
        children=[
            html.Div(
                className="half",
                children=[
                    warnings_view(rep.get("warnings")),
                    html.Dl(className="preview-facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
                ],
            ),
            html.Div(className="half", children=[html.P("Where the meshes are" + shown, className="hint"), small_map]),
        ],
    )


def gps_options(tz: object, distance: object, minutes: object):  # -> core.mobility.gps.GpsOptions
    """The stay rule chosen in the form (defaults where a field is empty; values clamped)."""
    from core.mobility.gps import GpsOptions

    tz = str(tz).strip() if tz not in (None, "") else knobs.TIME_ZONE.default
    return GpsOptions(
        tz=tz,
        distance_m=knobs.STAY_RADIUS.clamp(distance if distance not in (None, "") else knobs.STAY_RADIUS.default),
        min_minutes=knobs.MIN_STAY.clamp(minutes if minutes not in (None, "") else knobs.MIN_STAY.default),
    )


def build_request(
    data_dir: Path,
    paths: list[Path],
    mapping: Path | None,
    mode: object,
    anchors: object,
    name: object,
    period: object,
    dim: object = None,
    tol: object = None,
    schedule: object = None,
    epochs: object = None,
    min_users: object = None,
    tz: object = None,
    distance: object = None,
    minutes: object = None,
    columns: object = None,
) -> TrainRequest:
    """The training request the form describes (every value from the browser clamped or checked).

    Raises:
        InputError: no anchor set chosen in anchored mode, or a malformed column mapping.
    """

    def pick(knob: knobs.Knob, value: object) -> Any:
        return knob.default if value in (None, "") else knob.clamp(value)

    free = mode != "anchored"
    if not free and not anchors:
        raise InputError("anchor set", "none chosen", expected="an installed release's anchor set, or 'free'")
    gps = gps_options(tz, distance, minutes)
    return TrainRequest(
        inputs=tuple(str(p) for p in paths),
        data_dir=str(data_dir),
        name=str(name or "").strip(),
        period=str(period or "").strip(),
        anchors=None if free else str(anchors),
        mapping=str(mapping) if mapping is not None else None,
        columns=cmap.spec() if (cmap := parse_optional(columns)) is not None else None,
        dim=pick(knobs.DIM, dim),
        tol=pick(knobs.TOL, tol),
        schedule=pick(knobs.SCHEDULE, schedule),
        epochs=pick(knobs.EPOCHS, epochs),
        min_users=pick(knobs.MIN_USERS, min_users),
        tz=gps.tz,
        distance=gps.distance_m,
        min_duration=gps.min_minutes,
    )


def _when(st: dict) -> str:
    import time as _time

    t = st.get("updated")
    return f" at {_time.strftime('%H:%M:%S', _time.localtime(float(t)))}" if isinstance(t, (int, float)) else ""


def status_text(st: dict | None) -> tuple[str, str]:
    """Progress bar value (0..100) and a line of text for a job status (the same whole percent in both)."""
    if not st:
        return "0", "No training job yet."
    name = (st.get("info") or {}).get("name", "")
    state = st.get("state")
    if state == "done":
        return "100", f"Done{_when(st)}: {st.get('dataset')} is ready (open it in the Cluster map tab)."
    if state == "cancelled":
        return "0", f"Cancelled: {name or 'the job'} was stopped; no dataset was written."
    if state == "stopped":
        return "0", f"Stopped: {name or 'the job'} ended without finishing (killed or crashed); no dataset was written."
    if state == "failed":
        return "0", f"Failed: {st.get('message', '')}"
    frac = min(max(float(st.get("fraction") or 0.0), 0.0), 1.0)
    percent = int(frac * 100)  # floored once: the bar and the text show the same number, never 100 before the end
    parts = [f"Training {name}:" if name else "Training:", st.get("message") or st.get("stage", "starting")]
    if st.get("loss") is not None:
        parts.append(f"loss {float(st['loss']):.4f}")
    parts.append(f"{percent}%")
    if st.get("eta") is not None:
        parts.append(f"about {float(st['eta']):.0f} s left")
    return str(percent), " · ".join(parts)


def status_view(st: dict | None, exists: Callable[[str], bool] | None = None) -> list:
    """The status line, and for a finished job its link and warnings (so a page opened mid-job sees them too).

    Args:
        exists: whether a dataset key still exists (a dataset renamed or deleted since gets no link).
    """
    _, text = status_text(st)
    children: list = [html.Span(text, className="status-text")]
    if st and st.get("state") == "done" and st.get("dataset") and exists is not None and not exists(st["dataset"]):
        children.append(html.Span(" (since renamed or deleted)", className="hint"))
    elif st and st.get("state") == "done" and st.get("dataset"):
        children += [" ", html.A("Open it on the map", href=f"?ds={st['dataset']}&k=10", className="open-result")]
        children.append(warnings_view((st.get("metrics") or {}).get("warnings")))
    return children


def layout(anchor_options: list[dict], inbox: list[dict], upload_cap: int) -> html.Div:
    """Upload or pick a stay table (or raw GPS), preview it, train it into the 'user' release."""
    default_anchor = anchor_options[0]["value"] if anchor_options else None
    return html.Div(
        className="train-tab",
        children=[
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            html.H3("1. Your data"),
                            html.P(
                                [
                                    "A stay table (stay_time, day_of_week, arrival_time, is_holiday and a JIS mesh ",
                                    html.Code("code"),
                                    ", or ",
                                    html.Code("mesh_id"),
                                    " plus a mapping file), or raw GPS fixes (person, time, lat, lon; "
                                    "one file per person is fine). CSV or Parquet.",
                                ],
                                className="hint",
                            ),
                            dcc.Upload(
                                id=ids.TRAIN_UPLOAD,
                                multiple=True,
                                accept=".csv,.parquet,.pq,.gz,.txt",
                                className="upload",
                                children=html.Div(["Drop files here or ", html.A("choose files")]),
                            ),
                            html.P(
                                f"Uploads up to {upload_cap / 2**20:.0f} MB. Bigger files: copy them into the data folder's inbox/ "
                                "on the server and pick them here.",
                                className="hint",
                            ),
                            html.Label(
                                [
                                    "Or pick from the inbox",
                                    dcc.Dropdown(id=ids.TRAIN_INBOX, options=inbox, placeholder="files in data/inbox"),
                                ],
                                className="wide",
                            ),
                            html.Div(id=ids.TRAIN_UPLOAD_MSG, role="status"),
                            colmap_panel(),
                            html.Details(
                                [
                                    html.Summary("mesh_id -> code mapping (only for stays keyed by mesh_id)"),
                                    dcc.Upload(
                                        id=ids.TRAIN_MAPPING,
                                        multiple=False,
                                        accept=".csv,.parquet",
                                        className="upload small",
                                        children=html.Div(
                                            ["Drop a mapping (mesh_id, code[, mesh_size]) or ", html.A("choose it")]
                                        ),
                                    ),
                                    html.Div(id=ids.TRAIN_MAPPING_MSG),
                                ]
                            ),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.H3("2. Options"),
                            html.Label(
                                [
                                    "Space",
                                    dcc.RadioItems(
                                        id=ids.TRAIN_MODE,
                                        inline=True,
                                        value="anchored" if anchor_options else "free",
                                        options=[
                                            {
                                                "label": "anchored (comparable with other cities and periods)",
                                                "value": "anchored",
                                                "disabled": not anchor_options,
                                            },
                                            {"label": "free", "value": "free"},
                                        ],
                                    ),
                                ]
                            ),
                            html.Label(
                                [
                                    "Anchor set",
                                    dcc.Dropdown(
                                        id=ids.TRAIN_ANCHORS, options=anchor_options, value=default_anchor, clearable=False
                                    ),
                                ],
                                className="wide",
                            ),
                            html.Div(
                                className="inline",
                                children=[
                                    html.Label(
                                        [
                                            "Dataset name",
                                            dcc.Input(id=ids.TRAIN_NAME, type="text", placeholder="e.g. kobe", debounce=False),
                                        ]
                                    ),
                                    html.Label(
                                        [
                                            "Period",
                                            dcc.Input(
                                                id=ids.TRAIN_PERIOD, type="text", placeholder="e.g. 2016-10", debounce=False
                                            ),
                                        ]
                                    ),
                                ],
                            ),
                            html.Div(id=ids.TRAIN_NAME_MSG, className="hint", role="status"),
                            html.Details(
                                [
                                    html.Summary("Advanced"),
                                    html.Div(
                                        className="inline",
                                        children=[
                                            knob_input("dim (free only)", ids.TRAIN_DIM, knobs.DIM),
                                            knob_input("stopping tolerance", ids.TRAIN_TOL, knobs.TOL),
                                            knob_input("most epochs", ids.TRAIN_EPOCHS, knobs.EPOCHS),
                                            html.Label(
                                                [
                                                    "anchor schedule",
                                                    dcc.Dropdown(
                                                        id=ids.TRAIN_SCHEDULE,
                                                        value=knobs.SCHEDULE.default,
                                                        clearable=False,
                                                        options=list(knobs.SCHEDULES),
                                                    ),
                                                ]
                                            ),
                                            knob_input(
                                                "privacy: more than N people per mesh (raw GPS)",
                                                ids.TRAIN_MIN_USERS,
                                                knobs.MIN_USERS,
                                            ),
                                            knob_input(
                                                "stay radius, m (raw GPS)",
                                                ids.TRAIN_GPS_DISTANCE,
                                                knobs.STAY_RADIUS,
                                                debounce=True,
                                            ),
                                            knob_input(
                                                "shortest stay, min (raw GPS)",
                                                ids.TRAIN_GPS_MINUTES,
                                                knobs.MIN_STAY,
                                                debounce=True,
                                            ),
                                            html.Label(
                                                [
                                                    "time zone of times without offset (raw GPS)",
                                                    dcc.Input(
                                                        id=ids.TRAIN_GPS_TZ,
                                                        type="text",
                                                        value=knobs.TIME_ZONE.default,
                                                        debounce=True,
                                                    ),
                                                ]
                                            ),
                                        ],
                                    ),
                                ]
                            ),
                            html.Div(
                                className="buttons",
                                children=[
                                    html.Button("Train", id=ids.TRAIN_START),
                                    html.Button("Cancel", id=ids.TRAIN_CANCEL),
                                    html.Span(id=ids.TRAIN_CANCEL_MSG, className="hint"),
                                ],
                            ),
                            html.Progress(id=ids.TRAIN_BAR, value="0", max="100", className="train-bar"),
                            html.Div(id=ids.TRAIN_STATUS, className="train-status", role="status"),
                            html.Div(id=ids.TRAIN_OUTCOME, className="train-outcome"),
                        ],
                    ),
                ],
            ),
            html.H3("Preview"),
            dcc.Loading(
                html.Div(id=ids.TRAIN_PREVIEW, className="preview", children="Upload a file or pick one from the inbox."),
                type="dot",
            ),
            datasets_panel(),
            dcc.Store(id=ids.TRAIN_COLUMNS),
            dcc.Store(id=ids.TRAIN_FILE_COLUMNS),
        ],
    )


def colmap_panel() -> html.Div:
    """The column-mapping step (hidden until a file's column names are not recognised)."""
    return html.Div(
        id=ids.TRAIN_COLMAP,
        className="colmap",
        style={"display": "none"},
        children=[
            html.Strong("Which column is which?"),
            html.P(id=ids.TRAIN_COLMAP_INFO, className="hint"),
            dcc.RadioItems(
                id=ids.TRAIN_COLMAP_KIND,
                inline=True,
                value=GPS,
                options=[
                    {"label": "raw GPS fixes (person, time, lat, lon)", "value": GPS},
                    {"label": "a stay table", "value": STAYS},
                ],
            ),
            html.Div(id=ids.TRAIN_COLMAP_FIELDS, className="colmap-fields"),
            html.Button("Use these columns", id=ids.TRAIN_COLMAP_APPLY),
            html.Div(id=ids.TRAIN_COLMAP_MSG, role="status"),
        ],
    )


def datasets_panel() -> html.Div:
    """Your datasets: search, a card of each one's record, rename and delete (with a confirmation)."""
    try:
        options = app_context().catalog.options()
    except RuntimeError:  # no app installed (a layout built on its own)
        options = []
    return html.Div(
        className="datasets",
        children=[
            html.H3("Your datasets"),
            html.P(
                "Every dataset, searchable by any part of its name. Datasets you trained (user/...) can be renamed or "
                "deleted; the demo and downloaded releases cannot.",
                className="hint",
            ),
            dcc.Dropdown(id=ids.DATASETS_PICK, options=options, placeholder="type to search, e.g. kobe", searchable=True),
            html.Dl(id=ids.DATASET_CARD, className="dataset-card"),
            html.Div(
                className="dataset-actions",
                children=[
                    dcc.Input(
                        id=ids.DATASET_NEW_NAME,
                        type="text",
                        placeholder="new name, e.g. kobe_2016-10b",
                        debounce=False,
                        style={"width": "22em"},
                    ),
                    html.Button("Rename", id=ids.DATASET_RENAME, disabled=True),
                    html.Button("Delete", id=ids.DATASET_DELETE, disabled=True, className="danger"),
                ],
            ),
            html.Div(id=ids.DATASET_MSG, role="status"),
            dcc.ConfirmDialog(id=ids.DATASET_CONFIRM_RENAME),
            dcc.ConfirmDialog(id=ids.DATASET_CONFIRM_DELETE),
        ],
    )


def mapping_path(data_dir: Path, mapping: dict | None) -> Path | None:
    """The uploaded mapping file (the store comes from the browser: token and name are checked again)."""
    if not mapping:
        return None
    if not isinstance(mapping, dict):
        raise InputError("mapping", "not an uploaded mapping")
    folder = upload_folder(data_dir, mapping.get("token"))
    path = folder / safe_file_name(mapping.get("file"))
    if not path.is_file():  # a .gz upload is stored decompressed: the folder's one file
        stored = sorted(p for p in folder.iterdir() if p.is_file())
        path = stored[0] if len(stored) == 1 else path
    if not path.is_file():
        raise InputError("mapping", "the uploaded mapping is gone; upload it again")
    return path


@callback(
    Output(ids.TRAIN_SOURCE, "data"),
    Output(ids.TRAIN_UPLOAD_MSG, "children"),
    Output(ids.TRAIN_COLUMNS, "data", allow_duplicate=True),
    Input(ids.TRAIN_UPLOAD, "contents"),
    Input(ids.TRAIN_INBOX, "value"),
    State(ids.TRAIN_UPLOAD, "filename"),
    prevent_initial_call=True,
)
def choose_input(contents, inbox_name, filenames):
    """Store an upload on the server (size cap, safe names) or remember an inbox pick; a new file forgets the column mapping."""
    if ctx.triggered_id == ids.TRAIN_INBOX:
        if not inbox_name:
            return dash.no_update, "", dash.no_update
        try:
            resolve_inbox(app_context().data_dir, inbox_name)
        except InputError as exc:
            return None, error_view(exc), None
        return {"kind": "inbox", "name": inbox_name}, f"Picked {inbox_name} from the inbox.", None
    if not contents:
        return dash.no_update, "", dash.no_update
    contents = contents if isinstance(contents, list) else [contents]
    filenames = filenames if isinstance(filenames, list) else [filenames]
    try:
        folder = save_upload(app_context().data_dir, list(zip(filenames, contents)), cap=app_context().upload_cap)
    except InputError as exc:  # UploadTooLarge included: its message points to the inbox
        return None, error_view(exc), None
    return (
        {"kind": "upload", "token": folder.name, "files": filenames},
        f"Uploaded {', '.join(filenames[:5])}{' ...' if len(filenames) > 5 else ''}.",
        None,
    )


@callback(
    Output(ids.TRAIN_MAPPING_STORE, "data"),
    Output(ids.TRAIN_MAPPING_MSG, "children"),
    Input(ids.TRAIN_MAPPING, "contents"),
    State(ids.TRAIN_MAPPING, "filename"),
    prevent_initial_call=True,
)
def choose_mapping(contents, filename):
    try:
        folder = save_upload(app_context().data_dir, [(filename, contents)], cap=app_context().upload_cap)
    except InputError as exc:
        return None, error_view(exc)
    return {"token": folder.name, "file": filename}, f"Mapping {filename} uploaded."


_HIDDEN = {"display": "none"}


@callback(
    Output(ids.TRAIN_PREVIEW, "children"),
    Output(ids.TRAIN_COLMAP, "style"),
    Output(ids.TRAIN_FILE_COLUMNS, "data"),
    Input(ids.TRAIN_SOURCE, "data"),
    Input(ids.TRAIN_MAPPING_STORE, "data"),
    Input(ids.TRAIN_COLUMNS, "data"),
    Input(ids.TRAIN_MIN_USERS, "value"),
    Input(ids.TRAIN_GPS_TZ, "value"),
    Input(ids.TRAIN_GPS_DISTANCE, "value"),
    Input(ids.TRAIN_GPS_MINUTES, "value"),
    prevent_initial_call=True,
)
def show_preview(source, mapping, columns, min_users, tz, distance, minutes):
    """The preview; when the file's column names are not recognised, the column-mapping step instead."""
    if not source:
        return "Upload a file or pick one from the inbox.", _HIDDEN, None
    data_dir = app_context().data_dir
    cmap = None
    try:
        paths = input_paths(data_dir, source)
        cmap = parse_optional(columns)
        rep = run_limited(  # never parse an upload in the web process: a worker with memory, byte and row caps
            preview,
            paths,
            mapping_path(data_dir, mapping),
            gps_options(tz, distance, minutes),
            min_users=knobs.MIN_USERS.clamp(min_users if min_users not in (None, "") else knobs.MIN_USERS.default),
            columns=cmap,
            paths=paths,
        )
    except ColumnsNotRecognised as exc:
        note = html.Div(
            [html.Strong("Columns not recognised: "), f"{exc.source} has the columns {', '.join(exc.file_columns)}. "],
            className="warning",
            role="note",
        )
        hint = "Say which column is which above (a first guess is filled in), then press 'Use these columns'."
        return [note, html.P(hint, className="hint")], {}, {"columns": exc.file_columns, "guess": exc.suggestion}
    except InputError as exc:
        if cmap is None:
            return error_view(exc), _HIDDEN, dash.no_update
        return error_view(exc), {}, dash.no_update  # a mapping is in use: keep it in reach to change it
    if cmap is not None:
        return preview_view(rep, app_context().basemap), {}, dash.no_update
    return preview_view(rep, app_context().basemap), _HIDDEN, None


def colmap_fields(kind: str, file_columns: list[str], chosen: dict[str, str]) -> list:
    """One labelled dropdown of the file's columns per role of ``kind``."""
    options = [{"label": c, "value": c} for c in file_columns]
    out: list = []
    for role, required, what in ROLES.get(kind, ROLES[GPS]):
        out += [
            html.Label(role + (" *" if required else ""), htmlFor=f"colmap-{role}"),
            dcc.Dropdown(
                id={"type": ids.COLMAP_ROLE, "role": role},
                options=options,
                value=chosen.get(role),
                placeholder="(none)" if not required else "choose a column",
                clearable=True,
            ),
            html.Span(what, className="hint"),
        ]
    return out


@callback(
    Output(ids.TRAIN_COLMAP_FIELDS, "children"),
    Output(ids.TRAIN_COLMAP_INFO, "children"),
    Input(ids.TRAIN_COLMAP_KIND, "value"),
    Input(ids.TRAIN_FILE_COLUMNS, "data"),
    State(ids.TRAIN_COLUMNS, "data"),
    prevent_initial_call=True,
)
def show_colmap_fields(kind, file_columns, columns):
    if not isinstance(file_columns, dict) or not isinstance(file_columns.get("columns"), list):
        return [], ""
    cols = [str(c) for c in file_columns["columns"]][:500]
    kind = kind if kind in ROLES else GPS
    chosen = dict(file_columns.get("guess") or {}) if kind == GPS else {c: c for c in cols}
    try:
        cmap = parse_optional(columns)
    except InputError:
        cmap = None
    if cmap is not None and cmap.kind == kind:
        chosen = cmap.as_dict()
    info = f"The file's columns: {', '.join(cols)}. Pick the column for each role (* = needed)."
    return colmap_fields(kind, cols, chosen), info


@callback(
    Output(ids.TRAIN_COLUMNS, "data"),
    Output(ids.TRAIN_COLMAP_MSG, "children"),
    Input(ids.TRAIN_COLMAP_APPLY, "n_clicks"),
    State(ids.TRAIN_COLMAP_KIND, "value"),
    State({"type": ids.COLMAP_ROLE, "role": ALL}, "value"),
    State({"type": ids.COLMAP_ROLE, "role": ALL}, "id"),
    State(ids.TRAIN_SOURCE, "data"),
    prevent_initial_call=True,
)
def apply_colmap(_n, kind, values, field_ids, source):
    """Check the mapping on the server (roles, the file's real columns) and keep it for the preview and training."""
    try:
        if not isinstance(values, list) or not isinstance(field_ids, list):
            raise InputError("column mapping", "not a list of fields", expected="the mapping form's fields")
        roles_given = {str(i.get("role")): v for i, v in zip(field_ids, values) if isinstance(i, dict)}
        cmap = ColumnMap.make(kind, roles_given)
        paths = input_paths(app_context().data_dir, source)
        for path in paths:
            cmap.check_against(input_columns(path), path.name)
    except InputError as exc:
        return dash.no_update, error_view(exc)
    return cmap.spec(), f"Using {', '.join(f'{r} = {c}' for r, c in cmap.columns)}."


@callback(Output(ids.TRAIN_NAME_MSG, "children"), Input(ids.TRAIN_NAME, "value"), Input(ids.TRAIN_PERIOD, "value"))
def check_name(name, period):
    if not name and not period:
        return "Name and period make the dataset's name, e.g. kobe + 2016-10 -> user/kobe_2016-10."
    try:
        full = dataset_name(name, period)
    except InputError as exc:
        return html.Span(str(exc), className="error-text")
    if dataset_exists(app_context().data_dir, full):
        return html.Span(f"user/{full} already exists: choose another name or period.", className="error-text")
    return f"Will be saved as {USER_RELEASE}/{full}."


@callback(Output(ids.TRAIN_OUTCOME, "children"), Input(ids.TRAIN_RESULT, "data"), prevent_initial_call=True)
def show_outcome(result):
    """The job's outcome card (hidden while a new job runs: see the ``running`` outputs of :func:`train`)."""
    if not isinstance(result, dict):  # nothing yet, or a value no job wrote (the store lives in the browser)
        return ""
    try:
        return _outcome_card(result)
    except (TypeError, ValueError, AttributeError):  # a forged result: fields of the wrong kind
        return ""


def _outcome_card(result: dict):
    state = result.get("state")
    if state in ("busy", "invalid"):
        return html.Div(result.get("message", ""), className="error", role="alert")
    if state == "done":
        m = result.get("metrics") or {}
        cfg = m.get("config") or {}
        rows = [
            ("dataset", result.get("dataset")),
            ("meshes", f"{m.get('n_meshes', 0):,}"),
            ("stays", f"{m.get('n_stays', 0):,}"),
            ("ApproximationLoss", f"{m.get('approximation_loss', float('nan')):.4f}"),
            (
                "space",
                f"anchored to '{m.get('anchor_release')}' ({cfg.get('schedule')} schedule, alpha {cfg.get('alpha')})"
                if m.get("anchored")
                else "free (not comparable with other datasets)",
            ),
            ("training time", f"{m.get('seconds', 0):.1f} s (whole job {m.get('seconds_total', 0):.1f} s)"),
        ]
        return html.Div(
            [
                warnings_view(m.get("warnings")),
                html.Dl(className="preview-facts", children=[x for k, v in rows for x in (html.Dt(k), html.Dd(v))]),
                html.A("Open it on the map", href="?" + f"ds={result.get('dataset')}&k=10", id="open-trained"),
            ]
        )
    return ""


@callback(Output(ids.TRAIN_CANCEL_MSG, "children"), Input(ids.TRAIN_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancel_job(_n):
    """Cancel through the registry too: this also reaches a job started before the page was reloaded."""
    return "Cancelling..." if app_context().registry.cancel() else "No job is running."


@callback(Output(ids.JOB_POLL, "interval"), Input(ids.TABS, "value"))
def poll_rate(tab):
    return 700 if tab == "train" else 3000


@callback(
    Output(ids.TRAIN_BAR, "value"),
    Output(ids.TRAIN_STATUS, "children"),
    Output(ids.DATASET, "options"),
    Output(ids.DIFF_A, "options"),
    Output(ids.DIFF_B, "options"),
    Output(ids.TRAIN_INBOX, "options"),
    Output(ids.TRAIN_ANCHORS, "options"),
    Output(ids.CATALOG_VERSION, "data"),
    Output(ids.DATASETS_PICK, "options"),
    Input(ids.JOB_POLL, "n_intervals"),
    Input(ids.TABS, "value"),
    State(ids.CATALOG_VERSION, "data"),
)
def poll(n, tab, version):
    """The running (or last) job's progress, and new datasets in the selectors without a restart.

    The first call of a page also fills the lists built from the catalog (the comparison view's
    lists leave out free datasets, which share no space with any other).
    """
    app = app_context()
    catalog, data_dir = app.catalog, app.data_dir
    last = app.registry.last()
    value, _ = status_text(last)
    catalog.refresh_if_changed()
    status = status_view(last, lambda key: key in catalog.refs)
    keep = dash.no_update
    if catalog.version != version or not n:  # n = 0 (or None): the page's first call
        opts, diff = catalog.options(), catalog.diff_options()
        return value, status, opts, diff, diff, inbox_options(data_dir), anchor_options(data_dir), catalog.version, opts
    if tab == "train":
        return value, status, keep, keep, keep, inbox_options(data_dir), keep, keep, keep
    return value, status, keep, keep, keep, keep, keep, keep, keep


@callback(
    Output(ids.TRAIN_RESULT, "data"),
    Input(ids.TRAIN_START, "n_clicks"),
    State(ids.TRAIN_SOURCE, "data"),
    State(ids.TRAIN_MAPPING_STORE, "data"),
    State(ids.TRAIN_MODE, "value"),
    State(ids.TRAIN_ANCHORS, "value"),
    State(ids.TRAIN_NAME, "value"),
    State(ids.TRAIN_PERIOD, "value"),
    State(ids.TRAIN_DIM, "value"),
    State(ids.TRAIN_TOL, "value"),
    State(ids.TRAIN_SCHEDULE, "value"),
    State(ids.TRAIN_EPOCHS, "value"),
    State(ids.TRAIN_MIN_USERS, "value"),
    State(ids.TRAIN_GPS_TZ, "value"),
    State(ids.TRAIN_GPS_DISTANCE, "value"),
    State(ids.TRAIN_GPS_MINUTES, "value"),
    State(ids.TRAIN_COLUMNS, "data"),
    background=True,
    prevent_initial_call=True,
    running=[
        (Output(ids.TRAIN_START, "disabled"), True, False),
        (Output(ids.TRAIN_OUTCOME, "style"), {"display": "none"}, {}),  # the previous job's outcome is not this one's
    ],
    cancel=[Input(ids.TRAIN_CANCEL, "n_clicks")],
)
def train(
    _n, source, mapping, mode, anchors, name, period, dim, tol, schedule, epochs, min_users, tz, distance, minutes, columns
):
    """Runs in the background job process: build the request, run the worker under the one-job lock."""
    app = app_context()
    busy = busy_status(app.registry)  # before the form: a second page learns first that a job runs
    if busy is not None:
        return busy
    try:
        request = build_request(
            app.data_dir,
            input_paths(app.data_dir, source),
            mapping_path(app.data_dir, mapping),
            mode,
            anchors,
            name,
            period,
            dim,
            tol,
            schedule,
            epochs,
            min_users,
            tz,
            distance,
            minutes,
            columns,
        )
    except InputError as exc:
        return {"state": "invalid", "message": str(exc)}
    return supervise(app.registry, request)  # plain data (pickled into the job cache)


# ---------------------------------------------------------------- your datasets: card, rename, delete


@callback(
    Output(ids.DATASET_CARD, "children"),
    Output(ids.DATASET_RENAME, "disabled"),
    Output(ids.DATASET_DELETE, "disabled"),
    Input(ids.DATASETS_PICK, "value"),
    Input(ids.CATALOG_VERSION, "data"),
)
def show_card(key, _version):
    """The selected dataset's record (from its stored metrics); rename and delete only for your own."""
    catalog = app_context().catalog
    if not key or key not in catalog.refs:
        return [], True, True
    ds = catalog.get(key)
    facts = describe_dataset(key, catalog.metrics(key), ds.n_meshes, ds.decoder is not None)
    card = [x for k, v in facts for x in (html.Dt(k), html.Dd(v))]
    own = catalog.refs[key].release == USER_RELEASE
    return card, not own, not own


@callback(
    Output(ids.DATASET_CONFIRM_RENAME, "displayed"),
    Output(ids.DATASET_CONFIRM_RENAME, "message"),
    Output(ids.DATASET_CONFIRM_DELETE, "displayed"),
    Output(ids.DATASET_CONFIRM_DELETE, "message"),
    Output(ids.DATASET_MSG, "children", allow_duplicate=True),
    Input(ids.DATASET_RENAME, "n_clicks"),
    Input(ids.DATASET_DELETE, "n_clicks"),
    State(ids.DATASETS_PICK, "value"),
    State(ids.DATASET_NEW_NAME, "value"),
    prevent_initial_call=True,
)
def ask_confirmation(_r, _d, key, new_name):
    """Check the request first (server side), then ask the user to confirm it."""
    from core.workflow.userdata import check_stored_name

    no = dash.no_update
    try:
        old = user_dataset_name(key)
        if ctx.triggered_id == ids.DATASET_RENAME:
            new = check_stored_name(new_name)
            if dataset_exists(app_context().data_dir, new):
                raise InputError("new name", f"'{USER_RELEASE}/{new}' already exists", expected="a name no other dataset has")
            return True, f"Rename {USER_RELEASE}/{old} to {USER_RELEASE}/{new}?", False, no, ""
        return False, no, True, f"Delete {USER_RELEASE}/{old} for good (embeddings, model and its record)?", ""
    except InputError as exc:
        return False, no, False, no, error_view(exc)


@callback(
    Output(ids.DATASET_MSG, "children"),
    Output(ids.DATASETS_PICK, "value"),
    Output(ids.DATASETS_PICK, "options", allow_duplicate=True),
    Input(ids.DATASET_CONFIRM_RENAME, "submit_n_clicks"),
    Input(ids.DATASET_CONFIRM_DELETE, "submit_n_clicks"),
    State(ids.DATASETS_PICK, "value"),
    State(ids.DATASET_NEW_NAME, "value"),
    prevent_initial_call=True,
)
def change_dataset(_r, _d, key, new_name):
    """Rename or delete, confirmed: done in core/workflow (atomically; refused for releases, bad or taken names)."""
    app = app_context()
    catalog = app.catalog
    try:
        old = user_dataset_name(key)
        if ctx.triggered_id == ids.DATASET_CONFIRM_RENAME:
            new_key = rename_dataset(app.data_dir, key, new_name)
            catalog.forget(old)
            return f"Renamed {key} to {new_key}.", new_key, catalog.options()
        delete_dataset(app.data_dir, key)
        catalog.forget(old)
        return f"Deleted {key}.", None, catalog.options()
    except InputError as exc:
        return error_view(exc), dash.no_update, dash.no_update
