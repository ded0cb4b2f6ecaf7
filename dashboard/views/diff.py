"""The period-comparison view: two synchronised maps of periods A and B, legends, a threshold for
"changed", a before / after panel, the transition matrix, the most changed meshes and a period slider.

Everything that is not Dash glue is a plain function, unit-tested in ``tests/dashboard/test_diff_view.py``:
:func:`parse_diff_url` (the address bar), :func:`pair_problem` (when no diff can be shown),
:func:`legend_entries` (what each colour means), :func:`threshold_from_slider` /
:func:`slider_from_threshold`, :func:`toggle_cell` (a matrix click), :func:`period_marks`.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlencode

import dash
import numpy as np
import plotly.graph_objects as go
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html

from core import knobs
from core.analysis.diff import PeriodDiff, change_csv, change_table, too_few_reason
from core.constants import RELEASED_KS
from core.errors import CoreError
from core.geo.meshcode import code_centers
from core.release.layout import split_name

from .. import ids
from ..catalog import Catalog, app_context, get_catalog
from ..components import make_map, mesh_polygon, tile_url, viewport
from ..figures import (
    CHANGE_COLOURS,
    DIFF_DISTANCE_COLOURS,
    FADED_COLOUR,
    GRAPH_CONFIG,
    cluster_color,
    count_of,
    pattern_pair,
    transition_heatmap,
)
from ..plotly_text import plotly_text

RANK_ROWS = 20  # the most changed meshes listed on the page (the CSV holds every compared mesh)
MAP_HEIGHT = "460px"
FOCUS_ZOOM = 16  # the zoom a ranked row's mesh is shown at
PLAY_MS = 2500  # one period per 2.5 s when playing
# The threshold slider runs over the knob's range on a log10 scale.
THR_LOG_LOW = math.log10(float(knobs.CHANGE_THRESHOLD.low or 1e-4))
THR_LOG_HIGH = math.log10(float(knobs.CHANGE_THRESHOLD.high or 1.0))
COLOUR_LABELS = {
    "change": "stay pattern changed",
    "distance": "embedding distance to A",
    "cluster": "cluster in B (transitions)",
}
URL_KEYS = ("a", "b", "dk", "by", "thr")


# ---------------------------------------------------------------------------------------------
# Plain functions (no Dash state)


def default_pair(catalog: Catalog) -> tuple[str | None, str | None]:
    """The pair shown when nothing is asked: Nagoya 2019 vs 2020 in the demo, else the first two periods of one city."""
    if "demo/nagoya_2019_04" in catalog.refs and "demo/nagoya_2020_04" in catalog.refs:
        return "demo/nagoya_2019_04", "demo/nagoya_2020_04"
    keys = catalog.keys()
    for key in keys:
        periods = catalog.periods(key)
        if len(periods) > 1:
            return periods[0], periods[1]
    return (keys[0] if keys else None), (keys[1] if len(keys) > 1 else None)


def parse_diff_url(
    search: str | None, catalog: Catalog, defaults: tuple[str | None, str | None] | None = None
) -> tuple[dict, list[str]] | None:
    """The comparison an address asks for (``?view=diff&a=..&b=..&dk=..&by=..&thr=..``).

    Every value is validated; an invalid one falls back to its default and adds a note.

    Returns:
        ``None`` when the address names none of :data:`URL_KEYS`; else ``({"a", "b", "k", "by", "thr"}, notes)``
        where ``thr`` is ``None`` (decided from the data) or a number in the knob's range.
    """
    q = {key: v[0] for key, v in parse_qs((search or "").lstrip("?"), keep_blank_values=True).items()}
    if not any(key in q for key in URL_KEYS):
        return None
    notes: list[str] = []
    defaults = defaults if defaults is not None else default_pair(catalog)
    state: dict = {
        "a": defaults[0],
        "b": defaults[1],
        "k": int(knobs.K.default),
        "by": str(knobs.DIFF_COLOUR.default),
        "thr": None,
    }
    if any(q.get(s) not in (None, "") and q[s] not in catalog.refs for s in ("a", "b")):
        catalog.refresh_if_changed()  # a dataset trained since this server process last looked
    for side in ("a", "b"):
        value = q.get(side)
        if value is None:
            continue
        if value in catalog.refs:
            state[side] = value
        else:
            notes.append(
                f"The address asks for period {side.upper()} '{value[:80]}', which does not exist: showing {state[side]} instead."
            )
    if "dk" in q:
        try:
            state["k"] = int(knobs.K.check(q["dk"]))
        except CoreError:
            notes.append(
                f"k = '{q['dk'][:20]}' is not a number of clusters from {knobs.K.low} to {knobs.K.high}: showing k = {state['k']}."
            )
    if "by" in q:
        if q["by"] in (knobs.DIFF_COLOUR.choices or ()):
            state["by"] = q["by"]
        else:
            notes.append(f"Unknown colouring '{q['by'][:20]}': showing '{COLOUR_LABELS[state['by']]}'.")
    if q.get("thr") not in (None, "", "data"):
        try:
            state["thr"] = float(knobs.CHANGE_THRESHOLD.check(q["thr"]))
        except CoreError:
            notes.append(
                f"Threshold '{q['thr'][:20]}' is not a pattern change from {knobs.CHANGE_THRESHOLD.low} to "
                f"{knobs.CHANGE_THRESHOLD.high}: using the threshold decided from the data."
            )
    return state, notes


def pair_problem(catalog: Catalog, a: object, b: object) -> str | None:
    """Why periods ``a`` and ``b`` cannot be compared (shown instead of the maps), or ``None`` when they can."""
    if not a or not b:
        return "Pick two periods of one city to compare."
    if a not in catalog.refs or b not in catalog.refs:
        return "One of the picked datasets no longer exists: pick two periods of one city."
    if a == b:
        return f"Period A and period B are the same dataset ({a}): pick two different periods to see what changed."
    spaces = catalog.spaces()
    sa, sb = spaces[str(a)], spaces[str(b)]
    if sa.name != sb.name:
        free = [str(k) for k, s in ((a, sa), (b, sb)) if s.free]
        why = (
            f"{' and '.join(free)} {'was' if len(free) == 1 else 'were'} trained free (a space of its own)"
            if free
            else f"they live in different spaces ({sa.name} and {sb.name})"
        )
        return f"{a} and {b} cannot be compared: {why}, so their clusters and distances mean different things."
    ca, cb = catalog.city(str(a)), catalog.city(str(b))
    if ca != cb:
        return f"{a} is {ca.title()} and {b} is {cb.title()}: a diff compares one city's meshes in two periods. Pick two periods of one city."
    return None


def threshold_from_slider(value: object) -> float | None:
    """The threshold a slider position (log10) stands for, clamped to the knob's range; ``None`` for garbage."""
    try:
        v = float(value)  # type: ignore[arg-type]  # anything the browser sent
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    v = min(max(v, THR_LOG_LOW), THR_LOG_HIGH)
    return float(knobs.CHANGE_THRESHOLD.clamp(round(10**v, 6)))


