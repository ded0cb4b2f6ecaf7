"""The map view: a dataset's meshes coloured by cluster or by similarity, a clicked mesh's facts,
its stay pattern and the most similar meshes here and across the anchored space; exports.

Layout and callbacks live here at module level (registered with ``dash.callback``); the logic
that is not Dash glue (:func:`parse_url_state`, :func:`pick_mesh`) is plain and unit-tested.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import dash
import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html

from core import knobs
from core.analysis.similarity import similar_across, top_k
from core.constants import RELEASED_KS
from core.errors import CoreError

from .. import ids
from ..catalog import Catalog, app_context, get_catalog
from ..components import distance_legend, effective_k, legend, make_map, mesh_polygon, tile_url, viewport
from ..figures import DISTANCE_LABELS, GRAPH_CONFIG, class_charts, cluster_color, pattern_chart


def layout(options: list[dict], state: dict, basemap: str | None, view: dict | None = None) -> html.Div:
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
                                options=list(RELEASED_KS),
                                value=state["k"] if state["k"] in RELEASED_KS else None,
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
                                min=knobs.K.low,
                                max=knobs.K.high,
                                step=1,
                                value=None if state["k"] in RELEASED_KS else state["k"],
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
                            html.Details(
                                className="rename",
                                children=[
                                    html.Summary("Rename a cluster (kept with the release, for every dataset of the space)"),
                                    dcc.Dropdown(id=ids.RENAME_CLUSTER, options=[], placeholder="cluster", clearable=False),
                                    dcc.Input(
                                        id=ids.RENAME_TEXT,
                                        type="text",
                                        maxLength=60,
                                        placeholder="new name (empty: back to the derived one)",
                                    ),
                                    html.Button("Rename", id=ids.RENAME_BUTTON),
                                    html.Span(id=ids.RENAME_MSG, className="hint", role="status"),
                                    dcc.Store(id=ids.NAMES_VERSION, data=0),
                                ],
                            ),
                            html.Div(
                                className="export",
                                children=[
                                    html.Button(
                                        "Export GeoJSON",
                                        id=ids.EXPORT_GEOJSON,
                                        title="meshes of this dataset with code, vector, cluster labels, mesh_size, is_complemented",
                                    ),
                                    html.Button("Export CSV", id=ids.EXPORT_CSV),
                                    html.Button(
                                        "Export GeoPackage",
                                        id=ids.EXPORT_GPKG,
                                        title="mesh polygons with labels, names and vectors, for QGIS",
                                    ),
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
                            dcc.Loading(dcc.Graph(id=ids.CHART, config=GRAPH_CONFIG), type="dot"),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            dcc.Graph(id=ids.MESH_CHART, config=GRAPH_CONFIG, style={"display": "none"}),
                            html.Div(id=ids.SIMILAR, className="similar"),
                        ],
                    ),
                ],
            ),
        ],
    )


def parse_url_state(search: str | None, catalog: Catalog) -> dict | None:
    """The view a URL's query asks for: ``ds``, ``k``, ``mesh`` (a code) and ``view``.

    Returns:
        ``None`` when the URL names no known dataset; else ``{"ds", "k", "selected", "view"}`` with
        ``k`` clamped to the allowed range and ``selected`` the mesh row (or ``None``).
    """
    q = {key: v[0] for key, v in parse_qs((search or "").lstrip("?")).items()}
    key = q.get("ds")
    view = q.get("view") if q.get("view") in ("diff", "train", "people") else None
    if key is not None and key not in catalog.refs:
        catalog.refresh_if_changed()  # a dataset trained since this server process last looked
    if key not in catalog.refs:
        return {"ds": None, "k": None, "selected": None, "view": view} if view else None
    k = int(knobs.K.clamp(q.get("k", knobs.K.default)))
    selected = None
    mesh = q.get("mesh", "")
    if mesh.isdigit() and len(mesh) <= 14:
        hit = np.flatnonzero(catalog.get(key).codes == int(mesh))
        if hit.size:
            selected = {"ds": key, "row": int(hit[0]), "code": int(mesh)}
    return {"ds": key, "k": k, "selected": selected, "view": view or "map"}


def pick_mesh(catalog: Catalog, key: str, lat: object, lng: object) -> dict | None:
    """The mesh of dataset ``key`` under a point: ``{"ds", "row", "code"}``, or ``None`` outside every mesh."""
    try:
        y, x = float(lat), float(lng)  # type: ignore[arg-type]  # anything the browser sent
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(y) and np.isfinite(x)):
        return None
    row = int(catalog.index(key).lookup(np.array([y]), np.array([x]))[0])
    return None if row < 0 else {"ds": key, "row": row, "code": int(catalog.get(key).codes[row])}


@callback(
    Output(ids.DATASET, "value"),
    Output(ids.K, "value"),
    Output(ids.K_ANY, "value"),
    Output(ids.SELECTED, "data"),
    Output(ids.TABS, "value"),
    Input(ids.URL, "search"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
)
def on_url_or_k(search, k, k_any):
    """Shareable state: the URL sets dataset, k, mesh and view on load; the two k inputs exclude each other."""
    keep = dash.no_update
    if ctx.triggered_id == ids.K:
        return keep, keep, None if k else keep, keep, keep
    if ctx.triggered_id == ids.K_ANY:
        return keep, None if k_any else keep, keep, keep, keep
    state = parse_url_state(search, get_catalog())
    if state is None:
        return keep, keep, keep, keep, keep
    if state["ds"] is None:
        return keep, keep, keep, keep, state["view"]
    released = state["k"] in RELEASED_KS
    return state["ds"], state["k"] if released else None, None if released else state["k"], state["selected"], state["view"]


clientside_callback(
    ClientsideFunction(namespace="meshes", function_name="writeUrl"),
    Output(ids.URL_SINK, "data"),
    Input(ids.DATASET, "value"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.SELECTED, "data"),
    Input(ids.TABS, "value"),
)


@callback(
    Output(ids.SELECTED, "data", allow_duplicate=True),
    Input(ids.MAP, "clickData"),
    State(ids.DATASET, "value"),
    prevent_initial_call=True,
)
def on_map_click(click, key):
    """A click on the map selects the mesh under it (resolved on the server from lat/lng)."""
    catalog = get_catalog()
    if not click or not isinstance(click, dict) or key not in catalog.refs:
        return dash.no_update
    ll = click.get("latlng") or {}
    if not isinstance(ll, dict):
        return dash.no_update
    return pick_mesh(catalog, key, ll.get("lat"), ll.get("lng"))


@callback(
    Output(ids.MESH_LAYER, "url"),
    Output(ids.LEGEND, "children"),
    Output(ids.SUMMARY, "children"),
    Output(ids.CHART, "figure"),
    Output(ids.MAP_BOX, "children"),
    Output(ids.LEGEND_TITLE, "children"),
    Output(ids.RENAME_CLUSTER, "options"),
    Input(ids.DATASET, "value"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.VIEW, "value"),
    Input(ids.THRESHOLD, "value"),
    Input(ids.SELECTED, "data"),
    Input(ids.CHART_REDUCE, "value"),
    Input(ids.NAMES_VERSION, "data"),
)
def show_map(key, k, k_any, view, threshold, selected, reduce, _names_version=None):
    """The map layer, legend, summary and cluster chart of the chosen dataset and colouring."""
    app = app_context()
    catalog, basemap = app.catalog, app.basemap
    if not key or key not in catalog.refs:
        return (
            "",
            [],
            "No dataset found under the data folder.",
            pattern_chart(np.zeros((2, 12, 7)), "no data"),
            dash.no_update,
            "Clusters",
            [],
        )
    k = effective_k(k, k_any)
    k = min(k, catalog.max_k(key))  # a small dataset cannot have more clusters than trained meshes
    reduce = reduce if reduce in ("sum", "mean") else "sum"
    ds = catalog.get(key)
    sel = selected if isinstance(selected, dict) and selected.get("ds") == key and _valid_row(selected, ds.n_meshes) else None
    if view == "similar" and sel is not None:
        url = tile_url({"ds": key, "mode": "similar", "sel": sel["row"], "thr": _threshold(threshold)})
        legend_children = distance_legend()
        title = "Distance to the selected mesh"
    else:
        title = f"Clusters (k = {k})"
        url = tile_url({"ds": key, "mode": "cluster", "k": k})
        legend_children = legend(catalog, key, k)
    n50 = int((ds.mesh_sizes == 50).sum())
    comp = int(ds.complemented.sum()) if ds.complemented is not None else 0
    summary = f"{ds.city} {catalog.period(key)}: {ds.n_meshes:,} meshes ({n50:,} of 50 m, {ds.n_meshes - n50:,} of 250 m; {comp:,} complemented, drawn paler)"
    m = catalog.metrics(key)
    if m:
        space = (
            f"anchored to '{m.get('anchor_release')}' ({(m.get('config') or {}).get('schedule')} schedule)"
            if m.get("anchored")
            else "trained free"
        )
        summary += f". Trained here: ApproximationLoss {m.get('approximation_loss', float('nan')):.4f}, {space}, {m.get('seconds', 0):.1f} s"
    names = catalog.cluster_names(key, k)
    rename_options = [{"label": f"{c}: {n}", "value": c} for c, n in enumerate(names)]
    charts = catalog.cluster_charts(key, k, reduce)
    fig = pattern_chart(charts.sum(axis=0) if reduce == "sum" else charts.mean(axis=0), f"all clusters ({reduce})")
    if sel is not None and view == "similar":
        # One chart per distance class: the meshes at each distance from the clicked one.
        cls = catalog.distance_class_charts(key, sel["row"], reduce)
        fig = class_charts(cls, DISTANCE_LABELS, reduce)
    elif sel is not None:
        c = int(catalog.labels(key, k)[sel["row"]])
        fig = pattern_chart(charts[c], f"cluster {c}: {names[c]} ({reduce} over its meshes here)")
    fired = ctx.triggered_prop_ids  # several inputs may change at once (the URL sets them all)
    if not fired or f"{ids.DATASET}.value" in fired:
        # A new dataset: a new map on its extent (the layer url goes with it).
        return (
            dash.no_update,
            legend_children,
            summary,
            fig,
            [make_map(ids.MAP, ids.MESH_LAYER, basemap, viewport(catalog, key), url, selection=True)],
            title,
            rename_options,
        )
    return url, legend_children, summary, fig, dash.no_update, title, rename_options


@callback(
    Output(ids.MESH_INFO, "children"),
    Output(ids.MESH_CHART, "figure"),
    Output(ids.MESH_CHART, "style"),
    Output(ids.SIMILAR, "children"),
    Output(ids.SELECTED_LAYER, "data"),
    Input(ids.SELECTED, "data"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    State(ids.DATASET, "value"),
)
def show_selection(selected, k, k_any, key):
    """Facts, stay pattern and similar meshes of the selected mesh."""
    catalog = get_catalog()
    if (
        not isinstance(selected, dict)
        or selected.get("ds") != key
        or key not in catalog.refs
        or not _valid_row(selected, catalog.get(key).n_meshes)
    ):
        return "Click a mesh on the map.", pattern_chart(np.zeros((2, 12, 7)), ""), {"display": "none"}, [], None
    k = effective_k(k, k_any)
    row = int(selected["row"])
    ds = catalog.get(key)
    code, size = int(ds.codes[row]), int(ds.mesh_sizes[row])
    comp = bool(ds.complemented[row]) if ds.complemented is not None else False
    cluster = int(catalog.labels(key, k)[row])
    info = html.Dl(
        className="mesh-facts",
        children=[
            html.Dt("code"),
            html.Dd(str(code), id="mesh-code"),
            html.Dt("size"),
            html.Dd(f"{size} m"),
            html.Dt("cluster"),
            html.Dd(f"{cluster} of {k}: {catalog.cluster_names(key, k)[cluster]}", id="mesh-cluster"),
            html.Dt("complemented"),
            html.Dd("yes (embedding of its 250 m mesh)" if comp else "no"),
        ],
    )
    chart = pattern_chart(catalog.mesh_pattern(key, row), f"mesh {code}: approximate stay pattern")
    periods = catalog.across_periods(key, code, size, k)
    facts: list = [info]
    if len(periods) > 1:
        facts = [
            info,
            html.H3(f"This mesh across {len(periods)} periods"),
            html.Ul(
                className="legend-list periods",
                children=[
                    html.Li(
                        className="period-item",
                        children=[
                            html.Span(
                                className="swatch",
                                style={"background": cluster_color(p["cluster"]) if p["cluster"] is not None else "transparent"},
                            ),
                            html.A(p["period"] or p["dataset"], href="?" + urlencode({"ds": p["dataset"], "k": k, "mesh": code})),
                            html.Span(
                                f" cluster {p['cluster']}, distance {p['distance']:.2f}"
                                if p["cluster"] is not None
                                else " not in this dataset"
                            ),
                        ],
                    )
                    for p in periods
                ],
            ),
        ]
    # Complemented meshes repeat their 250 m parent's embedding: listing them would show the clicked
    # mesh's own siblings at distance 0, so candidates are the meshes with an embedding of their own.
    d = catalog.distances_from(key, row).copy()
    if ds.complemented is not None:
        d[ds.complemented] = np.inf
    here = [
        html.Li(
            html.A(
                f"{int(ds.codes[i])} ({int(ds.mesh_sizes[i])} m) - distance {d[i]:.2f}",
                href="?" + urlencode({"ds": key, "k": k, "mesh": int(ds.codes[i])}),
            )
        )
        for i in top_k(d, 5, exclude=row)
    ]
    space = catalog.space(key)
    own = {o: _own_meshes(catalog, o) for o in catalog.comparable(key)}
    found = similar_across(ds.vectors[row], {o: (c, v) for o, (c, v, _) in own.items()}, k=10, per_dataset=3)
    matches = [(m.distance, m.dataset, m.key, int(own[m.dataset][2][m.index])) for m in found]
    across = [
        html.Li(
            html.A(
                f"{other.split('/', 1)[1]}: {code_} ({size_} m) - distance {dist:.2f}",
                href="?" + urlencode({"ds": other, "k": k, "mesh": code_}),
            )
        )
        for dist, other, code_, size_ in matches[:10]
    ]
    similar = [
        html.H3("Most similar here"),
        html.Ol(here, className="similar-here"),
        html.H3(
            "Most similar in other datasets of this space" + ("" if space.startswith("free:") else f" (anchored to '{space}')")
        ),
        html.Ol(across, className="similar-across")
        if across
        else html.P(
            "No other dataset in this space (trained without anchors)."
            if space.startswith("free:")
            else "No other dataset in this space."
        ),
    ]
    return facts, chart, {"display": "block"}, similar, mesh_polygon(code, size)


@callback(
    Output(ids.DOWNLOAD, "data"),
    Input(ids.EXPORT_GEOJSON, "n_clicks"),
    Input(ids.EXPORT_CSV, "n_clicks"),
    Input(ids.EXPORT_GPKG, "n_clicks"),
    State(ids.DATASET, "value"),
    State(ids.K, "value"),
    State(ids.K_ANY, "value"),
    prevent_initial_call=True,
)
def export(_g, _c, _p, key, k, k_any):
    """The dataset with joint labels (released ks and the current k) and cluster names: GeoJSON (OpenUAS
    properties), CSV, or a GeoPackage that QGIS opens."""
    catalog = get_catalog()
    if not key or key not in catalog.refs:
        return dash.no_update
    from core.release.layout import geojson_text

    k = effective_k(k, k_any)
    ds = catalog.get(key)
    ks = sorted({kk for kk in (*RELEASED_KS, k) if kk <= ds.n_meshes})
    labels = {kk: catalog.labels(key, kk) for kk in ks}
    names = np.asarray(catalog.cluster_names(key, k), dtype=object)[labels[k]] if k in labels else None
    comp = ds.complemented if ds.complemented is not None else np.zeros(ds.n_meshes, bool)
    stem = f"{key.replace('/', '_')}_k{k}"
    if ctx.triggered_id == ids.EXPORT_GEOJSON:
        return {
            "content": geojson_text(ds.codes, ds.mesh_sizes, ds.vectors, labels, comp),
            "filename": f"{stem}.geojson",
            "type": "application/geo+json",
        }
    columns: dict = {"is_complemented": comp}
    for kk in ks:
        columns[f"{kk}cluster"] = labels[kk]
    if names is not None:
        columns["cluster_name"] = names.astype(str)
    for d in range(ds.vectors.shape[1]):
        columns[f"e{d}"] = ds.vectors[:, d]
    if ctx.triggered_id == ids.EXPORT_GPKG:
        from core.geo.vector import mesh_frame, vector_bytes

        data = vector_bytes(mesh_frame(ds.codes, ds.mesh_sizes, columns), ".gpkg")
        return dcc.send_bytes(data, f"{stem}.gpkg")
    import pandas as pd

    frame = pd.DataFrame({"code": ds.codes, "mesh_size": ds.mesh_sizes, **columns})
    return {"content": frame.to_csv(index=False), "filename": f"{stem}.csv", "type": "text/csv"}


def _own_meshes(catalog: Catalog, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes, embeddings and sizes of a dataset's meshes that have an embedding of their own."""
    ds = catalog.get(key)
    if ds.complemented is None or not ds.complemented.any():
        return ds.codes, ds.vectors, ds.mesh_sizes
    own = ~ds.complemented
    return ds.codes[own], ds.vectors[own], ds.mesh_sizes[own]


