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
from core.geo.meshcode import code_centers
from core.geo.places import find_places, parse_query

from .. import ids
from ..catalog import Catalog, app_context, get_catalog
from ..components import (
    distance_legend,
    effective_k,
    knob_input,
    legend,
    make_map,
    match_legend,
    mesh_polygon,
    tile_url,
    viewport,
)
from ..figures import DISTANCE_LABELS, GRAPH_CONFIG, class_charts, cluster_color, count_of, pattern_chart
from ..plotly_text import plotly_text


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
                    # No min / max / step in the browser: a value out of them would reach the server as
                    # empty (Dash sends an invalid number box as None); the server clamps and says so.
                    knob_input(
                        "any k",
                        ids.K_ANY,
                        knobs.K,
                        value=None if state["k"] in RELEASED_KS else state["k"],
                        debounce=True,
                        style={"width": "5em"},
                        min=None,
                        max=None,
                        step="any",
                    ),
                    html.Span(id=ids.K_NOTE, className="note control-note", role="alert"),
                    # The knob's range for the address bar's k (url.js clamps what the box holds to it).
                    dcc.Store(id=ids.K_RANGE, data=[knobs.K.low, knobs.K.high]),
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
                            "Similar areas",
                            html.Div(
                                className="inline-pair",
                                children=[
                                    dcc.Dropdown(
                                        id=ids.MATCH_BY,
                                        options=[{"label": MATCH_BY_LABELS[v], "value": v} for v in knobs.MATCH_BY.choices or ()],
                                        value=knobs.MATCH_BY.default,
                                        clearable=False,
                                        searchable=False,
                                        style={"width": "13em"},
                                    ),
                                    dcc.Input(
                                        id=ids.MATCH_VALUE,
                                        type="number",
                                        value=knobs.MATCH_PERCENT.default,
                                        step="any",  # no browser-side range: checked and noted on the server
                                        debounce=True,
                                        style={"width": "6em"},
                                    ),
                                ],
                            ),
                            html.Span(id=ids.MATCH_NOTE, className="note control-note", role="alert"),
                        ],
                        title="the matches of the selected mesh, highlighted when colouring by similarity. "
                        f"top %: {knobs.MATCH_PERCENT.allowed()}; top N: {knobs.MATCH_RANK.allowed()}; within distance: "
                        f"{knobs.MATCH_DISTANCE.allowed()} (empty: auto, the clicked mesh's top 1 % distance)",
                    ),
                    html.Label(
                        [
                            "Similar by",
                            dcc.RadioItems(
                                id=ids.SIM_SPACE,
                                options=[{"label": SPACE_LABELS[v], "value": v} for v in knobs.SIMILARITY_SPACE.choices or ()],
                                value=knobs.SIMILARITY_SPACE.default,
                                inline=True,
                            ),
                        ],
                        title=(
                            "stay pattern: the Hellinger distance between the meshes' predicted stay distributions "
                            "(0 = the same, 1 = nothing in common); embedding: the Euclidean distance between embeddings "
                            "(used where a dataset has no model file)"
                        ),
                    ),
                    html.Label(
                        [
                            "Find",
                            html.Div(
                                className="inline-pair",
                                children=[
                                    dcc.Input(
                                        id=ids.SEARCH,
                                        type="search",
                                        list=ids.SEARCH_PLACES,
                                        placeholder="mesh code, lat, lon or a place",
                                        maxLength=200,
                                        style={"width": "16em"},
                                    ),
                                    html.Button("Go", id=ids.SEARCH_GO),
                                ],
                            ),
                            html.Datalist(id=ids.SEARCH_PLACES),
                        ],
                    ),
                ],
            ),
            html.Div(id=ids.SEARCH_MSG, className="hint", role="status"),
            html.Div(id=ids.URL_NOTE, className="note", role="alert"),
            dcc.Store(id=ids.FOCUS),
            html.Div(id=ids.SUMMARY, className="summary", role="status"),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="map-col",
                        id=ids.MAP_BOX,
                        # No callback reads this map's viewport; tracking it raised when an address opened another tab (see make_map).
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


MATCH_BY_LABELS = {"percent": "top %", "rank": "top N", "distance": "within distance"}
SPACE_LABELS = {"pattern": "stay pattern", "embedding": "embedding"}
# What a distance is called beside its value in the lists, legend and counts.
DISTANCE_WORDS = {"pattern": "pattern distance", "embedding": "embedding distance"}
SPACE_NOTES = {
    "pattern": "Pattern distance: the Hellinger distance between the meshes' predicted stay patterns "
    "(0 = the same pattern, 1 = nothing in common).",
    "embedding": "Embedding distance: the Euclidean distance between the meshes' embeddings (the OpenUAS definition).",
}