def slider_from_threshold(threshold: float) -> float:
    """The slider position (log10, 2 decimals) of a threshold; the top end when nothing is flagged (infinite)."""
    if not math.isfinite(threshold) or threshold <= 0:
        return THR_LOG_HIGH
    return round(min(max(math.log10(threshold), THR_LOG_LOW), THR_LOG_HIGH), 2)


def toggle_cell(current: object, click: object, k: int) -> tuple[int, int] | None:
    """The highlighted transition after a click on the matrix: the clicked cell, or none when it was already highlighted.

    ``click`` is Plotly's ``clickData`` (the axis labels start with the cluster number, ``"3: name"``).
    """
    try:
        point = click["points"][0]  # type: ignore[index]
        cell = (int(str(point["y"]).split(":")[0]), int(str(point["x"]).split(":")[0]))
    except (TypeError, KeyError, IndexError, ValueError):
        return _valid_cell(current, k)
    if not (0 <= cell[0] < k and 0 <= cell[1] < k):
        return _valid_cell(current, k)
    return None if _valid_cell(current, k) == cell else cell


def _valid_cell(value: object, k: int) -> tuple[int, int] | None:
    """A cell ``[i, j]`` from the browser, checked against k."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and 0 <= v < k for v in value):
        return int(value[0]), int(value[1])
    return None


def period_marks(catalog: Catalog, keys: list[str]) -> dict[int, str]:
    """Slider marks: each dataset's period (its name when the name carries none), never two alike.

    A period held by several datasets (a dataset trained here for a period the release has) names
    each: ``2019-04 (yours: NAME)`` for one trained here, ``2019-04 (RELEASE)`` for a release's;
    marks still alike after that show the dataset's key.
    """
    from core.workflow.userdata import USER_RELEASE

    refs = [catalog.refs[key] for key in keys]
    base = [split_name(ref.name)[1] or ref.name for ref in refs]
    marks = [
        p if base.count(p) == 1 else (f"{p} (yours: {ref.name})" if ref.release == USER_RELEASE else f"{p} ({ref.release})")
        for p, ref in zip(base, refs)
    ]
    return {i: (m if marks.count(m) == 1 else f"{p} ({key})") for i, (m, p, key) in enumerate(zip(marks, base, keys))}


MARK_STYLE = {"whiteSpace": "pre-line", "fontSize": "11px", "lineHeight": "1.15", "textAlign": "center"}


def highlight_text(inside: int, changed: int, cell: tuple[int, int], names: list[str]) -> str:
    """What a highlighted matrix cell holds: ``inside`` meshes went from cluster ``cell[0]`` to ``cell[1]``, ``changed`` of them changed."""
    went = f"{count_of(inside, 'mesh', 'meshes')} went from {cell[0]}: {names[cell[0]]} to {cell[1]}: {names[cell[1]]}"
    if inside == 1:
        tail = "it changed its stay pattern" if changed else "its stay pattern did not change"
    else:
        tail = f"{changed:,} of them changed their stay pattern"
    return f"Highlighted: {went} ({tail})."


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "none"


def no_threshold_reason(diff: PeriodDiff) -> str:
    """Why the data gives no threshold (nothing flagged): too few meshes to tell, or no distinct group of changes."""
    if diff.rule is not None and diff.rule.reason:
        return diff.rule.reason
    return too_few_reason(diff.pattern_change) or "no distinct group of changes"


def suggested_threshold(diff: PeriodDiff) -> float | None:
    """Where the data would split its larger changes from the noise although they are not a distinct group
    (:attr:`core.analysis.diff.ChangeRule.split`), within the knob's range; ``None`` when it flags a group or has none."""
    rule = diff.rule
    if rule is None or math.isfinite(rule.threshold) or not math.isfinite(rule.split):
        return None
    return float(knobs.CHANGE_THRESHOLD.clamp(float(f"{rule.split:.3g}")))