def _valid_row(selected: dict, n: int) -> bool:
    """A selection from the browser names a row of the dataset (forged values are ignored)."""
    row = selected.get("row")
    return isinstance(row, int) and 0 <= row < n


def _threshold(value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 16.0
    return float(np.clip(v, 0.0, 1e6)) if np.isfinite(v) else 16.0


@callback(
    Output(ids.NAMES_VERSION, "data"),
    Output(ids.RENAME_MSG, "children"),
    Input(ids.RENAME_BUTTON, "n_clicks"),
    State(ids.RENAME_CLUSTER, "value"),
    State(ids.RENAME_TEXT, "value"),
    State(ids.DATASET, "value"),
    State(ids.K, "value"),
    State(ids.K_ANY, "value"),
    State(ids.NAMES_VERSION, "data"),
    prevent_initial_call=True,
)
def rename(_n, cluster, name, key, k, k_any, version):
    """Rename a cluster of the dataset's space (validated on the server; kept with the release)."""
    catalog = get_catalog()
    if key not in catalog.refs or not isinstance(cluster, int):
        return dash.no_update, "Pick a cluster first."
    k = effective_k(k, k_any)
    try:
        names = catalog.rename_cluster(key, k, cluster, name)
    except CoreError as exc:
        return dash.no_update, str(exc)
    return int(version or 0) + 1, f"Cluster {cluster} is now '{names[cluster]}' in every dataset of this space."
