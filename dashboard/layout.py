"""Layout: functions returning components, no callbacks."""

from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html

from . import ids

JAPAN = (36.2, 138.2)


def make_map(
    map_id: str,
    layer_id: str,
    basemap: str | None,
    view: dict | None = None,
    url: str = "",
    selection: bool = False,
    height: str = "560px",
) -> html.Div:
    """A Leaflet map: optional basemap, our mesh tile layer and (main map) the selected-mesh outline.

    Re-created whenever the dataset changes, so that it opens on that dataset's extent.
    """
    children = []
    if basemap:
        children.append(dl.TileLayer(url=basemap, attribution="&copy; OpenStreetMap contributors", maxZoom=19))
    children.append(dl.TileLayer(id=layer_id, url=url, opacity=0.85, maxZoom=20, maxNativeZoom=20))
    extra = (
        [dl.GeoJSON(id=ids.SELECTED_LAYER, data=None, style={"color": "#000", "weight": 3, "fillOpacity": 0})]
        if selection
        else []
    )
    children += extra
    view = view or {"center": JAPAN, "zoom": 5}
    # No zoom / fade animations: tiles are server-rendered anyway, and an animation still running
    # when the map is replaced (new dataset, other tab) makes Leaflet throw '_leaflet_pos' errors.
    leaflet = dl.Map(
        id=map_id,
        center=view["center"],
        zoom=view["zoom"],
        maxZoom=20,
        children=children,
        style={"height": height},
        className="mesh-map",
        zoomAnimation=False,
        fadeAnimation=False,
        markerZoomAnimation=False,
    )
    # react-leaflet ignores a new centre after mount: a wrapper with a new id makes React mount a fresh map.
    tag = f"{view['center'][0]:.5f}-{view['center'][1]:.5f}-{view['zoom']}".replace(".", "_")
    return html.Div(leaflet, id=f"{map_id}-at-{tag}")


def map_tab(options: list[dict], state: dict, basemap: str | None, view: dict | None = None) -> html.Div:
    return html.Div(
        className="map-tab",
        children=[
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        ["Dataset", dcc.Dropdown(id=ids.DATASET, options=options, value=state["ds"], clearable=False)],
                        className="wide",
                    ),
                    html.Label(
                        [
                            "Clusters (k)",
                            dcc.RadioItems(
                                id=ids.K,
                                options=[5, 10, 20],
                                value=state["k"] if state["k"] in (5, 10, 20) else None,
                                inline=True,
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "any k",
                            dcc.Input(
                                id=ids.K_ANY,
                                type="number",
                                min=2,
                                max=50,
                                step=1,
                                value=None if state["k"] in (5, 10, 20) else state["k"],
                                debounce=True,
                                style={"width": "5em"},
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Colour by",
                            dcc.RadioItems(
                                id=ids.VIEW,
                                options=[
                                    {"label": "cluster", "value": "cluster"},
                                    {"label": "similarity to the clicked mesh", "value": "similar"},
                                ],
                                value="cluster",
                                inline=True,
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Show meshes within distance",
                            dcc.Slider(
                                id=ids.THRESHOLD, min=0, max=16, step=0.5, value=16, marks={v: str(v) for v in (0, 2, 4, 8, 16)}
                            ),
                        ],
                        className="slider",
                    ),
                ],
            ),
            html.Div(id=ids.SUMMARY, className="summary", role="status"),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="map-col",
                        id=ids.MAP_BOX,
                        children=[make_map(ids.MAP, ids.MESH_LAYER, basemap, view, selection=True)],
                    ),
                    html.Div(
                        className="side-col",
                        children=[
                            html.H3("Clusters", id=ids.LEGEND_TITLE),
                            dcc.Loading(html.Div(id=ids.LEGEND, className="legend"), type="dot"),
                            html.Div(
                                className="export",
                                children=[
                                    html.Button(
                                        "Export GeoJSON",
                                        id=ids.EXPORT_GEOJSON,
                                        title="meshes of this dataset with code, vector, cluster labels, mesh_size, is_complemented",
                                    ),
                                    html.Button("Export CSV", id=ids.EXPORT_CSV),
                                    dcc.Download(id=ids.DOWNLOAD),
                                ],
                            ),
                            html.H3("Selected mesh"),
                            html.Div(id=ids.MESH_INFO, className="mesh-info", children="Click a mesh on the map."),
                        ],
                    ),
                ],
            ),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            dcc.RadioItems(
                                id=ids.CHART_REDUCE,
                                options=[
                                    {"label": "sum over meshes", "value": "sum"},
                                    {"label": "mean per mesh", "value": "mean"},
                                ],
                                value="sum",
                                inline=True,
                            ),
                            dcc.Loading(dcc.Graph(id=ids.CHART, config={"displaylogo": False}), type="dot"),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            dcc.Graph(id=ids.MESH_CHART, config={"displaylogo": False}, style={"display": "none"}),
                            html.Div(id=ids.SIMILAR, className="similar"),
                        ],
                    ),
                ],
            ),
        ],
    )