def legend_entries(
    diff: PeriodDiff, by: str, names: list[str], side: str, user_threshold: bool, cell: tuple[int, int] | None
) -> dict:
    """What the colours of one diff map mean: ``{"title", "items": [(colour, text)], "notes": [text]}``.

    Args:
        diff: the pair's diff (its threshold is the one in force).
        by: what colours the map (``change``, ``distance`` or ``cluster``; map A is always ``cluster``).
        names: the clusters' shown names at ``diff.k``.
        side: ``a`` or ``b``.
        user_threshold: whether the threshold was set by the user (else decided from the data).
        cell: the highlighted transition (cluster in A, cluster in B), if any.
    """
    n = len(diff.codes)
    thr = diff.threshold
    n_changed = int(diff.changed.sum())
    origin = "set by you" if user_threshold else "decided from the data"
    thr_note = (
        f"Changed = pattern change above {_fmt(thr)} ({origin}): {n_changed:,} of {count_of(n, 'mesh', 'meshes')}."
        if math.isfinite(thr)
        else f"Nothing is flagged: the data shows {no_threshold_reason(diff)} in this pair. The list below ranks every "
        "compared mesh by its pattern change; move the threshold to flag the largest."
    )
    items: list[tuple[str, str]] = []
    notes: list[str] = []
    if side == "a" or by == "cluster":
        labels = diff.labels_a if side == "a" else diff.labels_b
        counts = np.bincount(labels, minlength=diff.k) if labels is not None else np.zeros(diff.k, int)
        period = "A" if side == "a" else "B"
        title = f"Period {period}: cluster in {period} (k = {diff.k})"
        items = [(cluster_color(c), f"{c}: {names[c] if c < len(names) else ''} ({int(counts[c]):,})") for c in range(diff.k)]
        notes.append(
            "The same cluster has the same number, name and colour in both periods: a mesh whose colour differs "
            f"between the maps moved to another cluster ({diff.stayed:.0%} stayed)."
        )
    elif by == "distance":
        edges = diff.distance_edges()
        cls = diff.distance_classes()
        counts = np.bincount(cls, minlength=len(edges) + 1)
        bounds = [0.0, *edges.tolist(), math.inf]
        title = "Period B: embedding distance to A"
        for c in range(len(edges) + 1):
            lo, hi = bounds[c], bounds[c + 1]
            span = (
                f"below {_fmt(hi)}"
                if c == 0
                else (f"{_fmt(lo)} and more" if not math.isfinite(hi) else f"{_fmt(lo)} - {_fmt(hi)}")
            )
            items.append(
                (DIFF_DISTANCE_COLOURS[c], f"{span}: {count_of(int(counts[c]), 'mesh', 'meshes')} ({counts[c] / max(n, 1):.0%})")
            )
        notes.append(
            "Pale = the mesh's embedding barely moved between the periods, dark red = it moved the most "
            "(the reverse of the similarity ramp, where dark = close). Classes at this pair's own 50 / 75 / 90 / 97 % "
            "quantiles: anchoring leaves every mesh of two trainings a little apart, so fixed distances would paint all alike."
        )
        notes.append(thr_note + " Colour by 'stay pattern changed' to see them.")
    else:
        title = "Period B: stay pattern changed since A"
        above = f"pattern change above {_fmt(thr)}" if math.isfinite(thr) else "none flagged"
        items = [
            (CHANGE_COLOURS[1], f"changed: {above} ({count_of(n_changed, 'mesh', 'meshes')})"),
            (
                CHANGE_COLOURS[0],
                f"unchanged: {'at or below ' + _fmt(thr) if math.isfinite(thr) else 'no threshold, none flagged'} "
                f"({count_of(n - n_changed, 'mesh', 'meshes')})",
            ),
        ]
        notes.append(
            "Pattern change = Jensen-Shannon divergence of the stay patterns each period's model predicts "
            "for the mesh: 0 = used the same way, ln 2 = 0.69 = nothing in common."
        )
        notes.append(thr_note)
    n_coarse = int((diff.sizes == 250).sum()) if diff.sizes is not None else 0
    if n_coarse:
        notes.append(
            f"Paler: a compared 250 m mesh ({n_coarse:,} here), drawn on its 50 m cells that are not compared "
            "themselves (too few people of their own, or in one period only), as complemented meshes on the cluster map."
        )
    if cell is not None:
        inside = int(diff.in_cell(cell).sum())
        items.append(
            (
                FADED_COLOUR,
                f"grey: outside the highlighted transition {cell[0]} -> {cell[1]} ({count_of(n - inside, 'mesh', 'meshes')})",
            )
        )
    return {"title": title, "items": items, "notes": notes}


def render_legend(entries: dict) -> list:
    """Dash children of :func:`legend_entries`."""
    return [
        html.Div(entries["title"], className="diff-legend-title"),
        html.Ul(
            className="legend-list diff-legend-list",
            children=[
                html.Li(
                    className="legend-item", children=[html.Span(className="swatch", style={"background": col}), html.Span(text)]
                )
                for col, text in entries["items"]
            ],
        ),
        *[html.P(note, className="legend-note") for note in entries["notes"]],
    ]


def _empty_matrix(message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": message, "showarrow": False, "font": {"size": 13}, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}
        ],
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def ranking_table(table, n: int = RANK_ROWS) -> html.Table:
    """The first ``n`` rows of :func:`core.analysis.diff.change_table`; each mesh code is a button that focuses it."""
    head = html.Tr([html.Th(t) for t in ("#", "mesh", "cluster A -> B", "pattern change", "distance", "changed")])
    rows = []
    for r in table.head(n).itertuples(index=False):
        rows.append(
            html.Tr(
                className="changed" if r.changed else "",
                children=[
                    html.Td(str(r.rank)),
                    html.Td(
                        html.Button(
                            f"{r.code} ({r.mesh_size} m)",
                            id={"type": ids.DIFF_RANK_ROW, "index": f"{r.code}-{r.mesh_size}"},
                            className="linklike",
                            title="show this mesh on the maps and its before / after charts",
                        )
                    ),
                    html.Td(f"{r.cluster_a}: {r.name_a} -> {r.cluster_b}: {r.name_b}"),
                    html.Td(f"{r.pattern_change:.3f}"),
                    html.Td(f"{r.distance:.3f}"),
                    html.Td("yes" if r.changed else "no"),
                ],
            )
        )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="diff-ranking-table")


