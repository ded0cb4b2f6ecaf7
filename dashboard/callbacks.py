"""Callbacks: thin adapters from inputs to core/ (via the catalog) and figures."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import dash
import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html

from core.analysis.similarity import similar_across, top_k
from core.geo.meshcode import code_bounds

from . import ids
from .data import Catalog
from .figures import DISTANCE_COLOURS, DISTANCE_LABELS, class_charts, cluster_color, pattern_chart, transition_heatmap
from .layout import make_map


def tile_url(params: dict) -> str:
    return "/tiles/{z}/{x}/{y}.png?" + urlencode(params)


def viewport(catalog: Catalog, key: str) -> dict:
    s, w, n, e = catalog.index(key).bounds
    span = max(n - s, (e - w) * 0.8, 1e-3)
    zoom = int(np.clip(np.floor(np.log2(360 / span)) + 1, 5, 17))
    return {"center": [(s + n) / 2, (w + e) / 2], "zoom": zoom}


def effective_k(k: int | None, k_any: int | None) -> int:
    if k_any:
        return int(np.clip(int(k_any), 2, 50))
    return int(k or 10)


def legend(catalog: Catalog, key: str, k: int) -> list:
    items = []
    for c in catalog.cluster_summary(key, k):
        items.append(
            html.Li(
                className="legend-item",
                children=[
                    html.Span(className="swatch", style={"background": cluster_color(c["cluster"])}),
                    html.Span(f"{c['cluster']}: {c['meshes']:,} meshes", className="legend-count"),
                    html.Span(f" - {c['description']}", className="legend-desc"),
                ],
            )
        )
    return [html.Ul(items, className="legend-list", **{"aria-label": f"{k} clusters"})]


def distance_legend() -> list:
    return [
        html.Ul(
            className="legend-list",
            children=[
                html.Li(
                    className="legend-item",
                    children=[html.Span(className="swatch", style={"background": col}), html.Span(f"distance {lab}")],
                )
                for col, lab in zip(DISTANCE_COLOURS, DISTANCE_LABELS)
            ],
        )
    ]


def mesh_polygon(code: int, size: int) -> dict:
    s, w, n, e = (float(v[0]) for v in code_bounds(np.array([code]), np.array([size])))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": int(code)},
                "geometry": {"type": "Polygon", "coordinates": [[[w, s], [w, n], [e, n], [e, s], [w, s]]]},
            }
        ],
    }


def register(catalog: Catalog, basemap: str | None) -> None:
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
    def sync_state(search, k, k_any):
        """Shareable state: the URL sets dataset, k, mesh and view on load; the two k inputs exclude each other."""
        keep = dash.no_update
        if ctx.triggered_id == ids.K:
            return keep, keep, None if k else keep, keep, keep
        if ctx.triggered_id == ids.K_ANY:
            return keep, None if k_any else keep, keep, keep, keep
        q = {key: v[0] for key, v in parse_qs((search or "").lstrip("?")).items()}
        key = q.get("ds")
        view = q.get("view") if q.get("view") in ("diff", "train") else None
        if key is not None and key not in catalog.refs:
            catalog.refresh_if_changed()  # a dataset trained since this server process last looked
        if key not in catalog.refs:
            return keep, keep, keep, keep, view or keep
        try:
            kk = int(q.get("k", "10"))
        except ValueError:
            kk = 10
        kk = min(max(kk, 2), 50)
        selected = None
        if q.get("mesh", "").isdigit():
            hit = np.flatnonzero(catalog.get(key).codes == int(q["mesh"]))
            if hit.size:
                selected = {"ds": key, "row": int(hit[0]), "code": int(q["mesh"])}
        released = kk in (5, 10, 20)
        return key, kk if released else None, None if released else kk, selected, view or "map"

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
        Output(ids.MESH_LAYER, "url"),
        Output(ids.LEGEND, "children"),
        Output(ids.SUMMARY, "children"),
        Output(ids.CHART, "figure"),
        Output(ids.MAP_BOX, "children"),
        Output(ids.LEGEND_TITLE, "children"),
        Input(ids.DATASET, "value"),
        Input(ids.K, "value"),
        Input(ids.K_ANY, "value"),
        Input(ids.VIEW, "value"),
        Input(ids.THRESHOLD, "value"),
        Input(ids.SELECTED, "data"),
        Input(ids.CHART_REDUCE, "value"),
    )
    def show_map(key, k, k_any, view, threshold, selected, reduce):
        if not key:
            return (
                "",
                [],
                "No dataset found under the data folder.",
                pattern_chart(np.zeros((2, 12, 7)), "no data"),
                dash.no_update,
                "Clusters",
            )
        k = effective_k(k, k_any)
        ds = catalog.get(key)
        sel = selected if selected and selected.get("ds") == key else None
        if view == "similar" and sel is not None:
            url = tile_url({"ds": key, "mode": "similar", "sel": sel["row"], "thr": threshold})
            legend_children = distance_legend()
            title = "Distance to the selected mesh"
        else:
            title = f"Clusters (k = {k})"
            url = tile_url({"ds": key, "mode": "cluster", "k": k})
            legend_children = legend(catalog, key, k)
        n50 = int((ds.mesh_sizes == 50).sum())
        comp = int(ds.complemented.sum()) if ds.complemented is not None else 0
        summary = f"{ds.city} {ds.period}: {ds.n_meshes:,} meshes ({n50:,} of 50 m, {ds.n_meshes - n50:,} of 250 m; {comp:,} complemented, drawn paler)"
        m = catalog.metrics(key)
        if m:
            space = (
                f"anchored to '{m.get('anchor_release')}' ({(m.get('config') or {}).get('schedule')} schedule)"
                if m.get("anchored")
                else "trained free"
            )
            summary += f". Trained here: ApproximationLoss {m.get('approximation_loss', float('nan')):.4f}, {space}, {m.get('seconds', 0):.1f} s"
        charts = catalog.cluster_charts(key, k, reduce)
        fig = pattern_chart(charts.sum(axis=0) if reduce == "sum" else charts.mean(axis=0), f"all clusters ({reduce})")
        if sel is not None and view == "similar":
            # One chart per distance class: the meshes at each distance from the clicked one.
            cls = catalog.distance_class_charts(key, sel["row"], reduce)
            fig = class_charts(cls, DISTANCE_LABELS, reduce)
        elif sel is not None:
            c = int(catalog.labels(key, k)[sel["row"]])
            fig = pattern_chart(charts[c], f"cluster {c} ({reduce} over its meshes)")
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
            )
        return url, legend_children, summary, fig, dash.no_update, title

    @callback(
        Output(ids.SELECTED, "data", allow_duplicate=True),
        Input(ids.MAP, "clickData"),
        State(ids.DATASET, "value"),
        prevent_initial_call=True,
    )
    def pick(click, key):
        """The mesh under a click, resolved on the server from lat/lng."""
        if not click or not key:
            return dash.no_update
        ll = click.get("latlng") or {}
        row = int(catalog.index(key).lookup(np.array([ll.get("lat", 0.0)]), np.array([ll.get("lng", 0.0)]))[0])
        return None if row < 0 else {"ds": key, "row": row, "code": int(catalog.get(key).codes[row])}

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
        if not selected or selected.get("ds") != key:
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
                html.Dd(f"{cluster} of {k}"),
                html.Dt("complemented"),
                html.Dd("yes (embedding of its 250 m mesh)" if comp else "no"),
            ],
        )
        chart = pattern_chart(catalog.mesh_pattern(key, row), f"mesh {code}: approximate stay pattern")
        periods = catalog.across_periods(key, code, size, k)
        if len(periods) > 1:
            info = [
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
                                    style={
                                        "background": cluster_color(p["cluster"]) if p["cluster"] is not None else "transparent"
                                    },
                                ),
                                html.A(
                                    p["period"] or p["dataset"], href="?" + urlencode({"ds": p["dataset"], "k": k, "mesh": code})
                                ),
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
        d = catalog.distances_from(key, row)
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
        others = {o: (catalog.get(o).codes, catalog.get(o).vectors) for o in catalog.comparable(key)}
        found = similar_across(ds.vectors[row], others, k=10, per_dataset=3)
        matches = [(m.distance, m.dataset, m.key, int(catalog.get(m.dataset).mesh_sizes[m.index])) for m in found]
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
                "Most similar in other datasets of this space"
                + ("" if space.startswith("free:") else f" (anchored to '{space}')")
            ),
            html.Ol(across, className="similar-across")
            if across
            else html.P(
                "No other dataset in this space (trained without anchors)."
                if space.startswith("free:")
                else "No other dataset in this space."
            ),
        ]
        return info, chart, {"display": "block"}, similar, mesh_polygon(code, size)

    @callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.EXPORT_GEOJSON, "n_clicks"),
        Input(ids.EXPORT_CSV, "n_clicks"),
        State(ids.DATASET, "value"),
        State(ids.K, "value"),
        State(ids.K_ANY, "value"),
        prevent_initial_call=True,
    )
    def export(_g, _c, key, k, k_any):
        """The dataset with the current k's labels, as GeoJSON (OpenUAS properties) or CSV."""
        if not key:
            return dash.no_update
        from core.release.layout import geojson_text

        k = effective_k(k, k_any)
        ds = catalog.get(key)
        labels = {kk: v for kk, v in ds.labels.items()}
        labels[k] = catalog.labels(key, k)
        comp = ds.complemented if ds.complemented is not None else np.zeros(ds.n_meshes, bool)
        stem = f"{key.replace('/', '_')}_k{k}"
        if ctx.triggered_id == ids.EXPORT_GEOJSON:
            return {
                "content": geojson_text(ds.codes, ds.mesh_sizes, ds.vectors, labels, comp),
                "filename": f"{stem}.geojson",
                "type": "application/geo+json",
            }
        import pandas as pd

        frame = pd.DataFrame({"code": ds.codes, "mesh_size": ds.mesh_sizes, "is_complemented": comp})
        for kk in sorted(labels):
            frame[f"{kk}cluster"] = labels[kk]
        for d in range(ds.vectors.shape[1]):
            frame[f"e{d}"] = ds.vectors[:, d]
        return {"content": frame.to_csv(index=False), "filename": f"{stem}.csv", "type": "text/csv"}

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
        if not a or not b:
            return transition_heatmap(np.zeros((1, 1)), "A", "B"), "Pick two datasets.", dash.no_update, dash.no_update
        if a == b:
            return transition_heatmap(np.zeros((1, 1)), "A", "B"), "Pick two different datasets.", dash.no_update, dash.no_update
        try:
            diff = catalog.diff(a, b, 10)
        except ValueError as exc:
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
            tile_url({"ds": b, "mode": "diff", "other": a, "k": 10, "by": colour_by or "change"}),
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
