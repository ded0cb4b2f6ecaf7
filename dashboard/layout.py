"""The page shell: stores, the header and one tab per view (each view's layout lives in its module)."""

from __future__ import annotations

from dash import dcc, html

from . import ids
from .views import diff as diff_view
from .views import map as map_view


def make_layout(
    options: list[dict],
    state: dict,
    diff_pair: tuple[str | None, str | None],
    basemap: str | None,
    map_viewport: dict | None = None,
    diff_viewport: dict | None = None,
    train: html.Div | None = None,
    version: int = 0,
    people: html.Div | None = None,
    regions: html.Div | None = None,
) -> html.Div:
    return html.Div(
        className="page",
        children=[
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Store(id=ids.URL_SINK),
            dcc.Store(id=ids.SELECTED, data=state.get("selected")),
            dcc.Store(id=ids.TRAIN_SOURCE),
            dcc.Store(id=ids.TRAIN_MAPPING_STORE),
            dcc.Store(id=ids.TRAIN_RESULT),
            dcc.Store(id=ids.CATALOG_VERSION, data=version),
            dcc.Interval(id=ids.JOB_POLL, interval=3000),
            html.H1("Area embeddings"),
            dcc.Tabs(
                id=ids.TABS,
                value=state.get("view", "map"),
                children=[
                    dcc.Tab(label="Cluster map", value="map", children=[map_view.layout(options, state, basemap, map_viewport)]),
                    dcc.Tab(
                        label="Compare periods",
                        value="diff",
                        children=[diff_view.layout(options, diff_pair[0], diff_pair[1], basemap, diff_viewport)],
                    ),
                    *([dcc.Tab(label="People", value="people", children=[people])] if people is not None else []),
                    *([dcc.Tab(label="Regions", value="regions", children=[regions])] if regions is not None else []),
                    *([dcc.Tab(label="Train on your data", value="train", children=[train])] if train is not None else []),
                ],
            ),
        ],
    )