# ---------------------------------------------------------------------------------------------
# Layout


def layout(options: list[dict], a: str | None, b: str | None, basemap: str | None, view: dict | None = None) -> html.Div:
    k_options = [{"label": str(k), "value": k} for k in RELEASED_KS]
    return html.Div(
        className="diff-tab",
        children=[
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        ["Period A", dcc.Dropdown(id=ids.DIFF_A, options=options, value=a, clearable=False)], className="wide"
                    ),
                    html.Label(
                        ["Period B", dcc.Dropdown(id=ids.DIFF_B, options=options, value=b, clearable=False)], className="wide"
                    ),
                    html.Label(
                        [
                            "Clusters (k)",
                            dcc.Dropdown(id=ids.DIFF_K, options=k_options, value=int(knobs.K.default), clearable=False),
                        ],
                        className="narrow",
                    ),
                    html.Label(
                        [
                            "Colour period B by",
                            dcc.RadioItems(
                                id=ids.DIFF_COLOUR,
                                value=knobs.DIFF_COLOUR.default,
                                inline=True,
                                options=[{"label": COLOUR_LABELS[c], "value": c} for c in knobs.DIFF_COLOUR.choices or ()],
                            ),
                        ]
                    ),
                ],
            ),
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        [
                            "Changed above (pattern change, log scale)",
                            dcc.Slider(
                                id=ids.DIFF_THRESHOLD,
                                min=THR_LOG_LOW,
                                max=THR_LOG_HIGH,
                                step=0.01,
                                value=THR_LOG_HIGH,
                                marks={v: f"{10**v:g}" for v in range(int(THR_LOG_LOW), int(THR_LOG_HIGH) + 1)},
                                allow_direct_input=False,
                                updatemode="mouseup",
                            ),
                        ],
                        className="slider wide",
                    ),
                    html.Div(
                        [
                            html.Span(id=ids.DIFF_THRESHOLD_TEXT, role="status"),
                            html.Button(
                                "from the data", id=ids.DIFF_THRESHOLD_RESET, title="use the threshold decided from the data"
                            ),
                        ],
                        className="diff-threshold",
                    ),
                    html.Label(
                        [
                            html.Span(id=ids.DIFF_PERIOD_NOTE, children="Period B of this city"),
                            html.Div(
                                className="diff-period",
                                children=[
                                    html.Button("Play", id=ids.DIFF_PLAY, title="step period B through the city's periods"),
                                    html.Div(
                                        dcc.Slider(id=ids.DIFF_PERIOD, min=0, max=1, step=1, value=None, marks={}),
                                        className="grow",
                                    ),
                                ],
                            ),
                        ],
                        className="slider wide",
                    ),
                    dcc.Interval(id=ids.DIFF_PLAY_TIMER, interval=PLAY_MS, disabled=True),
                ],
            ),
            html.Div(id=ids.DIFF_NOTE, className="diff-note", role="alert"),
            html.Div(id=ids.DIFF_SUMMARY, className="summary", role="status"),
            dcc.Store(id=ids.DIFF_SYNC),
            dcc.Store(id=ids.DIFF_STATE),  # the user's threshold (None: decided from the data)
            dcc.Store(id=ids.DIFF_SHOWN_THR),  # the slider position the server last set (not a user move)
            dcc.Store(id=ids.DIFF_SHOWN, data=b),  # the dataset whose extent the maps were opened on
            dcc.Store(id=ids.DIFF_CELL),
            dcc.Store(id=ids.DIFF_PICK),
            dcc.Store(id=ids.DIFF_URL_SINK),
            dcc.Download(id=ids.DIFF_DOWNLOAD),
            html.Div(
                className="row diff-maps",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            html.Div(
                                id=ids.DIFF_MAP_BOX_A,
                                children=[
                                    make_map(
                                        ids.DIFF_MAP_A,
                                        ids.DIFF_LAYER_A,
                                        basemap,
                                        view,
                                        height=MAP_HEIGHT,
                                        selection=ids.DIFF_PICK_LAYER_A,
                                        track_viewport=True,  # the two maps follow each other
                                    )
                                ],
                            ),
                            html.Div(id=ids.DIFF_LEGEND_A, className="diff-legend"),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.Div(
                                id=ids.DIFF_MAP_BOX,
                                children=[
                                    make_map(
                                        ids.DIFF_MAP,
                                        ids.DIFF_LAYER,
                                        basemap,
                                        view,
                                        height=MAP_HEIGHT,
                                        selection=ids.DIFF_PICK_LAYER_B,
                                        track_viewport=True,  # the two maps follow each other
                                    )
                                ],
                            ),
                            html.Div(id=ids.DIFF_LEGEND_B, className="diff-legend"),
                        ],
                    ),
                    html.Div(id=ids.DIFF_EMPTY, className="diff-empty", style={"display": "none"}),
                ],
            ),
            html.Div(id=ids.DIFF_PANEL, className="diff-panel"),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            html.Div(
                                [
                                    html.Span(
                                        id=ids.DIFF_CELL_INFO,
                                        role="status",
                                        children="Click a cell to highlight its meshes on the maps.",
                                    ),
                                    html.Button("clear highlight", id=ids.DIFF_CELL_CLEAR),
                                ],
                                className="diff-cell-bar",
                            ),
                            dcc.Graph(id=ids.DIFF_MATRIX, config=GRAPH_CONFIG),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.Div(
                                [
                                    html.H3("The most changed meshes", id=ids.DIFF_TITLE_B),
                                    html.Button("Download CSV (every compared mesh)", id=ids.DIFF_CSV),
                                ],
                                className="diff-cell-bar",
                            ),
                            html.Div(id=ids.DIFF_RANKING, className="diff-ranking"),
                        ],
                    ),
                ],
            ),
        ],
    )