def match_knob(by: str) -> knobs.Knob:
    """The knob of a match threshold kind (``percent``, ``rank`` or ``distance``)."""
    return {"percent": knobs.MATCH_PERCENT, "rank": knobs.MATCH_RANK}.get(by, knobs.MATCH_DISTANCE)


def match_threshold(by: object, value: object) -> tuple[str, float | None]:
    """A browser's threshold kind and value, validated: an unknown kind is the default one, a value
    out of range is clamped into it, an unreadable one is the kind's default (``None`` for a distance:
    taken from the data by :func:`resolve_threshold`)."""
    kind = str(knobs.MATCH_BY.clamp(by))
    v = match_knob(kind).clamp(value)
    return kind, None if v is None else float(v)


def resolve_threshold(catalog: Catalog, key: str, row: int, by: str, value: float | None) -> tuple[float, bool]:
    """The threshold in force for mesh ``row``: ``value``, or for an unset distance the embedding
    distance of the mesh's top ``MATCH_PERCENT.default`` % (its nearest 1 %; a fixed radius fits no
    embedding scale: the OpenUAS edges 2 / 4 / 8 / 16 took in every demo mesh). Returns the value and
    whether it came from the data."""
    if value is not None:
        return value, False
    top = catalog.matches(key, row, "percent", float(knobs.MATCH_PERCENT.default), "embedding")
    return (float(top.cutoff) if top.count else 0.0), True


def describe_threshold(by: str, value: float, auto: bool = False) -> str:
    """``top 1 %`` / ``top 100`` / ``within distance 2`` / ``within distance 0.412, its top 1 %'s``."""
    if by == "percent":
        return f"top {value:g} %"
    if by == "rank":
        return f"top {int(value):,}"
    if auto:
        return f"within distance {value:.3f}, its top {knobs.MATCH_PERCENT.default:g} %'s"
    return f"within distance {value:g}"


def within_legend(catalog: Catalog, key: str, row: int, radius: float, auto: bool) -> list:
    """Legend of the within-distance colouring: the OpenUAS classes that hold a drawn mesh, and what
    the radius is (a class with no mesh within it is left out)."""
    d = catalog.distances_from(key, catalog.own_row(key, row))
    drawn = np.bincount(catalog.distance_classes(key, row)[d <= radius], minlength=len(DISTANCE_LABELS))
    base = distance_legend(shown=[bool(n) for n in drawn])
    where = f"the distance of its top {knobs.MATCH_PERCENT.default:g} %; type a distance to change it" if auto else "typed"
    note = f"Drawn: the meshes within embedding distance {radius:.3f} ({where}), by OpenUAS distance class."
    return [*base, html.P(note, className="legend-note", id=ids.MATCH_NOTE + "-legend")]


def class_figure(catalog: Catalog, key: str, row: int, reduce: str) -> dict:
    """The stay patterns by OpenUAS distance class from mesh ``row``: one panel per class that holds
    meshes, titled with their count (empty classes are left out and named in the figure's title)."""
    counts = np.bincount(catalog.distance_classes(key, row), minlength=len(DISTANCE_LABELS))
    keep = [c for c in range(len(DISTANCE_LABELS)) if counts[c]]
    labels = tuple(f"{DISTANCE_LABELS[c]} ({count_of(int(counts[c]), 'mesh', 'meshes')})" for c in keep)
    fig = class_charts(catalog.distance_class_charts(key, row, reduce)[keep], labels, reduce)
    empty = [DISTANCE_LABELS[c] for c in range(len(DISTANCE_LABELS)) if not counts[c]]
    if empty:
        fig["layout"]["title"]["text"] += f"; no meshes at distance {', '.join(empty)}"
    return fig


VIEWS = ("map", "diff", "train", "people", "regions")  # the tabs a link may open (tabs.value)


