"""The Regions view: align two cities' region embeddings (CoRE or a baseline) and look at the label transfer.

Pick a source and a target city, a method, epochs and a seed; "Align" trains in a Dash background job
(progress bar, cancellable; the embeddings are cached on disk, so a choice trained once opens at
once). Then pick a label and a scale: the target's map is coloured by the transferred prediction,
the truth or the error, beside the metrics of the method and of the mean / area baselines; both
cities' embeddings are projected together; a click on a region (map or projection) lists and rings
its nearest regions in the other city. Data and logic: :mod:`dashboard.regions` over
:mod:`core.regions.explore`; this module is glue.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import dash_leaflet as dl
from dash import Input, Output, State, callback, ctx, dcc, html

from core.errors import CoreError, InputError
from core.regions.config import EPOCHS, METHOD, METHODS, SCALE, SCALES, SEED

from .. import ids
from .. import regions as store
from ..catalog import app_context
from ..components import knob_input

METHOD_LABELS = {
    "core": "CoRE (one stage)",
    "individual": "Individual (not aligned)",
    "procrustes": "Procrustes (rank anchors)",
    "affine": "affine (rank anchors)",
}
SCALE_LABELS = {"sum": "as given (sum)", "density": "per km²", "log": "log(1 + sum)"}
BASELINE_LABELS = {"mean": "mean of source", "area": "area only (ridge on log area)"}
SELECTION = [
    Input(ids.REGIONS_SOURCE, "value"),
    Input(ids.REGIONS_TARGET, "value"),
    Input(ids.REGIONS_METHOD, "value"),
    Input(ids.REGIONS_SEED, "value"),
    Input(ids.REGIONS_EPOCHS, "value"),
]


def _data_dir() -> Path:
    return app_context().data_dir


def layout(data_dir: Path, basemap: str | None) -> html.Div:
    """The view's controls, map, projection and lists (the cities offered are listed now, at page load)."""
    offered = store.cities(data_dir)
    options = [{"label": c.label, "value": k} for k, c in offered.items()]
    keys = list(offered)
    layers: list[Any] = [dl.TileLayer(url=basemap, maxZoom=19)] if basemap else []
    layers += [
        dl.GeoJSON(
            id=ids.REGIONS_LAYER,
            data=None,
            zoomToBounds=True,
            style={"variable": "regionsView.style"},
            hideout={"fill": []},
        ),
        dl.GeoJSON(
            id=ids.REGIONS_HIGHLIGHT,
            data=None,
            interactive=False,
            style={"color": "#d62728", "weight": 3, "fillOpacity": 0},
        ),
        dl.ScaleControl(position="bottomleft", imperial=False),
    ]
    return html.Div(
        className="regions-tab",
        children=[
            html.P(
                [
                    "Cross-city region alignment (CoRE and baselines): a ridge trained on the source city's labels "
                    "predicts the target's. Cities: folders under ",
                    html.Code("DATA/regions/<name>/"),
                    " (*.geo, *.mob, <label>_*.npy) and the demo's stays (1 km meshes, label 'stays').",
                ],
                className="hint",
            ),
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        [
                            "Source city (its labels train)",
                            dcc.Dropdown(
                                id=ids.REGIONS_SOURCE,
                                options=options,
                                value=keys[0] if keys else None,
                                clearable=False,
                            ),
                        ],
                        className="wide",
                    ),
                    html.Label(
                        [
                            "Target city (its labels only score)",
                            dcc.Dropdown(
                                id=ids.REGIONS_TARGET,
                                options=options,
                                value=keys[1] if len(keys) > 1 else None,
                                clearable=False,
                            ),
                        ],
                        className="wide",
                    ),
                    html.Label(
                        [
                            "Method",
                            dcc.Dropdown(
                                id=ids.REGIONS_METHOD,
                                options=[{"label": METHOD_LABELS.get(m, m), "value": m} for m in METHODS],
                                value=METHOD.default,
                                clearable=False,
                            ),
                        ],
                        className="wide",
                    ),
                    knob_input(EPOCHS.name, ids.REGIONS_EPOCHS, EPOCHS, debounce=True),
                    knob_input(SEED.name, ids.REGIONS_SEED, SEED, debounce=True),
                ],
            ),
            html.Div(
                className="buttons",
                children=[
                    html.Button("Align", id=ids.REGIONS_START),
                    html.Button("Cancel", id=ids.REGIONS_CANCEL, disabled=True),
                    html.Span(id=ids.REGIONS_CANCEL_MSG, className="hint"),
                ],
            ),
            html.Progress(id=ids.REGIONS_BAR, value="0", max="100", className="regions-bar"),
            html.Div(id=ids.REGIONS_STATUS, className="hint", role="status"),
            html.Div(id=ids.REGIONS_MSG, role="status"),
            dcc.Store(id=ids.REGIONS_RESULT),
            dcc.Store(id=ids.REGIONS_PICK),
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        ["Label", dcc.Dropdown(id=ids.REGIONS_LABEL, options=[], value=None, clearable=False)],
                        className="wide",
                    ),
                    html.Label(
                        [
                            "Scale",
                            dcc.RadioItems(
                                id=ids.REGIONS_SCALE,
                                inline=True,
                                value=SCALE.default,
                                options=[{"label": SCALE_LABELS.get(s, s), "value": s} for s in SCALES],
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Colour the target by",
                            dcc.RadioItems(
                                id=ids.REGIONS_COLOUR,
                                inline=True,
                                value="predicted",
                                options=[{"label": c, "value": c} for c in store.COLOUR_BY],
                            ),
                        ]
                    ),
                ],
            ),
            html.Div(id=ids.REGIONS_METRICS),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            html.Div(id=ids.REGIONS_LEGEND),
                            dl.Map(
                                id=ids.REGIONS_MAP,
                                center=[36.2, 138.2],
                                zoom=5,
                                children=layers,
                                style={"height": "480px"},
                                zoomAnimation=False,
                                fadeAnimation=False,
                                markerZoomAnimation=False,
                            ),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[dcc.Graph(id=ids.REGIONS_PROJECTION, config={"displaylogo": False})],
                    ),
                ],
            ),
            html.Div(
                id=ids.REGIONS_NEAREST,
                className="regions-nearest",
                children="Click a region on the map or in the projection to list its nearest regions in the other city.",
            ),
        ],
    )