# ---------------------------------------------------------------------------------------------
# Callbacks: thin adapters over the functions above and core.analysis.diff


def _user_threshold(value: object) -> float | None:
    """The stored user threshold, re-validated (the store lives in the browser)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = knobs.CHANGE_THRESHOLD.check(value)  # None for blank text (the knob has no default)
    except CoreError:
        return None
    return None if v is None else float(v)


def _k(value: object) -> int:
    try:
        return int(knobs.K.check(value))
    except CoreError:
        return int(knobs.K.default)


@callback(
    Output(ids.DIFF_A, "value"),
    Output(ids.DIFF_B, "value"),
    Output(ids.DIFF_K, "value"),
    Output(ids.DIFF_K, "options"),
    Output(ids.DIFF_COLOUR, "value"),
    Output(ids.DIFF_NOTE, "children"),
    Input(ids.URL, "search"),
)
def on_url(search):
    """Shareable state: the address sets A, B, k and the colouring on load (invalid values: a note, the defaults)."""
    catalog = get_catalog()
    parsed = parse_diff_url(search, catalog)
    if parsed is None:
        return (dash.no_update,) * 6
    state, notes = parsed
    ks = sorted({*RELEASED_KS, state["k"]})
    return state["a"], state["b"], state["k"], [{"label": str(k), "value": k} for k in ks], state["by"], " ".join(notes)


@callback(
    Output(ids.DIFF_STATE, "data"),
    Input(ids.URL, "search"),
    Input(ids.DIFF_THRESHOLD, "value"),
    Input(ids.DIFF_THRESHOLD_RESET, "n_clicks"),
    State(ids.DIFF_SHOWN_THR, "data"),
)
def on_threshold(search, slider, _reset, shown):
    """The user's threshold: from the address on load, from the slider when moved, none after "from the data"."""
    trigger = ctx.triggered_id
    if trigger == ids.DIFF_THRESHOLD_RESET:
        return None
    if trigger == ids.DIFF_THRESHOLD:
        if isinstance(shown, (int, float)) and isinstance(slider, (int, float)) and abs(float(slider) - float(shown)) < 1e-9:
            return dash.no_update  # the server placed the slider there, not the user
        thr = threshold_from_slider(slider)
        return thr if thr is not None else dash.no_update
    catalog = get_catalog()
    parsed = parse_diff_url(search, catalog)
    return dash.no_update if parsed is None else parsed[0]["thr"]


@callback(
    Output(ids.DIFF_CELL, "data"),
    Output(ids.DIFF_MATRIX, "clickData"),
    Input(ids.DIFF_MATRIX, "clickData"),
    Input(ids.DIFF_CELL_CLEAR, "n_clicks"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_K, "value"),
    State(ids.DIFF_CELL, "data"),
    prevent_initial_call=True,
)
def on_cell(click, _clear, _a, _b, k, current):
    """Highlight a transition: click a matrix cell; click it again, press clear or change the pair to reset.

    The click is consumed (``clickData`` back to ``None``): a second click on the same cell must fire again.
    """
    if ctx.triggered_id != ids.DIFF_MATRIX:
        return None, dash.no_update
    if click is None:
        return dash.no_update, dash.no_update
    cell = toggle_cell(current, click, _k(k))
    return (list(cell) if cell is not None else None), None


def _threshold_status(text: str, suggestion: float | None, a: str, b: str, k: int, by: str) -> list:
    """The threshold line; when the data flags nothing but sees larger changes, a link that sets its split by hand."""
    if suggestion is None:
        return [text]
    query = urlencode({"view": "diff", "a": a, "b": b, "dk": k, "by": by, "thr": f"{suggestion:g}"})
    return [
        text + " ",
        html.A(
            f"flag above {suggestion:g}",
            href=f"?{query}",
            id=ids.DIFF_THRESHOLD_SUGGEST,
            title="where the data separates the larger changes from the noise, although they are not a distinct group",
        ),
    ]


def _pair(catalog: Catalog, a, b, k) -> tuple[PeriodDiff | None, str | None]:
    problem = pair_problem(catalog, a, b)
    if problem is not None:
        return None, problem
    try:
        return catalog.diff(a, b, k), None
    except (ValueError, CoreError) as exc:
        return None, f"{a} and {b} cannot be compared: {exc}"