def diff_tab(options: list[dict], a: str | None, b: str | None, basemap: str | None, view: dict | None = None) -> html.Div:
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


def train_tab(anchor_options: list[dict], inbox: list[dict], upload_cap: int) -> html.Div:
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
                                            html.Label(
                                                [
                                                    "dim (free only)",
                                                    dcc.Input(id=ids.TRAIN_DIM, type="number", min=2, max=64, step=1, value=8),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "stopping tolerance",
                                                    dcc.Input(id=ids.TRAIN_TOL, type="number", min=0, max=0.1, value=2e-5),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "most epochs",
                                                    dcc.Input(
                                                        id=ids.TRAIN_EPOCHS,
                                                        type="number",
                                                        min=1,
                                                        max=1_000_000,
                                                        step=1,
                                                        value=800,
                                                    ),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "anchor schedule",
                                                    dcc.Dropdown(
                                                        id=ids.TRAIN_SCHEDULE,
                                                        value="exponential",
                                                        clearable=False,
                                                        options=["exponential", "linear", "constant", "mixed"],
                                                    ),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "privacy: more than N people per mesh (raw GPS)",
                                                    dcc.Input(id=ids.TRAIN_MIN_USERS, type="number", min=1, step=1, value=10),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "stay radius, m (raw GPS)",
                                                    dcc.Input(
                                                        id=ids.TRAIN_GPS_DISTANCE,
                                                        type="number",
                                                        min=1,
                                                        max=5000,
                                                        value=100,
                                                        debounce=True,
                                                    ),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "shortest stay, min (raw GPS)",
                                                    dcc.Input(
                                                        id=ids.TRAIN_GPS_MINUTES,
                                                        type="number",
                                                        min=0,
                                                        max=1440,
                                                        value=5,
                                                        debounce=True,
                                                    ),
                                                ]
                                            ),
                                            html.Label(
                                                [
                                                    "time zone of times without offset (raw GPS)",
                                                    dcc.Input(
                                                        id=ids.TRAIN_GPS_TZ, type="text", value="Asia/Tokyo", debounce=True
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
        ],
    )


def make_layout(
    options: list[dict],
    state: dict,
    diff_pair: tuple[str | None, str | None],
    basemap: str | None,
    map_view: dict | None = None,
    diff_view: dict | None = None,
    train: html.Div | None = None,
    version: int = 0,
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
                    dcc.Tab(label="Cluster map", value="map", children=[map_tab(options, state, basemap, map_view)]),
                    dcc.Tab(
                        label="Compare periods",
                        value="diff",
                        children=[diff_tab(options, diff_pair[0], diff_pair[1], basemap, diff_view)],
                    ),
                    *([dcc.Tab(label="Train on your data", value="train", children=[train])] if train is not None else []),
                ],
            ),
        ],
    )