def _selection(source, target, method, seed, epochs) -> store.Selection:
    return store.Selection.from_browser(_data_dir(), source, target, method, seed, epochs)


def _key(sel: store.Selection) -> list:
    """A selection as plain data, to tell whether a job's outcome belongs to what the form shows now."""
    return [sel.source, sel.target, sel.method, sel.seed, sel.epochs]


def _fmt_rank(v: float) -> str:
    """Spearman and R²: three decimals (``1.000``, ``-0.288``), ``–`` when undefined."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def metrics_view(rows: list[dict], label: str, scale: str, notes: list[str] | None = None) -> html.Div:
    """The metrics row: the method and both baselines, MAE / Spearman / R² on the current label and scale."""
    head = html.Tr([html.Th(f"{label}, {SCALE_LABELS.get(scale, scale)}"), html.Th("MAE"), html.Th("Spearman"), html.Th("R²")])
    body = [
        html.Tr(
            [
                html.Td(BASELINE_LABELS.get(r["method"], METHOD_LABELS.get(r["method"], r["method"]))),
                html.Td(store.format_value(r["mae"])),
                html.Td(_fmt_rank(r["spearman"])),
                html.Td(_fmt_rank(r["r2"])),
            ],
            className="method" if i == 0 else "baseline",
        )
        for i, r in enumerate(rows)
    ]
    return html.Div(
        [
            html.Table([html.Thead(head), html.Tbody(body)], className="regions-metrics", id="regions-metrics-table"),
            html.Div("Spearman is undefined (–) for a constant prediction.", className="hint"),
            *[html.Div(n, className="warning", role="alert") for n in (notes or [])],
        ]
    )


def legend_view(legend: dict | None, title: str) -> list:
    if legend is None:
        return [html.Div(title, className="hint")]
    low = ("≤ " if legend["clipped_low"] else "") + store.format_value(legend["low"])
    high = ("≥ " if legend["clipped_high"] else "") + store.format_value(legend["high"])
    return [
        html.Div(
            className="regions-legend",
            children=[
                html.Span(title),
                html.Span(low),
                html.Span(className="regions-ramp", children=[html.Span(style={"background": c}) for c in legend["colours"]]),
                html.Span(high),
            ],
        )
    ]


@callback(
    Output(ids.REGIONS_LABEL, "options"),
    Output(ids.REGIONS_LABEL, "value"),
    Input(ids.REGIONS_SOURCE, "value"),
    Input(ids.REGIONS_TARGET, "value"),
    State(ids.REGIONS_LABEL, "value"),
)
def choose_cities(source, target, label):
    """The labels both cities carry (the current one kept when it still fits)."""
    try:
        labels = store.common_labels(store.load_graph(_data_dir(), source), store.load_graph(_data_dir(), target))
    except CoreError:
        return [], None
    return labels, label if label in labels else (labels[0] if labels else None)


@callback(Output(ids.REGIONS_LAYER, "data"), Input(ids.REGIONS_TARGET, "value"))
def target_shapes(target):
    """The target's regions as GeoJSON (sent once per target; colours come through the hideout)."""
    try:
        return store.region_shapes(_data_dir(), target)
    except CoreError:
        return None


