"""The training view's callbacks: uploads and inbox picks, preview, a background training job, its status.

Training runs as a Dash background callback (diskcache manager). The job process does not import
torch itself: it starts ``python -m core add-dataset`` as a subprocess (torch hangs in a forked
process once the parent used its thread pool, see NOTES) and waits for it. Progress goes through
the job registry (``core.workflow.jobs``): the worker writes a status file, and every open page polls it,
so a reloaded page (or another browser) finds the running job, its progress and its cancel button.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dash
import dash_leaflet as dl
import numpy as np
from dash import Input, Output, State, callback, ctx, html

from core.errors import InputError
from core.geo.meshcode import code_bounds
from core.mobility.gps import GpsOptions
from core.workflow.jobs import JobBusy, JobRegistry
from core.workflow.userdata import (
    USER_RELEASE,
    anchor_sets,
    dataset_exists,
    dataset_name,
    inbox_files,
    preview,
    resolve_inbox,
    safe_file_name,
    save_upload,
    upload_folder,
)

from . import ids
from .data import Catalog

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = ("exponential", "linear", "constant", "mixed")


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
    if source.get("kind") == "inbox":
        return [resolve_inbox(data_dir, source.get("name"))]
    folder = upload_folder(data_dir, source.get("token"))
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise InputError("upload", "the upload holds no file")
    return files


def error_view(exc: InputError) -> html.Div:
    """A readable error: the message, then the first offending rows with their values."""
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
                children=[html.Dl(className="preview-facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))])],
            ),
            html.Div(className="half", children=[html.P("Where the meshes are" + shown, className="hint"), small_map]),
        ],
    )


def gps_options(tz: object, distance: object, minutes: object) -> GpsOptions:
    """The stay rule chosen in the form (defaults where a field is empty)."""
    return GpsOptions(
        tz=str(tz or "Asia/Tokyo").strip(),
        distance_m=float(distance) if distance else 100.0,
        min_minutes=float(minutes) if minutes not in (None, "") else 5.0,
    )


def status_text(st: dict | None) -> tuple[str, str]:
    """Progress bar value (0..100) and a line of text for a job status."""
    if not st:
        return "0", "No training job yet."
    name = (st.get("info") or {}).get("name", "")
    state = st.get("state")
    if state == "done":
        return "100", f"Done: {st.get('dataset')} is ready (open it in the Cluster map tab)."
    if state == "cancelled":
        return "0", f"Cancelled: {name or 'the job'} was stopped; no dataset was written."
    if state == "stopped":
        return "0", f"Stopped: {name or 'the job'} ended without finishing (killed or crashed); no dataset was written."
    if state == "failed":
        return "0", f"Failed: {st.get('message', '')}"
    frac = float(st.get("fraction") or 0.0)
    parts = [f"Training {name}:" if name else "Training:", st.get("message") or st.get("stage", "starting")]
    if st.get("loss") is not None:
        parts.append(f"loss {float(st['loss']):.4f}")
    parts.append(f"{frac:.0%}")
    if st.get("eta") is not None:
        parts.append(f"about {float(st['eta']):.0f} s left")
    return f"{frac * 100:.0f}", " · ".join(parts)


def register_training(catalog: Catalog, basemap: str | None, manager, upload_cap: int) -> None:
    data_dir = catalog.data_dir
    registry = JobRegistry(data_dir / USER_RELEASE)

    @callback(
        Output(ids.TRAIN_SOURCE, "data"),
        Output(ids.TRAIN_UPLOAD_MSG, "children"),
        Input(ids.TRAIN_UPLOAD, "contents"),
        Input(ids.TRAIN_INBOX, "value"),
        State(ids.TRAIN_UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    def choose_input(contents, inbox_name, filenames):
        """Store an upload on the server (size cap, safe names) or remember an inbox pick."""
        if ctx.triggered_id == ids.TRAIN_INBOX:
            if not inbox_name:
                return dash.no_update, ""
            try:
                resolve_inbox(data_dir, inbox_name)
            except InputError as exc:
                return None, error_view(exc)
            return {"kind": "inbox", "name": inbox_name}, f"Picked {inbox_name} from the inbox."
        if not contents:
            return dash.no_update, ""
        contents = contents if isinstance(contents, list) else [contents]
        filenames = filenames if isinstance(filenames, list) else [filenames]
        try:
            folder = save_upload(data_dir, list(zip(filenames, contents)), cap=upload_cap)
        except InputError as exc:  # UploadTooLarge included: its message points to the inbox
            return None, error_view(exc)
        return {
            "kind": "upload",
            "token": folder.name,
            "files": filenames,
        }, f"Uploaded {', '.join(filenames[:5])}{' ...' if len(filenames) > 5 else ''}."

    @callback(
        Output(ids.TRAIN_MAPPING_STORE, "data"),
        Output(ids.TRAIN_MAPPING_MSG, "children"),
        Input(ids.TRAIN_MAPPING, "contents"),
        State(ids.TRAIN_MAPPING, "filename"),
        prevent_initial_call=True,
    )
    def choose_mapping(contents, filename):
        try:
            folder = save_upload(data_dir, [(filename, contents)], cap=upload_cap)
        except InputError as exc:
            return None, error_view(exc)
        return {"token": folder.name, "file": filename}, f"Mapping {filename} uploaded."

    def mapping_path(mapping: dict | None) -> Path | None:
        """The uploaded mapping file (the store comes from the browser: token and name are checked again)."""
        if not mapping:
            return None
        path = upload_folder(data_dir, mapping.get("token")) / safe_file_name(mapping.get("file"))
        if not path.is_file():
            raise InputError("mapping", "the uploaded mapping is gone; upload it again")
        return path

    @callback(
        Output(ids.TRAIN_PREVIEW, "children"),
        Input(ids.TRAIN_SOURCE, "data"),
        Input(ids.TRAIN_MAPPING_STORE, "data"),
        Input(ids.TRAIN_MIN_USERS, "value"),
        Input(ids.TRAIN_GPS_TZ, "value"),
        Input(ids.TRAIN_GPS_DISTANCE, "value"),
        Input(ids.TRAIN_GPS_MINUTES, "value"),
        prevent_initial_call=True,
    )
    def show_preview(source, mapping, min_users, tz, distance, minutes):
        if not source:
            return "Upload a file or pick one from the inbox."
        try:
            rep = preview(
                input_paths(data_dir, source),
                mapping_path(mapping),
                gps_options(tz, distance, minutes),
                min_users=int(min_users or 10),
            )
        except InputError as exc:
            return error_view(exc)
        return preview_view(rep, basemap)

    @callback(Output(ids.TRAIN_NAME_MSG, "children"), Input(ids.TRAIN_NAME, "value"), Input(ids.TRAIN_PERIOD, "value"))
    def check_name(name, period):
        if not name and not period:
            return "Name and period make the dataset's name, e.g. kobe + 2016-10 -> user/kobe_2016-10."
        try:
            full = dataset_name(name, period)
        except InputError as exc:
            return html.Span(str(exc), className="error-text")
        if dataset_exists(data_dir, full):
            return html.Span(f"user/{full} already exists: choose another name or period.", className="error-text")
        return f"Will be saved as {USER_RELEASE}/{full}."

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
        background=True,
        manager=manager,
        prevent_initial_call=True,
        running=[(Output(ids.TRAIN_START, "disabled"), True, False)],
        cancel=[Input(ids.TRAIN_CANCEL, "n_clicks")],
    )
    def train(_n, source, mapping, mode, anchors, name, period, dim, tol, schedule, epochs, min_users, tz, distance, minutes):
        """Runs in the background job process: take the one-job lock, run the worker, report how it ended."""
        running = registry.current()
        if running is not None:
            return {
                "state": "busy",
                "message": f"Busy: another training job is running ({(running.get('info') or {}).get('name', running['job'])}). "
                "One job runs at a time: wait for it or cancel it.",
            }
        try:
            full = dataset_name(name, period)
            if dataset_exists(data_dir, full):
                raise InputError("dataset name", f"'{USER_RELEASE}/{full}' already exists", expected="a new name or period label")
            paths = input_paths(data_dir, source)
            cmd = [
                sys.executable,
                "-m",
                "core",
                "add-dataset",
                *map(str, paths),
                "--data",
                str(data_dir),
                "--name",
                str(name).strip(),
                "--period",
                str(period).strip(),
                "--quiet",
                "--schedule",
                schedule if schedule in SCHEDULES else "exponential",
                "--min-users",
                str(int(min_users or 10)),
            ]
            gps = gps_options(tz, distance, minutes)
            cmd += [f"--tz={gps.tz}", f"--distance={gps.distance_m}", f"--min-duration={gps.min_minutes}"]
            if mode == "anchored":
                if not anchors:
                    raise InputError("anchor set", "none chosen", expected="an installed release's anchor set, or 'free'")
                cmd += ["--anchors", str(anchors)]
            else:
                cmd += ["--free", "--dim", str(int(np.clip(int(dim or 8), 2, 64)))]
            if tol is not None:
                cmd += ["--tol", str(max(float(tol), 0.0))]
            if epochs:
                cmd += ["--epochs", str(int(np.clip(int(epochs), 1, 1_000_000)))]
            mp = mapping_path(mapping)
            if mp is not None:
                cmd += ["--mapping", str(mp)]
        except (InputError, ValueError, TypeError) as exc:
            return {"state": "invalid", "message": str(exc)}
        job = registry.new_id()
        try:
            registry.start(
                job, {"name": full, "files": [p.name for p in paths], "anchors": anchors if mode == "anchored" else None}
            )
        except JobBusy as exc:
            return {"state": "busy", "message": f"Busy: {exc}"}
        try:
            jd = registry.job_dir(job)
            if registry.cancel_requested(job):
                registry.write_status(job, {"state": "cancelled", "message": "cancelled", "info": {"name": full}})
                return registry.read_status(job)
            cmd += ["--status-file", str(jd / "status.json"), "--cancel-file", str(jd / "cancel"), "--under-job"]
            with open(jd / "worker.log", "wb") as log:
                proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                registry.set_worker(job, proc.pid)
                rc = proc.wait()
            st = registry.read_status(job)
            if st.get("state") not in ("done", "cancelled", "failed"):
                if rc < 0:
                    # Killed by a signal: Dash's cancel kills the worker first and this process a moment later,
                    # while the cancel button's own callback marks the job; give that a moment to land.
                    time.sleep(0.5)
                    cancelled = registry.cancel_requested(job)
                    st = {
                        **st,
                        "state": "cancelled" if cancelled else "stopped",
                        "message": "cancelled" if cancelled else f"the worker was killed (signal {-rc})",
                    }
                else:
                    tail = (jd / "worker.log").read_text(errors="replace")[-800:]
                    st = {**st, "state": "failed", "message": f"the worker exited with code {rc}: {tail}"}
            st["info"] = {"name": full}
            registry.write_status(job, st)
            return st  # plain data (pickled into the job cache)
        finally:
            registry.finish(job)

    @callback(Output(ids.TRAIN_OUTCOME, "children"), Input(ids.TRAIN_RESULT, "data"), prevent_initial_call=True)
    def show_outcome(result):
        if not result:
            return ""
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
                    html.Dl(className="preview-facts", children=[x for k, v in rows for x in (html.Dt(k), html.Dd(v))]),
                    html.A("Open it on the map", href="?" + f"ds={result.get('dataset')}&k=10", id="open-trained"),
                ]
            )
        return ""

    @callback(Output(ids.TRAIN_CANCEL_MSG, "children"), Input(ids.TRAIN_CANCEL, "n_clicks"), prevent_initial_call=True)
    def cancel_job(_n):
        """Cancel through the registry too: this also reaches a job started before the page was reloaded."""
        return "Cancelling..." if registry.cancel() else "No job is running."

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
        Input(ids.JOB_POLL, "n_intervals"),
        Input(ids.TABS, "value"),
        State(ids.CATALOG_VERSION, "data"),
    )
    def poll(_n, tab, version):
        """The running (or last) job's progress, and new datasets in the selectors without a restart."""
        value, text = status_text(registry.last())
        catalog.refresh_if_changed()
        keep = dash.no_update
        if catalog.version != version:
            opts = catalog.options()
            return value, text, opts, opts, opts, inbox_options(data_dir), anchor_options(data_dir), catalog.version
        if tab == "train":
            return value, text, keep, keep, keep, inbox_options(data_dir), keep, keep
        return value, text, keep, keep, keep, keep, keep, keep