@callback(
    Output(ids.DIFF_LAYER, "url"),
    Output(ids.DIFF_LAYER_A, "url"),
    Output(ids.DIFF_MAP_BOX, "children"),
    Output(ids.DIFF_MAP_BOX_A, "children"),
    Output(ids.DIFF_SHOWN, "data"),
    Output(ids.DIFF_EMPTY, "children"),
    Output(ids.DIFF_EMPTY, "style"),
    Output(ids.DIFF_LEGEND_A, "children"),
    Output(ids.DIFF_LEGEND_B, "children"),
    Output(ids.DIFF_SUMMARY, "children"),
    Output(ids.DIFF_THRESHOLD, "value"),
    Output(ids.DIFF_SHOWN_THR, "data"),
    Output(ids.DIFF_THRESHOLD_TEXT, "children"),
    Output(ids.DIFF_MATRIX, "figure"),
    Output(ids.DIFF_CELL_INFO, "children"),
    Output(ids.DIFF_RANKING, "children"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_K, "value"),
    Input(ids.DIFF_COLOUR, "value"),
    Input(ids.DIFF_STATE, "data"),
    Input(ids.DIFF_CELL, "data"),
    State(ids.DIFF_SHOWN, "data"),
)
def show_diff(a, b, k, colour_by, user_thr, cell, shown):
    """Both maps (layers only, unless the city changes), legends, counts, threshold, matrix and the ranked list."""
    app = app_context()
    catalog = app.catalog
    k = _k(k)
    by = colour_by if colour_by in (knobs.DIFF_COLOUR.choices or ()) else knobs.DIFF_COLOUR.default
    thr = _user_threshold(user_thr)
    keep = dash.no_update
    base, problem = _pair(catalog, a, b, k)
    if base is None:
        # Both maps cleared (no tiles) with the reason over them; never the previous pair.
        return (
            "",
            "",
            keep,
            keep,
            keep,
            problem,
            {"display": "flex"},
            [],
            [],
            "",
            keep,
            keep,
            "",
            _empty_matrix("no comparison"),
            "",
            [],
        )
    diff = base if thr is None else base.with_threshold(thr)
    cell_t = _valid_cell(cell, k)
    names = catalog.cluster_names(a, k)
    n = len(diff.codes)
    n_changed = int(diff.changed.sum())
    origin = "set by you" if thr is not None else "decided from the data"
    thr_text = (
        f"threshold {_fmt(diff.threshold)} ({origin})"
        if math.isfinite(diff.threshold)
        else f"threshold: none ({origin}: {no_threshold_reason(diff)})"
    )
    summary = (
        f"{count_of(n, 'mesh', 'meshes')} in both; {n_changed:,} changed their stay pattern ({n_changed / max(n, 1):.0%}; {thr_text}); "
        f"{diff.stayed:.0%} stayed in their cluster; median embedding distance {np.median(diff.distance):.3f}"
    )
    common = {
        "mode": "diff",
        "k": k,
        **({"thr": diff.threshold} if thr is not None else {}),
        **({"cell": f"{cell_t[0]}-{cell_t[1]}"} if cell_t else {}),
    }
    url_b = tile_url({"ds": b, "other": a, "side": "b", "by": by, **common})
    url_a = tile_url({"ds": a, "other": b, "side": "a", "by": "cluster", **common})
    legend_a = render_legend(legend_entries(diff, "cluster", names, "a", thr is not None, cell_t))
    legend_b = render_legend(legend_entries(diff, by, names, "b", thr is not None, cell_t))
    fig = transition_heatmap(diff.transitions(), a.split("/", 1)[1], b.split("/", 1)[1], names, cell_t)
    fig["layout"]["clickmode"] = "event"  # a click on a cell highlights its meshes
    table = change_table(diff, names, cell_t, limit=RANK_ROWS)  # the top of the list, without ranking every mesh
    if cell_t is not None:
        in_cell = diff.in_cell(cell_t)
        inside = int(in_cell.sum())
        cell_info = highlight_text(inside, int(diff.changed[in_cell].sum()), cell_t, names)
    else:
        cell_info = "Click a cell to highlight its meshes on the maps (click it again to clear)."
    ranking = [ranking_table(table)] if len(table) else [html.P("No mesh in this transition.")]
    position = slider_from_threshold(diff.threshold)
    new_city = not isinstance(shown, str) or shown not in catalog.refs or catalog.city(shown) != catalog.city(b)
    if new_city:
        # Another city: new maps on its extent (the layer urls go with them). Otherwise only the layers change,
        # so the zoom and centre stay where the user left them.
        basemap, view = app.basemap, viewport(catalog, b)
        box_b = [
            make_map(
                ids.DIFF_MAP,
                ids.DIFF_LAYER,
                basemap,
                view,
                url_b,
                height=MAP_HEIGHT,
                selection=ids.DIFF_PICK_LAYER_B,
                track_viewport=True,
            )
        ]
        box_a = [
            make_map(
                ids.DIFF_MAP_A,
                ids.DIFF_LAYER_A,
                basemap,
                view,
                url_a,
                height=MAP_HEIGHT,
                selection=ids.DIFF_PICK_LAYER_A,
                track_viewport=True,
            )
        ]
        urls: tuple = (keep, keep, box_b, box_a, b)
    else:
        urls = (url_b, url_a, keep, keep, keep)
    return (
        *urls,
        "",
        {"display": "none"},
        legend_a,
        legend_b,
        summary,
        position,
        position,
        _threshold_status(f"{n_changed:,} changed; {thr_text}", suggested_threshold(diff) if thr is None else None, a, b, k, by),
        fig,
        cell_info,
        ranking,
    )