@callback(
    Output(ids.REGIONS_RESULT, "data"),
    Input(ids.REGIONS_START, "n_clicks"),
    State(ids.REGIONS_SOURCE, "value"),
    State(ids.REGIONS_TARGET, "value"),
    State(ids.REGIONS_METHOD, "value"),
    State(ids.REGIONS_SEED, "value"),
    State(ids.REGIONS_EPOCHS, "value"),
    background=True,
    prevent_initial_call=True,
    progress=[Output(ids.REGIONS_BAR, "value"), Output(ids.REGIONS_STATUS, "children")],
    running=[
        (Output(ids.REGIONS_START, "disabled"), True, False),
        (Output(ids.REGIONS_CANCEL, "disabled"), False, True),
    ],
    cancel=[Input(ids.REGIONS_CANCEL, "n_clicks")],
)
def align(set_progress, _n, source, target, method, seed, epochs):
    """Runs in the background job process: train (unless cached) and store the embeddings; return plain data.

    The job is a fork of the server: torch's thread pool hangs in a fork of a process that used it
    (NOTES), so torch runs on one thread here, and ``AREA_THREADS`` keeps the trainer from raising it.
    """
    import os

    from core.threads import ENV, torch_threads

    os.environ[ENV] = "1"
    torch_threads(1)
    try:
        sel = _selection(source, target, method, seed, epochs)
    except InputError as exc:
        return {"state": "invalid", "message": str(exc)}
    set_progress(("0", f"Starting {sel.describe()}..."))
    chosen = _key(sel)
    try:
        out = store.fit_and_cache(_data_dir(), sel, lambda p: set_progress(tuple(map(str, store.progress_text(sel, p)))))
    except Exception as exc:  # the job's boundary: any failure becomes a visible note, not a stack trace
        return {"state": "failed", "message": str(exc) or type(exc).__name__, "selection": chosen}
    set_progress(("100", "Done."))
    return {**out, "selection": chosen}


@callback(Output(ids.REGIONS_CANCEL_MSG, "children"), Input(ids.REGIONS_CANCEL, "n_clicks"), prevent_initial_call=True)
def cancelled(_n):
    return "Cancelled: nothing was saved."


@callback(
    Output(ids.REGIONS_CANCEL_MSG, "children", allow_duplicate=True),
    Input(ids.REGIONS_START, "n_clicks"),
    prevent_initial_call=True,
)
def started(_n):
    return ""


@callback(
    Output(ids.REGIONS_LAYER, "hideout"),
    Output(ids.REGIONS_LEGEND, "children"),
    Output(ids.REGIONS_METRICS, "children"),
    Output(ids.REGIONS_MSG, "children"),
    *SELECTION,
    Input(ids.REGIONS_LABEL, "value"),
    Input(ids.REGIONS_SCALE, "value"),
    Input(ids.REGIONS_COLOUR, "value"),
    Input(ids.REGIONS_RESULT, "data"),
)
def show(source, target, method, seed, epochs, label, scale, colour, result):
    """Colour the target's map, fill the metrics row and say what is shown (or why nothing is)."""
    data_dir = _data_dir()
    try:
        sel = _selection(source, target, method, seed, epochs)
        tgt = store.load_graph(data_dir, sel.target)
    except CoreError as exc:
        return {"fill": []}, [], [], html.Div(str(exc), className="error", role="alert")
    scale = SCALE.clamp(scale)
    by = colour if colour in store.COLOUR_BY else "predicted"
    label = label if isinstance(label, str) and label in tgt.labels else None
    found = store.cached_embeddings(data_dir, sel)
    if found is None:
        failed = isinstance(result, dict) and result.get("state") == "failed" and result.get("selection") == _key(sel)
        note = (
            html.Div(f"Problem: {result.get('message')}", className="error", role="alert")
            if failed
            else html.Div(f"Not trained yet for {sel.describe()}: press Align. The map shows the truth.", className="hint")
        )
        fill, legend = store.map_colours(None, tgt, label, scale, "true")
        return {"fill": fill}, legend_view(legend, f"true {label} ({scale})" if label else "no label"), [], note
    info = found[2]
    msg = html.Div(
        f"{METHOD_LABELS.get(sel.method, sel.method)} on {sel.source} ({info['regions'][0]:,} regions) and "
        f"{sel.target} ({info['regions'][1]:,} regions), {sel.epochs} epochs, seed {sel.seed}: "
        f"trained in {info['seconds']:.1f} s."
        + (" Individual embeddings are not aligned: the paper's lower bound." if sel.method == "individual" else ""),
        id="regions-trained",
    )
    if label is None:
        fill, legend = store.map_colours(None, tgt, None, scale, by)
        return {"fill": fill}, legend_view(legend, "no label both cities carry"), [], msg
    table, rows = store.transfer_table(data_dir, sel, label, scale)
    fill, legend = store.map_colours(table, tgt, label, scale, by)
    title = {
        "predicted": f"predicted {label} ({scale}; same scale as true)",
        "true": f"true {label} ({scale}; same scale as predicted)",
        "error": f"error, predicted − true ({scale}): blue too low, red too high",
    }[by]
    sizes = (int(info["regions"][0]), int(info["regions"][1]))
    notes = store.transfer_notes(table, sizes, METHOD_LABELS.get(sel.method, sel.method))
    return {"fill": fill}, legend_view(legend, title), metrics_view(rows, label, scale, notes), msg