def parse_url_state(search: str | None, catalog: Catalog, current: str | None = None) -> dict:
    """The view a URL's query asks for: ``ds``, ``k``, ``mesh`` (a code) and ``view``.

    Args:
        search: the URL's query (``?ds=...&k=...``).
        catalog: the datasets.
        current: the dataset shown when the URL names none (or an unknown one): its ``k`` and
            ``mesh`` are checked against that one.

    Returns:
        ``{"ds", "k", "selected", "view", "notes"}``: ``ds`` is ``None`` when the URL names no known
        dataset; ``k`` is clamped to the allowed range (and to the dataset's meshes), ``None`` when
        the URL names neither a dataset nor a k; ``selected`` is the mesh row (or ``None``); ``notes``
        says, in words, what the URL asked for that does not exist and what is shown instead (empty
        when all is well).
    """
    q = {key: v[0] for key, v in parse_qs((search or "").lstrip("?")).items()}
    notes: list[str] = []
    view = q.get("view") or "map"
    if view not in VIEWS:
        notes.append(f"The link asks for view '{_short(view)}', which does not exist; showing the map.")
        view = "map"
    key = q.get("ds")
    if key is not None and key not in catalog.refs:
        catalog.refresh_if_changed()  # a dataset trained since this server process last looked
    named = key is not None and key in catalog.refs
    if key is not None and not named:
        notes.append(f"The link asks for dataset '{_short(key)}', which is not in the data folder; showing another one.")
    # Without a (known) dataset, k and mesh apply to the dataset shown: checked against it all the same.
    shown = key if named else current if isinstance(current, str) and current in catalog.refs else None
    if shown is None:
        return {"ds": None, "k": None, "selected": None, "view": view, "notes": notes}
    ds = catalog.get(shown)
    label = catalog.label(shown)
    raw_k = q.get("k")
    k: int | None = None
    if raw_k is not None or named:
        k, note = clamp_note(knobs.K, raw_k, "k", "showing")
        if note:
            notes.append(note)  # (more than the dataset's meshes: the any-k box's note says so, k_note)
    selected = None
    mesh = q.get("mesh")
    if mesh is not None:
        hit = np.flatnonzero(ds.codes == int(mesh)) if mesh.isdigit() and len(mesh) <= 14 else None
        if hit is None:
            notes.append(f"mesh '{_short(mesh)}' is not a mesh code (8 to 12 digits).")
        elif not hit.size:
            notes.append(f"mesh {mesh} is not in {label}.")
        else:
            selected = {"ds": shown, "row": int(hit[0]), "code": int(mesh)}
    return {"ds": key if named else None, "k": k, "selected": selected, "view": view, "notes": notes}