@callback(
    Output(ids.DIFF_PICK, "data"),
    Output(ids.DIFF_MAP, "viewport", allow_duplicate=True),
    Input(ids.DIFF_MAP, "clickData"),
    Input(ids.DIFF_MAP_A, "clickData"),
    Input({"type": ids.DIFF_RANK_ROW, "index": ALL}, "n_clicks"),
    State(ids.DIFF_A, "value"),
    State(ids.DIFF_B, "value"),
    State(ids.DIFF_MAP, "zoom"),
    State(ids.DIFF_K, "value"),
    prevent_initial_call=True,
)
def on_pick(click_b, click_a, _rows, a, b, zoom, k):
    """A mesh picked on either map (resolved on the server from lat/lng) or in the ranked list (then shown on the maps)."""
    catalog = get_catalog()
    keep = dash.no_update
    trigger = ctx.triggered_id
    if isinstance(trigger, dict):  # a ranked row
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            return keep, keep  # a new row appeared, nobody clicked
        try:
            code, size = (int(v) for v in str(trigger.get("index", "")).split("-"))
        except ValueError:
            return keep, keep
        if size not in (50, 250, 500, 1000) or not 0 < code < 10**12:
            return keep, keep
        try:
            lat, lon = code_centers(np.array([code]), np.array([size]))
        except (CoreError, ValueError):
            return keep, keep
        z = max(int(zoom) if isinstance(zoom, (int, float)) else 0, FOCUS_ZOOM)
        return {"code": code, "size": size}, {"center": [float(lat[0]), float(lon[0])], "zoom": z, "transition": "setView"}
    key, click = (a, click_a) if trigger == ids.DIFF_MAP_A else (b, click_b)
    if key not in catalog.refs or not isinstance(click, dict) or not isinstance(click.get("latlng"), dict):
        return keep, keep
    try:
        y, x = float(click["latlng"].get("lat")), float(click["latlng"].get("lng"))
    except (TypeError, ValueError):
        return keep, keep
    if not (math.isfinite(y) and math.isfinite(x)):
        return keep, keep
    row = int(catalog.index(key).lookup(np.array([y]), np.array([x]))[0])
    if row < 0:
        return None, keep
    ds = catalog.get(key)
    coarse = int(catalog.enclosing_rows(key)[row])
    if coarse >= 0:  # a 50 m cell drawn in its 250 m mesh's colour (not compared itself) picks the 250 m mesh
        base, _problem = _pair(catalog, a, b, _k(k))
        if base is not None and base.find(int(ds.codes[row]), 50) is None and base.find(int(ds.codes[coarse]), 250) is not None:
            row = coarse
    return {"code": int(ds.codes[row]), "size": int(ds.mesh_sizes[row])}, keep


@callback(
    Output(ids.DIFF_PANEL, "children"),
    Output(ids.DIFF_PICK_LAYER_A, "data"),
    Output(ids.DIFF_PICK_LAYER_B, "data"),
    Input(ids.DIFF_PICK, "data"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_K, "value"),
    Input(ids.DIFF_STATE, "data"),
)
def show_pick(pick, a, b, k, user_thr):
    """Before / after: the picked mesh's stay patterns in A and B, its cluster in each, distance and pattern change."""
    catalog = get_catalog()
    k = _k(k)
    if not isinstance(pick, dict) or not isinstance(pick.get("code"), int) or not isinstance(pick.get("size"), int):
        return (
            html.P("Click a mesh on either map (or in the list below) to see it before and after.", className="hint"),
            None,
            None,
        )
    base, problem = _pair(catalog, a, b, k)
    if base is None:
        return "", None, None
    thr = _user_threshold(user_thr)
    diff = base if thr is None else base.with_threshold(thr)
    code, size = pick["code"], pick["size"]
    try:
        outline = mesh_polygon(code, size)
    except (CoreError, ValueError):
        return html.P(f"{code} ({size} m) is not a mesh code.", className="diff-panel-miss"), None, None
    i = diff.find(code, size)
    if i is None:
        return (
            html.P(
                f"Mesh {code} ({size} m) is not compared: a diff needs the mesh with its own embedding (not complemented) in both periods.",
                className="diff-panel-miss",
            ),
            outline,
            outline,
        )
    names = catalog.cluster_names(a, k)
    ra, rb = int(diff.index_a[i]), int(diff.index_b[i])
    la = int(diff.labels_a[i]) if diff.labels_a is not None else -1
    lb = int(diff.labels_b[i]) if diff.labels_b is not None else -1
    pa, pb = (split_name(catalog.refs[key].name)[1] or key for key in (a, b))
    chart_a, chart_b = pattern_pair(
        catalog.mesh_pattern(a, ra),
        catalog.mesh_pattern(b, rb),
        f"A ({pa}): cluster {la}: {plotly_text(names[la])}",
        f"B ({pb}): cluster {lb}: {plotly_text(names[lb])}",
    )
    change = float(diff.pattern_change[i])
    changed = bool(diff.changed[i])
    dist = float(diff.distance[i])
    share = float((diff.distance <= dist).mean())
    facts = html.Dl(
        className="mesh-facts",
        children=[
            html.Dt("mesh"),
            html.Dd(f"{code} ({size} m)", id=ids.DIFF_PANEL + "-code"),
            html.Dt("cluster"),
            html.Dd(
                f"{la}: {names[la]} -> {lb}: {names[lb]}" + (" (stayed)" if la == lb else " (moved)"),
                id=ids.DIFF_PANEL + "-cluster",
            ),
            html.Dt("pattern change"),
            html.Dd(
                f"{change:.3f} ("
                + (
                    f"{'changed: above' if changed else 'unchanged: at or below'} the threshold {_fmt(diff.threshold)})"
                    if math.isfinite(diff.threshold)
                    else "unchanged: no threshold, nothing flagged in this pair)"
                ),
                id=ids.DIFF_PANEL + "-change",
            ),
            html.Dt("embedding distance"),
            html.Dd(f"{dist:.3f} (farther than {share:.0%} of the compared meshes)"),
        ],
    )
    return (
        [
            html.H3("Before / after"),
            facts,
            html.Div(
                className="row",
                children=[
                    html.Div(dcc.Graph(figure=chart_a, config=GRAPH_CONFIG, className="diff-chart"), className="half"),
                    html.Div(dcc.Graph(figure=chart_b, config=GRAPH_CONFIG, className="diff-chart"), className="half"),
                ],
            ),
        ],
        outline,
        outline,
    )