@callback(
    Output(ids.REGIONS_PICK, "data"),
    Input(ids.REGIONS_LAYER, "clickData"),
    Input(ids.REGIONS_PROJECTION, "clickData"),
    *SELECTION,
    prevent_initial_call=True,
)
def pick(map_click, point_click, source, target, method, seed, epochs):
    """A clicked region (target map or projection), validated; a new selection clears it."""
    if ctx.triggered_id not in (ids.REGIONS_LAYER, ids.REGIONS_PROJECTION):
        return None
    try:
        sel = _selection(source, target, method, seed, epochs)
        sizes = (store.load_graph(_data_dir(), sel.source).n, store.load_graph(_data_dir(), sel.target).n)
    except CoreError:
        return None
    if ctx.triggered_id == ids.REGIONS_LAYER:
        p = store.Pick.from_map(map_click, sizes[1])
    else:
        p = store.Pick.from_projection(point_click, sizes)
    return None if p is None else {"side": p.side, "region": p.region}


@callback(
    Output(ids.REGIONS_PROJECTION, "figure"),
    Output(ids.REGIONS_NEAREST, "children"),
    Output(ids.REGIONS_HIGHLIGHT, "data"),
    Input(ids.REGIONS_PICK, "data"),
    Input(ids.REGIONS_RESULT, "data"),
    *[State(i.component_id, i.component_property) for i in SELECTION],
)
def nearest(picked, _result, source, target, method, seed, epochs):
    """The joint projection with the pick and its nearest regions in the other city ringed, listed and outlined."""
    hint = "Click a region on the map or in the projection to list its nearest regions in the other city."
    data_dir = _data_dir()
    try:
        sel = _selection(source, target, method, seed, epochs)
        graphs = (store.load_graph(data_dir, sel.source), store.load_graph(data_dir, sel.target))
        frame = store.projection(data_dir, sel)
    except CoreError:
        empty = {
            "data": [],
            "layout": {
                "height": 480,
                "title": {"text": "Align two cities to see their embeddings"},
                "xaxis": {"visible": False},
                "yaxis": {"visible": False},
            },
        }
        return empty, hint, None
    names = (graphs[0].name, graphs[1].name)
    region_ids = (graphs[0].region_ids, graphs[1].region_ids)
    p = store.Pick.from_store(picked, (graphs[0].n, graphs[1].n))
    if p is None:
        return store.projection_figure(frame, names, region_ids, None, None), hint, None
    near = store.nearest_table(data_dir, sel, p, store.NEAREST)
    other = 1 - p.side
    items = [
        html.Li(f"{names[other]} region {rid} (cosine similarity {s:.3f})")
        for rid, s in zip(near["region_id"].tolist(), near["similarity"].tolist())
    ]
    shown = store.region_shapes(data_dir, sel.target)
    outline = store.subset(shown, near["region"].tolist() if other == 1 else [p.region])
    listing = [
        html.H3(f"Nearest to {names[p.side]} region {region_ids[p.side][p.region]} in {names[other]}"),
        html.Ol(items, id="regions-nearest-list"),
        html.Div(
            "Ringed in red in the projection"
            + (" and outlined in red on the map." if other == 1 else "; the picked region is outlined on the map."),
            className="hint",
        ),
    ]
    return store.projection_figure(frame, names, region_ids, p, near), listing, outline if outline["features"] else None