def clamp_note(knob: knobs.Knob, raw: object, name: str, verb: str = "using") -> tuple:
    """A value from a URL or a form box forced into ``knob``'s range, and a note when it was not in it.

    Returns:
        ``(value, note)``: the clamped value (the default when ``raw`` is empty or unreadable) and
        e.g. ``"k = '999' is out of range (an integer from 2 to 50); showing k = 50."`` (``""`` when
        ``raw`` is empty or allowed as it is).
    """
    value = knob.clamp(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return value, ""
    try:
        if knob.check(raw) == value:
            return value, ""
    except CoreError:
        pass
    text = raw.strip() if isinstance(raw, str) else f"{raw:g}" if isinstance(raw, (int, float)) else str(raw)
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        what = "is not a number of clusters" if knob is knobs.K else "is not a number"
    elif knob.kind is int and not number.is_integer():
        what = f"is not a whole number ({knob.allowed()})"
    else:
        what = f"is out of range ({knob.allowed()})"
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return value, f"{name} = '{_short(text)}' {what}; {verb} {name} = {shown}."


def _short(text: str, n: int = 40) -> str:
    """A value from a URL, cut for a message."""
    return text if len(text) <= n else text[: n - 1] + "…"


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


def focus_on(catalog: Catalog, key: str, row: int) -> dict:
    """The map view centred on mesh ``row`` of ``key``, close enough to see it."""
    ds = catalog.get(key)
    lat, lon = catalog.centres(key)
    return {"ds": key, "center": [float(lat[row]), float(lon[row])], "zoom": 16 if ds.mesh_sizes[row] == 50 else 15}


def _other_dataset(catalog: Catalog, here: str, candidates: list[str]) -> str | None:
    """Of ``candidates``, the one to switch to: the current dataset, else one of the same period, else the first."""
    if not candidates:
        return None
    if here in candidates:
        return here
    period = catalog.get(here).period if here in catalog.refs else ""
    return next((c for c in candidates if catalog.get(c).period == period), candidates[0])


def resolve_search(catalog: Catalog, key: str | None, text: object) -> dict:
    """What a search box's text points at: a mesh code, ``lat, lon`` or a place name the data knows.

    A point or a place between meshes selects the nearest mesh when its centre lies within
    :data:`NEAR_M` (and says how far); a mesh code selects the mesh under its centre.

    Returns:
        ``{"ds", "selected", "focus", "message"}``: the dataset to show (the current one when the
        target is in it, else a dataset that has it), the mesh to select (or ``None``), the map view
        (or ``None`` when nothing was found) and a message for the person, naming the dataset by its
        label (:meth:`Catalog.label`).
    """
    q = parse_query(text)
    none = {"ds": key, "selected": None, "focus": None}
    if q.kind == "empty":
        return {**none, "message": "Type a mesh code (e.g. 523657929010), a point (35.17, 136.91) or a place name."}
    if q.kind == "bad":
        return {**none, "message": q.error + "."}
    here = key if key in catalog.refs else None
    if q.kind == "name":
        found = find_places(catalog.all_places(), q.text, limit=200)
        if found.empty:
            known = catalog.places(here)["name"].head(4).tolist() if here else []
            hint = f" Known places here include {', '.join(known)}." if known else ""
            return {**none, "message": f"No place called '{_short(q.text)}' in the data.{hint}"}
        best = found.iloc[0]
        same = found[found["name"] == best["name"]]
        target = _other_dataset(catalog, here or "", same["key"].tolist())
        lat, lon, label = float(best["lat"]), float(best["lon"]), f"{best['name']} ({best['kind']})"
    elif q.kind == "code":
        assert q.code is not None and q.size is not None
        c_lat, c_lon = code_centers(np.array([q.code]), np.array([q.size]))
        lat, lon, label = float(c_lat[0]), float(c_lon[0]), f"mesh {q.code}"
        target = _other_dataset(catalog, here or "", catalog.datasets_at(lat, lon))
    else:
        assert q.lat is not None and q.lon is not None
        lat, lon, label = q.lat, q.lon, f"{q.lat:.5f}, {q.lon:.5f}"
        target = _other_dataset(catalog, here or "", datasets_near(catalog, lat, lon, NEAR_M))
    if target is None:
        where = {"ds": here, "center": [lat, lon], "zoom": 15} if here else None
        near = "at" if q.kind == "code" else f"at or within {NEAR_M:.0f} m of"
        return {"ds": key, "selected": None, "focus": where, "message": f"No dataset has a mesh {near} {label}."}
    name = catalog.label(target)
    picked = pick_mesh(catalog, target, lat, lon)
    if q.kind == "code":
        assert picked is not None  # the dataset was chosen for having a mesh there
        size = int(catalog.get(target).mesh_sizes[picked["row"]])
        said = (
            f"mesh {q.code} in {name}."
            if picked["code"] == q.code
            else f"mesh {q.code} lies in the {size} m mesh {picked['code']} of {name}."
        )
        return {"ds": target, "selected": picked, "focus": focus_on(catalog, target, picked["row"]), "message": said}
    if picked is not None:
        message = f"{label} in {name}: mesh {picked['code']}."
    else:  # between meshes: the nearest one, when close
        picked, metres = nearest_mesh(catalog, target, lat, lon, float("inf"))
        if picked is None or metres > NEAR_M:
            # Nothing close: a view that holds both the spot and the nearest mesh, nothing selected.
            far = f" (the nearest is {metres:,.0f} m away)" if picked is not None else ""
            center = [lat, lon]
            if picked is not None:
                c = focus_on(catalog, target, picked["row"])["center"]
                center = [(lat + c[0]) / 2, (lon + c[1]) / 2]
            spot = {"ds": target, "center": center, "zoom": 15 if metres < 1500 else 13}
            return {
                "ds": target,
                "selected": None,
                "focus": spot,
                "message": f"{label} in {name}: no mesh within {NEAR_M:.0f} m{far}.",
            }
        message = f"{label} in {name}: nearest mesh {picked['code']}, {metres:.0f} m away."
    focus = {**focus_on(catalog, target, picked["row"]), "center": [lat, lon]}  # the spot asked for, its mesh in view
    return {"ds": target, "selected": picked, "focus": focus, "message": message}


NEAR_M = 300.0  # a searched place or point selects the nearest mesh within this distance when none lies under it


def nearest_mesh(catalog: Catalog, key: str, lat: float, lon: float, within_m: float) -> tuple[dict | None, float]:
    """The mesh of ``key`` whose centre is nearest to a point, when within ``within_m`` metres (and its distance)."""
    c_lat, c_lon = catalog.centres(key)
    metres = 111_320.0 * np.hypot(c_lat - lat, (c_lon - lon) * np.cos(np.radians(lat)))
    row = int(np.argmin(metres)) if len(metres) else -1
    if row < 0 or metres[row] > within_m:
        return None, float(metres[row]) if row >= 0 else float("nan")
    return {"ds": key, "row": row, "code": int(catalog.get(key).codes[row])}, float(metres[row])


def datasets_near(catalog: Catalog, lat: float, lon: float, within_m: float) -> list[str]:
    """Datasets with a mesh under a point, else those with a mesh centre within ``within_m`` metres of it (nearest first)."""
    under = catalog.datasets_at(lat, lon)
    if under:
        return under
    dy = within_m / 111_320.0
    dx = dy / max(np.cos(np.radians(lat)), 1e-6)
    found = []
    for other in sorted(catalog.refs):
        s, w, n, e = catalog.index(other).bounds
        if s - dy <= lat <= n + dy and w - dx <= lon <= e + dx:
            picked, metres = nearest_mesh(catalog, other, lat, lon, within_m)
            if picked is not None:
                found.append((metres, other))
    return [other for _, other in sorted(found)]


@callback(
    Output(ids.DATASET, "value"),
    Output(ids.K, "value"),
    Output(ids.K_ANY, "value"),
    Output(ids.SELECTED, "data"),
    Output(ids.TABS, "value"),
    Output(ids.FOCUS, "data"),
    Output(ids.URL_NOTE, "children"),
    Input(ids.URL, "search"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    State(ids.DATASET, "value"),
)
def on_url_or_k(search, k, k_any, current=None):
    """Shareable state: the URL sets dataset, k, mesh and view (on load and when a link inside the app is
    followed, without a reload); the two k inputs exclude each other. A URL asking for something that
    does not exist gets a visible note."""
    keep = dash.no_update
    # A k the user picks answers the URL's note about k (the note would outlive what it explains).
    if ctx.triggered_id == ids.K:
        return keep, keep, None if k else keep, keep, keep, keep, ""
    if ctx.triggered_id == ids.K_ANY:
        return keep, None if k_any else keep, keep, keep, keep, keep, ""
    catalog = get_catalog()
    state = parse_url_state(search, catalog, current)
    note = " ".join(state["notes"])
    sel = state["selected"]
    focus = focus_on(catalog, sel["ds"], sel["row"]) if sel else keep
    if state["ds"] is None and sel is None:
        sel = keep  # a URL naming no dataset keeps the shown one's selection unless it names a mesh of it
    if state["k"] is None:
        return state["ds"] or keep, keep, keep, sel, state["view"], focus, note
    released = state["k"] in RELEASED_KS
    k_radio, k_box = (state["k"], None) if released else (None, state["k"])
    return state["ds"] or keep, k_radio, k_box, sel, state["view"], focus, note


clientside_callback(
    ClientsideFunction(namespace="meshes", function_name="writeUrl"),
    Output(ids.URL_SINK, "data"),
    Input(ids.DATASET, "value"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.SELECTED, "data"),
    Input(ids.TABS, "value"),
    State(ids.K_RANGE, "data"),
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
    Output(ids.DATASET, "value", allow_duplicate=True),
    Output(ids.SELECTED, "data", allow_duplicate=True),
    Output(ids.FOCUS, "data", allow_duplicate=True),
    Output(ids.SEARCH_MSG, "children"),
    Input(ids.SEARCH, "n_submit"),
    Input(ids.SEARCH_GO, "n_clicks"),
    State(ids.SEARCH, "value"),
    State(ids.DATASET, "value"),
    prevent_initial_call=True,
)
def on_search(_submit, _go, text, key):
    """Find a mesh code, a point or a place: switch dataset when it lies in another, zoom there, select its mesh."""
    found = resolve_search(get_catalog(), key, text)
    keep = dash.no_update
    return (
        found["ds"] if found["ds"] != key else keep,
        found["selected"] if found["selected"] is not None else keep,
        found["focus"] if found["focus"] is not None else keep,
        found["message"],
    )


@callback(
    Output(ids.MATCH_VALUE, "value"),
    Output(ids.MATCH_VALUE, "placeholder"),
    Input(ids.MATCH_BY, "value"),
    prevent_initial_call=True,
)
def on_match_kind(by):
    """A new kind of threshold starts at its default (a distance: empty, taken from the data)."""
    kind, _ = match_threshold(by, None)
    return match_knob(kind).default, "auto" if kind == "distance" else ""


@callback(
    Output(ids.MATCH_NOTE, "children"),
    Input(ids.MATCH_BY, "value"),
    Input(ids.MATCH_VALUE, "value"),
)
def on_threshold(by, value):
    """A note beside the similar-areas box when its value is out of range (what is used instead)."""
    return threshold_note(by, value)


@callback(
    Output(ids.K_NOTE, "children"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.DATASET, "value"),
)
def on_k_box(k, k_any, key):
    """A note beside the any-k box when its k is out of range or more than the dataset can have."""
    return k_note(get_catalog(), key, k, k_any)


def threshold_note(by: object, value: object) -> str:
    """``top % = '500' is out of range (a number from 0.01 to 100 %); using top % = 100.`` (``""`` when allowed)."""
    kind = str(knobs.MATCH_BY.clamp(by))
    return clamp_note(match_knob(kind), value, MATCH_BY_LABELS[kind])[1]


def k_note(catalog: Catalog, key: str | None, k: object, k_any: object) -> str:
    """What the any-k box's value becomes: clamped into the knob's range, then to the dataset's meshes."""
    note = clamp_note(knobs.K, k_any, "k")[1] if k_any not in (None, "") else ""
    if isinstance(key, str) and key in catalog.refs:
        asked, most = effective_k(k, k_any), catalog.max_k(key)
        if asked > most:
            note += (" " if note else "") + f"{catalog.label(key)} has only {most} meshes to cluster; using k = {most}."
    return note


@callback(
    Output(ids.SEARCH_PLACES, "children"),
    Input(ids.DATASET, "value"),
)
def place_options(key):
    """Suggestions for the search box: the places of this dataset first, then every other known place."""
    catalog = get_catalog()
    names = list(catalog.places(key)["name"]) if key in catalog.refs else []
    names += [n for n in catalog.all_places()["name"].drop_duplicates() if n not in set(names)]
    return [html.Option(value=n) for n in names]


@callback(
    Output(ids.MESH_LAYER, "url"),
    Output(ids.LEGEND, "children"),
    Output(ids.SUMMARY, "children"),
    Output(ids.CHART, "figure"),
    Output(ids.MAP_BOX, "children"),
    Output(ids.LEGEND_TITLE, "children"),
    Output(ids.RENAME_CLUSTER, "options"),
    Output(ids.MAP, "viewport"),
    Input(ids.DATASET, "value"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.VIEW, "value"),
    Input(ids.MATCH_BY, "value"),
    Input(ids.MATCH_VALUE, "value"),
    Input(ids.SELECTED, "data"),
    Input(ids.CHART_REDUCE, "value"),
    Input(ids.NAMES_VERSION, "data"),
    Input(ids.FOCUS, "data"),
    Input(ids.SIM_SPACE, "value"),
)
def show_map(key, k, k_any, view, match_by, match_value, selected, reduce, _names_version=None, focus=None, sim_space=None):
    """The map layer, legend, summary and cluster chart of the chosen dataset and colouring.

    A new dataset gets a new map, opened on its extent or on the mesh a link or a search asked for
    (``focus``); a focus within the shown dataset moves the map there. One callback does both, so
    the view is never set on a map that is being replaced (Leaflet throws then).
    """
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
            dash.no_update,
        )
    k = effective_k(k, k_any)
    k = min(k, catalog.max_k(key))  # a small dataset cannot have more clusters than trained meshes
    reduce = reduce if reduce in ("sum", "mean") else "sum"
    ds = catalog.get(key)
    sel = selected if isinstance(selected, dict) and selected.get("ds") == key and _valid_row(selected, ds.n_meshes) else None
    by, asked = match_threshold(match_by, match_value)
    if view == "similar" and sel is not None:
        value, auto = resolve_threshold(catalog, key, sel["row"], by, asked)
        if by == "distance":
            url = tile_url({"ds": key, "mode": "similar", "sel": sel["row"], "by": by, "thr": value})
            legend_children = within_legend(catalog, key, sel["row"], value, auto)
        else:
            space = catalog.match_space(key, by, sim_space)
            top = catalog.matches(key, sel["row"], by, value, space)
            url = tile_url({"ds": key, "mode": "similar", "sel": sel["row"], "by": by, "top": value, "space": space})
            legend_children = match_legend(
                describe_threshold(by, value), top.count, top.candidates, top.cutoff, DISTANCE_WORDS[space]
            )
        title = "Similar to the selected mesh"
    else:
        title = f"Clusters (k = {k})"
        url = tile_url({"ds": key, "mode": "cluster", "k": k})
        legend_children = legend(catalog, key, k)
    n50 = int((ds.mesh_sizes == 50).sum())
    comp = int(ds.complemented.sum()) if ds.complemented is not None else 0
    summary = f"{catalog.label(key)}: {ds.n_meshes:,} meshes ({n50:,} of 50 m, {ds.n_meshes - n50:,} of 250 m; {comp:,} complemented, drawn paler)"
    if view == "similar" and sel is None:
        summary += ". Click a mesh to colour the map by similarity to it."
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
    if reduce == "sum":
        overall = charts.sum(axis=0)
    else:  # the mean per mesh over all meshes: the clusters' means weighted by their mesh counts
        sizes = np.bincount(catalog.labels(key, k), minlength=len(charts)).astype(np.float64)
        overall = np.tensordot(sizes, charts, axes=1) / max(sizes.sum(), 1.0)
    fig = pattern_chart(overall, f"all clusters ({reduce})", values=reduce)
    if sel is not None and view == "similar":
        # One chart per distance class: the meshes at each distance from the clicked one.
        fig = class_figure(catalog, key, sel["row"], reduce)
    elif sel is not None:
        c = int(catalog.labels(key, k)[sel["row"]])
        fig = pattern_chart(charts[c], f"cluster {c}: {plotly_text(names[c])} ({reduce} over its meshes here)", values=reduce)
    fired = ctx.triggered_prop_ids  # several inputs may change at once (the URL sets them all)
    if not fired or f"{ids.DATASET}.value" in fired:
        # A new dataset: a new map on its extent, or on the mesh a link or a search asked for.
        view_at = (
            {"center": focus["center"], "zoom": focus["zoom"]}
            if isinstance(focus, dict) and focus.get("ds") == key
            else viewport(catalog, key)
        )
        places = catalog.places(key).to_dict("records") if basemap is None else None
        new_map = make_map(ids.MAP, ids.MESH_LAYER, basemap, view_at, url, selection=True, places=places, hover=True)
        return (dash.no_update, legend_children, summary, fig, [new_map], title, rename_options, dash.no_update)
    move: object = dash.no_update
    if f"{ids.FOCUS}.data" in fired and isinstance(focus, dict) and focus.get("ds") == key:
        move = {"center": focus["center"], "zoom": focus["zoom"], "transition": "setView"}
    return url, legend_children, summary, fig, dash.no_update, title, rename_options, move


def _link(text: str, key: str, k: int, code: int) -> dcc.Link:
    """A link to a mesh of a dataset, followed inside the app (no reload: colour mode and k are kept)."""
    return dcc.Link(text, href="?" + urlencode({"ds": key, "k": k, "mesh": code}))


@callback(
    Output(ids.MESH_INFO, "children"),
    Output(ids.MESH_CHART, "figure"),
    Output(ids.MESH_CHART, "style"),
    Output(ids.SIMILAR, "children"),
    Output(ids.SELECTED_LAYER, "data"),
    Input(ids.SELECTED, "data"),
    Input(ids.K, "value"),
    Input(ids.K_ANY, "value"),
    Input(ids.MATCH_BY, "value"),
    Input(ids.MATCH_VALUE, "value"),
    State(ids.DATASET, "value"),
    Input(ids.SIM_SPACE, "value"),
    Input(ids.NAMES_VERSION, "data"),
)
def show_selection(selected, k, k_any, match_by, match_value, key, sim_space=None, _names_version=None):
    """Facts, stay pattern and similar meshes of the selected mesh, with the count of its matches (again
    after a cluster was renamed: the facts name its cluster)."""
    catalog = get_catalog()
    if (
        not isinstance(selected, dict)
        or selected.get("ds") != key
        or key not in catalog.refs
        or not _valid_row(selected, catalog.get(key).n_meshes)
    ):
        return "Click a mesh on the map.", pattern_chart(np.zeros((2, 12, 7)), ""), {"display": "none"}, [], None
    k = effective_k(k, k_any)
    k = min(k, max(2, catalog.get(key).n_meshes))
    row = int(selected["row"])
    ds = catalog.get(key)
    code, size = int(ds.codes[row]), int(ds.mesh_sizes[row])
    comp = bool(ds.complemented[row]) if ds.complemented is not None else False
    cluster = int(catalog.labels(key, k)[row])
    query = catalog.own_row(key, row)  # a complemented mesh is its 250 m parent's embedding
    info = html.Dl(
        className="mesh-facts",
        children=[
            html.Dt("dataset"),
            html.Dd(catalog.label(key), id="mesh-dataset"),
            html.Dt("code"),
            html.Dd(str(code), id="mesh-code"),
            html.Dt("size"),
            html.Dd(f"{size} m"),
            html.Dt("cluster"),
            html.Dd(f"{cluster} of {k}: {catalog.cluster_names(key, k)[cluster]}", id="mesh-cluster"),
            html.Dt("complemented"),
            html.Dd(f"yes (embedding of its 250 m mesh {int(ds.codes[query])})" if comp else "no"),
        ],
    )
    chart = pattern_chart(catalog.mesh_pattern(key, row), f"mesh {code}: approximate stay pattern", values="share")
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
                            html.Span(  # one flex item: the label and its text wrap as one line
                                [
                                    _link(catalog.label(p["dataset"]), p["dataset"], k, code),
                                    f": cluster {p['cluster']}, embedding distance {p['distance']:.2f}"
                                    if p["cluster"] is not None
                                    else ": not in this dataset",
                                ]
                            ),
                        ],
                    )
                    for p in periods
                ],
            ),
        ]
    # Complemented meshes repeat their 250 m parent's embedding: listing them would show the clicked
    # mesh's own siblings (and its parent) at distance 0, so candidates are the meshes with an
    # embedding of their own, and the query mesh is the parent of a complemented one.
    space = catalog.similarity_space(key, sim_space)  # embedding where a dataset of the space has no model file
    word = DISTANCE_WORDS[space]
    d = catalog.distances_from(key, query, space).copy()
    if ds.complemented is not None:
        d[ds.complemented] = np.inf
    here = [
        html.Li(_link(f"{int(ds.codes[i])} ({int(ds.mesh_sizes[i])} m) - {word} {d[i]:.3f}", key, k, int(ds.codes[i])))
        for i in top_k(d, 5, exclude=query)
    ]
    by, asked = match_threshold(match_by, match_value)
    value, auto = resolve_threshold(catalog, key, row, by, asked)
    top_space = catalog.match_space(key, by, sim_space)
    top = catalog.matches(key, row, by, value, top_space)
    space_name = catalog.space(key)
    # Distances to each other dataset's meshes, computed once: for the nearest there and for the counts "as near".
    near = catalog.distances_across(key, query, space)
    others = {o: catalog.get(o) for o in near}
    found = similar_across(
        catalog.points(key, space)[query],
        {o: (o_ds.codes, catalog.points(o, space)) for o, o_ds in others.items()},
        k=10,
        per_dataset=3,
        dists=near,
        space=space,
    )
    across = [
        html.Li(
            _link(
                f"{catalog.label(m.dataset)}: {m.key} ({int(others[m.dataset].mesh_sizes[m.index])} m) - {word} {m.distance:.3f}",
                m.dataset,
                k,
                m.key,
            )
        )
        for m in found
    ]
    if top.count and top_space != space:  # a distance threshold: the OpenUAS classes, in embedding units
        near = catalog.distances_across(key, query, top_space)
    within = {catalog.label(o): int((near[o] <= top.cutoff).sum()) for o in near} if top.count else {}
    similar = [
        html.P(
            match_count_text(
                describe_threshold(by, value, auto), top.count, top.candidates, top.cutoff, within, DISTANCE_WORDS[top_space]
            ),
            id=ids.MATCH_COUNT,
            className="match-count",
        ),
        html.H3(f"Most similar here (by {SPACE_LABELS[space]})"),
        html.Ol(here, className="similar-here"),
        html.H3(
            "Most similar in other datasets of this space"
            + ("" if space_name.startswith("free:") else f" (anchored to '{space_name}')")
        ),
        html.Ol(across, className="similar-across")
        if across
        else html.P(
            "No other dataset in this space (trained without anchors)."
            if space_name.startswith("free:")
            else "No other dataset in this space."
        ),
        html.P(
            SPACE_NOTES[space]
            + ("" if space == knobs.SIMILARITY_SPACE.clamp(sim_space) else " (a dataset of this space has no model file)"),
            id=ids.SIM_NOTE,
            className="hint",
        ),
    ]
    return facts, chart, {"display": "block"}, similar, mesh_polygon(code, size)


def match_count_text(
    what: str, count: int, candidates: int, cutoff: float, within: dict[str, int], distance: str = "distance"
) -> str:
    """``Matches (top 1 %): 37 of 3,689 meshes here, pattern distance up to 0.123; as near in other datasets: demo / nagoya 2020-04 41.``

    ``within``: the meshes as near in each other dataset, by the dataset's label."""
    if count == 0:
        return f"Matches ({what}): none of {candidates:,} meshes here."
    text = f"Matches ({what}): {count:,} of {candidates:,} meshes here, {distance} up to {cutoff:.3f}"
    if within:
        text += "; as near in other datasets: " + ", ".join(f"{o} {n:,}" for o, n in within.items())
    return text + "."


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


def _valid_row(selected: dict, n: int) -> bool:
    """A selection from the browser names a row of the dataset (forged values are ignored)."""
    row = selected.get("row")
    return isinstance(row, int) and 0 <= row < n


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
