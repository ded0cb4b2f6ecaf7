"""The period-comparison view: two synchronised maps (A by cluster, B by change), a transition matrix."""

from __future__ import annotations

import dash
import numpy as np
from dash import ClientsideFunction, Input, Output, callback, clientside_callback, dcc, html

from core.errors import CoreError

from .. import ids
from ..catalog import app_context
from ..components import make_map, tile_url, viewport
from ..figures import transition_heatmap


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
                            html.H3("Period A: clusters (k = 10)"),
                            html.Div(
                                id=ids.DIFF_MAP_BOX_A,
                                children=[make_map(ids.DIFF_MAP_A, ids.DIFF_LAYER_A, basemap, view, height="460px")],
                            ),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.H3("Period B: red = stay pattern changed since A (or: distance classes)"),
                            html.Div(
                                id=ids.DIFF_MAP_BOX,
                                children=[make_map(ids.DIFF_MAP, ids.DIFF_LAYER, basemap, view, height="460px")],
                            ),
                        ],
                    ),
                ],
            ),
            dcc.Graph(id=ids.DIFF_MATRIX, config={"displaylogo": False}),
        ],
    )


@callback(
    Output(ids.DIFF_MATRIX, "figure"),
    Output(ids.DIFF_SUMMARY, "children"),
    Output(ids.DIFF_MAP_BOX, "children"),
    Output(ids.DIFF_MAP_BOX_A, "children"),
    Input(ids.DIFF_A, "value"),
    Input(ids.DIFF_B, "value"),
    Input(ids.DIFF_COLOUR, "value"),
)
def show_diff(a, b, colour_by):
    """Transition matrix, summary and the two synchronised maps of periods A and B."""
    app = app_context()
    catalog, basemap = app.catalog, app.basemap
    colour_by = colour_by if colour_by in ("change", "distance") else "change"
    if not a or not b or a not in catalog.refs or b not in catalog.refs:
        return transition_heatmap(np.zeros((1, 1)), "A", "B"), "Pick two datasets.", dash.no_update, dash.no_update
    if a == b:
        return transition_heatmap(np.zeros((1, 1)), "A", "B"), "Pick two different datasets.", dash.no_update, dash.no_update
    try:
        diff = catalog.diff(a, b, 10)
    except (ValueError, CoreError) as exc:
        return transition_heatmap(np.zeros((1, 1)), "A", "B"), str(exc), dash.no_update, dash.no_update
    n = len(diff.codes)
    summary = (
        f"{n:,} meshes in both; {int(diff.changed.sum()):,} changed their stay pattern ({diff.changed.mean():.0%}, red on the map); "
        f"median embedding distance {np.median(diff.distance):.2f}"
    )
    fig = transition_heatmap(diff.transitions(), a.split("/", 1)[1], b.split("/", 1)[1])
    view = viewport(catalog, b)
    map_b = make_map(
        ids.DIFF_MAP,
        ids.DIFF_LAYER,
        basemap,
        view,
        tile_url({"ds": b, "mode": "diff", "other": a, "k": 10, "by": colour_by}),
        height="460px",
    )
    map_a = make_map(
        ids.DIFF_MAP_A, ids.DIFF_LAYER_A, basemap, view, tile_url({"ds": a, "mode": "cluster", "k": 10}), height="460px"
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
