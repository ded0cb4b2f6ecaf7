"""The period-comparison view: two synchronised maps (A by cluster, B by change), a transition matrix."""

from __future__ import annotations

import numpy as np
from dash import ClientsideFunction, Input, Output, callback, clientside_callback, dcc, html

from core import knobs
from core.errors import CoreError

from .. import ids
from ..catalog import app_context
from ..components import make_map, tile_url, viewport
from ..figures import GRAPH_CONFIG, transition_heatmap

DIFF_K = 10  # the clustering whose transitions are shown


def layout(options: list[dict], a: str | None, b: str | None, basemap: str | None, view: dict | None = None) -> html.Div:
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
                            "Colour period B by",
                            dcc.RadioItems(
                                id=ids.DIFF_COLOUR,
                                value="change",
                                inline=True,
                                options=[
                                    {"label": "stay pattern changed", "value": "change"},
                                    {"label": "embedding distance to A", "value": "distance"},
                                ],
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Changed above (JS divergence; empty = decided from the data)",
                            dcc.Input(
                                id=ids.DIFF_THRESHOLD,
                                type="number",
                                min=0.0001,
                                max=1,
                                step="any",
                                debounce=True,
                                placeholder="from the data",
                                style={"width": "9em"},
                            ),
                        ]
                    ),
                ],
            ),
            html.Div(id=ids.DIFF_SUMMARY, className="summary", role="status"),
            dcc.Store(id=ids.DIFF_SYNC),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            html.H3("Period A: joint clusters (k = 10, the same colours as in every dataset of the space)"),
                            html.Div(
                                id=ids.DIFF_MAP_BOX_A,
                                children=[make_map(ids.DIFF_MAP_A, ids.DIFF_LAYER_A, basemap, view, height="460px")],
                            ),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.H3("Period B: red = stay pattern changed since A, blue = unchanged (or: distance classes)"),
                            html.Div(
                                id=ids.DIFF_MAP_BOX,
                                children=[make_map(ids.DIFF_MAP, ids.DIFF_LAYER, basemap, view, height="460px")],
                            ),
                        ],
                    ),
                ],
            ),
            dcc.Graph(id=ids.DIFF_MATRIX, config=GRAPH_CONFIG),
        ],
    )


def diff_threshold(value: object) -> float | None:
    """The user's threshold for "changed" (a positive number), or ``None``: decided from the data."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return float(knobs.CHANGE_THRESHOLD.clamp(v)) if np.isfinite(v) and v > 0 else None


def _empty(message: str):
    return transition_heatmap(np.zeros((1, 1)), "A", "B"), message, [], []


@callback(
    Output(ids.DIFF_MATRIX, "figure"),
    Output(ids.DIFF_SUMMARY, "children"),
    Output(ids.DIFF_MAP_BOX, "children"),
    Output(ids.DIFF_MAP_BOX_A, "children"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_COLOUR, "value"),
    Input(ids.DIFF_THRESHOLD, "value"),
)
def show_diff(a, b, colour_by, threshold):
    """Transition matrix (joint clusters, named), summary and the two synchronised maps of periods A and B."""
    app = app_context()
    catalog, basemap = app.catalog, app.basemap
    colour_by = colour_by if colour_by in ("change", "distance") else "change"
    thr = diff_threshold(threshold)
    if not a or not b or a not in catalog.refs or b not in catalog.refs:
        return _empty("Pick two datasets.")
    if a == b:
        return _empty("Pick two different datasets.")
    if catalog.space(a) != catalog.space(b):
        return _empty(
            f"{a} and {b} are not in one shared space (trained with different anchors or free): their clusters and distances cannot be compared."
        )
    k = DIFF_K
    try:
        diff = catalog.diff(a, b, k, thr)
    except (ValueError, CoreError) as exc:
        return _empty(str(exc))
    n = len(diff.codes)
    summary = (
        f"{n:,} meshes in both; {int(diff.changed.sum()):,} changed their stay pattern ({diff.changed.mean():.0%}, red on map B; "
        f"threshold {diff.threshold:.4f}{' decided from the data' if thr is None else ' set by you'}); "
        f"{diff.stayed:.0%} stayed in their cluster; median embedding distance {np.median(diff.distance):.2f}"
    )
    names = catalog.cluster_names(a, k)
    fig = transition_heatmap(diff.transitions(), a.split("/", 1)[1], b.split("/", 1)[1], names)
    view = viewport(catalog, b)
    params = {"ds": b, "mode": "diff", "other": a, "k": k, "by": colour_by}
    if thr is not None:
        params["thr"] = thr
    map_b = make_map(ids.DIFF_MAP, ids.DIFF_LAYER, basemap, view, tile_url(params), height="460px")
    map_a = make_map(
        ids.DIFF_MAP_A, ids.DIFF_LAYER_A, basemap, view, tile_url({"ds": a, "mode": "cluster", "k": k}), height="460px"
    )
    return fig, summary, [map_b], [map_a]


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