@callback(
    Output(ids.DIFF_DOWNLOAD, "data"),
    Input(ids.DIFF_CSV, "n_clicks"),
    State(ids.DIFF_A, "value"),
    State(ids.DIFF_B, "value"),
    State(ids.DIFF_K, "value"),
    State(ids.DIFF_STATE, "data"),
    State(ids.DIFF_CELL, "data"),
    prevent_initial_call=True,
)
def export_changes(_n, a, b, k, user_thr, cell):
    """Every compared mesh (of the highlighted transition, if any) ranked by pattern change, as CSV."""
    catalog = get_catalog()
    k = _k(k)
    base, _problem = _pair(catalog, a, b, k)
    if base is None:
        return dash.no_update
    thr = _user_threshold(user_thr)
    diff = base if thr is None else base.with_threshold(thr)
    cell_t = _valid_cell(cell, k)
    table = change_table(diff, catalog.cluster_names(a, k), cell_t)
    stem = f"changes_{a.replace('/', '_')}_to_{b.split('/', 1)[1]}_k{k}" + (f"_cell{cell_t[0]}-{cell_t[1]}" if cell_t else "")
    return {"content": change_csv(table), "filename": f"{stem}.csv", "type": "text/csv"}


@callback(
    Output(ids.DIFF_PERIOD, "max"),
    Output(ids.DIFF_PERIOD, "marks"),
    Output(ids.DIFF_PERIOD, "value"),
    Output(ids.DIFF_PERIOD_NOTE, "children"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
)
def show_periods(a, b):
    """The slider over the periods of A's city (in A's space): its marks and B's place on it."""
    catalog = get_catalog()
    if a not in catalog.refs:
        return 1, {}, None, "Period B of this city: pick period A first"
    keys = catalog.periods(a)
    note = f"Period B: {count_of(len(keys), 'period')} of {catalog.city(a).title()}" + (
        " (only one: nothing to step through)" if len(keys) < 2 else ""
    )
    return max(len(keys) - 1, 1), slider_marks(period_marks(catalog, keys)), keys.index(b) if b in keys else None, note


def slider_marks(marks: dict[int, str], width: int = 16) -> dict[int, dict]:
    """Marks as the slider draws them: the period on one line, what tells two alike apart (``(yours:
    NAME)``, ``(RELEASE)``) on a second, small line cut to ``width`` characters, so that neighbouring
    marks of one period do not run into each other."""
    out = {}
    for i, text in marks.items():
        period, sep, tag = text.partition(" (")
        tag = ("(" + tag) if sep else ""
        if len(tag) > width:
            tag = tag[: width - 2] + "…)"
        out[i] = {"label": period + ("\n" + tag if tag else ""), "style": MARK_STYLE}
    return out


@callback(
    Output(ids.DIFF_B, "value", allow_duplicate=True),
    Input(ids.DIFF_PERIOD, "value"),
    State(ids.DIFF_A, "value"),
    State(ids.DIFF_B, "value"),
    prevent_initial_call=True,
)
def on_period(index, a, b):
    """Moving the period slider sets period B (A stays)."""
    catalog = get_catalog()
    if a not in catalog.refs or not isinstance(index, int):
        return dash.no_update
    keys = catalog.periods(a)
    if not 0 <= index < len(keys) or keys[index] == b:
        return dash.no_update
    return keys[index]


@callback(
    Output(ids.DIFF_PLAY_TIMER, "disabled"),
    Output(ids.DIFF_PLAY, "children"),
    Output(ids.DIFF_PERIOD, "value", allow_duplicate=True),
    Input(ids.DIFF_PLAY, "n_clicks"),
    Input(ids.DIFF_PLAY_TIMER, "n_intervals"),
    State(ids.DIFF_PLAY_TIMER, "disabled"),
    State(ids.DIFF_PERIOD, "value"),
    State(ids.DIFF_A, "value"),
    prevent_initial_call=True,
)
def play(_clicks, _ticks, stopped, index, a):
    """Play steps period B through the city's periods (skipping A), one every :data:`PLAY_MS`; it stops at the last."""
    catalog = get_catalog()
    if a not in catalog.refs:
        return True, "Play", dash.no_update
    keys = catalog.periods(a)
    if ctx.triggered_id == ids.DIFF_PLAY:
        if not stopped:
            return True, "Play", dash.no_update
        start = -1 if not isinstance(index, int) or index >= len(keys) - 1 else index
        nxt = next((i for i in range(start + 1, len(keys)) if keys[i] != a), None)
        return (True, "Play", dash.no_update) if nxt is None else (False, "Stop", nxt)
    if stopped:
        return dash.no_update, dash.no_update, dash.no_update
    cur = index if isinstance(index, int) else -1
    nxt = next((i for i in range(cur + 1, len(keys)) if keys[i] != a), None)
    if nxt is None:
        return True, "Play", dash.no_update
    last = all(keys[i] == a for i in range(nxt + 1, len(keys)))
    return (True, "Play", nxt) if last else (False, "Stop", nxt)


clientside_callback(
    ClientsideFunction(namespace="diff", function_name="writeUrl"),
    Output(ids.DIFF_URL_SINK, "data"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_K, "value"),
    Input(ids.DIFF_COLOUR, "value"),
    Input(ids.DIFF_STATE, "data"),
    Input(ids.URL_SINK, "data"),
    State(ids.TABS, "value"),
)


clientside_callback(
    ClientsideFunction(namespace="meshes", function_name="syncMaps"),
    Output(ids.DIFF_MAP_A, "viewport"),
    Output(ids.DIFF_MAP, "viewport"),
    Input(ids.DIFF_MAP_A, "center"),
    Input(ids.DIFF_MAP_A, "zoom"),
    Input(ids.DIFF_MAP, "center"),
    Input(ids.DIFF_MAP, "zoom"),
    prevent_initial_call=True,
)
