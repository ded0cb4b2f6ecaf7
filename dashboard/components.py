"""Components and helpers shared by the views: the mesh map, legends, tile URLs, viewports."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

import dash_leaflet as dl
import numpy as np
from dash import dcc, html

from core import knobs
from core.geo.meshcode import code_bounds
from core.knobs import Knob

from . import ids
from .catalog import Catalog
from .figures import DISTANCE_COLOURS, DISTANCE_LABELS, MATCH_COLOURS, cluster_color, count_of
from .palette import COMPLEMENTED_ALPHA, OWN_ALPHA, TILE_OPACITY, tile_css

JAPAN = (36.2, 138.2)


def knob_input(text: str, component_id: str, knob: Knob, **props: Any) -> html.Label:
    """A labelled number box whose bounds, step, default and hover hint come from ``knob``.

    The knob (``core.knobs``) is the one declaration the command line and the server's checks read
    too; ``props`` override or add ``dcc.Input`` properties (``value``, ``debounce``...).
    """
    base = {"type": "number", "min": knob.low, "max": knob.high, "step": 1 if knob.kind is int else None, "value": knob.default}
    base.update(props)
    field = dcc.Input(id=component_id, **{k: v for k, v in base.items() if v is not None or k == "value"})
    return html.Label([text, field], title=f"{knob.help}: {knob.allowed()}")


def make_map(
    map_id: str,
    layer_id: str,
    basemap: str | None,
    view: dict | None = None,
    url: str = "",
    selection: bool | str = False,
    height: str = "560px",
    places: list[dict] | None = None,
    hover: bool = False,
    track_viewport: bool = False,
) -> html.Div:
    """A Leaflet map: optional basemap, our mesh tile layer and (main map) the selected-mesh outline.

    ``selection``: ``True`` adds the outline layer :data:`ids.SELECTED_LAYER`; a string adds it with that id.
    Re-created whenever the dataset changes, so that it opens on that dataset's extent. The wheel
    zooms only with Ctrl / Cmd held (a plain wheel scrolls the page; the map says so).

    Args:
        places: named places (``name``, ``kind``, ``lat``, ``lon``) drawn as labels when there is no
            basemap (offline), so that the map keeps its context.
        hover: show the mesh under the mouse (code, cluster and name) in a tooltip (assets/map.js).
        track_viewport: report the map's centre, zoom and bounds to Dash as the user moves it. Only for
            maps whose viewport a callback reads: dash-leaflet reports it from a timer started when the
            map is ready (and on every move), and when React has removed the map by then (a tab the
            address switches away from at page load, a map replaced by a callback) that timer throws
            ``Cannot read properties of undefined (reading '_leaflet_pos')``.
    """
    children: list = [dl.GestureHandling()]
    if basemap:
        children.append(dl.TileLayer(url=basemap, attribution="&copy; OpenStreetMap contributors", maxZoom=19))
    children.append(dl.TileLayer(id=layer_id, url=url, opacity=TILE_OPACITY, maxZoom=20, maxNativeZoom=20, attribution=""))
    children.append(dl.ScaleControl(position="bottomleft", imperial=False))
    if not basemap and places:
        children.append(place_labels(places))
    extra = (
        [
            dl.GeoJSON(
                id=selection if isinstance(selection, str) else ids.SELECTED_LAYER,
                data=None,
                style={"color": "#000", "weight": 3, "fillOpacity": 0},
            )
        ]
        if selection
        else []
    )
    children += extra
    view = view or {"center": JAPAN, "zoom": 5}
    # No zoom / fade animations: tiles are server-rendered anyway, and an animation still running
    # when the map is replaced (new dataset, other tab) makes Leaflet throw '_leaflet_pos' errors.
    extra_props: dict = {"eventHandlers": {"mousemove": HOVER, "mouseout": HOVER_OUT}} if hover else {}
    leaflet = dl.Map(
        **extra_props,
        id=map_id,
        center=view["center"],
        zoom=view["zoom"],
        maxZoom=20,
        children=children,
        style={"height": height},
        className="mesh-map" + ("" if basemap else " offline"),
        zoomAnimation=False,
        fadeAnimation=False,
        markerZoomAnimation=False,
        trackViewport=track_viewport,
    )
    # react-leaflet ignores a new centre after mount: a wrapper with a new id makes React mount a fresh map.
    tag = f"{view['center'][0]:.5f}-{view['center'][1]:.5f}-{view['zoom']}".replace(".", "_")
    return html.Div(leaflet, id=f"{map_id}-at-{tag}")


# JS handlers in assets/map.js (dash-leaflet resolves {"variable": ...} in the window object).
HOVER = {"variable": "meshMap.hover"}
HOVER_OUT = {"variable": "meshMap.hoverOut"}


def place_labels(places: list[dict]) -> dl.LayerGroup:
    """Labels of named places (a station, a park, the city): text on the map, not clickable."""
    return dl.LayerGroup(
        [
            dl.DivMarker(
                position=[p["lat"], p["lon"]],
                iconOptions={
                    "html": f"<span>{escape(str(p['name']))}</span>",
                    "className": f"place-label place-{p.get('kind') or 'place'}",
                    "iconSize": [0, 0],
                },
                interactive=False,
                keyboard=False,
            )
            for p in places
        ]
    )


def tile_url(params: dict) -> str:
    return "/tiles/{z}/{x}/{y}.png?" + urlencode(params)


def viewport(catalog: Catalog, key: str) -> dict:
    s, w, n, e = catalog.index(key).bounds
    span = max(n - s, (e - w) * 0.8, 1e-3)
    zoom = int(np.clip(np.floor(np.log2(360 / span)) + 1, 5, 17))
    return {"center": [(s + n) / 2, (w + e) / 2], "zoom": zoom}


def effective_k(k: object, k_any: object) -> int:
    """The k in force: the any-k box when filled, else the released-k radio; clamped to the allowed range."""
    if k_any not in (None, ""):
        return int(knobs.K.clamp(k_any))
    return int(knobs.K.clamp(k if k is not None else knobs.K.default))


def split_swatch(colour: str) -> html.Span:
    """A swatch as the map draws ``colour``: left half a mesh with its own embedding, right half a complemented one (paler)."""
    own, pale = tile_css(colour, OWN_ALPHA), tile_css(colour, COMPLEMENTED_ALPHA)
    return html.Span(
        className="swatch swatch-split",
        style={"background": f"linear-gradient(90deg, {own} 50%, {pale} 50%)"},
        title="left: as drawn; right: a complemented 50 m mesh of this cluster (paler)",
    )


def legend(catalog: Catalog, key: str, k: int) -> list:
    """The cluster legend: a row per cluster (swatch, number and meshes, name), the count never broken across lines."""
    items = []
    for c in catalog.cluster_summary(key, k):
        items.append(
            html.Li(
                className="legend-item",
                children=[
                    split_swatch(cluster_color(c["cluster"])),
                    html.Span(
                        f"{c['cluster']}: {count_of(c['meshes'], 'mesh', 'meshes')}",
                        className="legend-count",
                        style={"whiteSpace": "nowrap", "flex": "none"},
                    ),
                    html.Span(f" - {c['description']}", className="legend-desc"),
                ],
            )
        )
    items.append(
        html.Li(
            className="legend-note",
            children=[
                html.Span(
                    "Right half of each swatch, paler: a complemented 50 m mesh (too few people of its own; it shows its 250 m mesh's cluster)"
                ),
            ],
        )
    )
    aria: dict = {"aria-label": f"{count_of(k, 'cluster')}"}
    return [html.Ul(items, className="legend-list", **aria)]


def distance_legend(shown: Sequence[bool] | None = None) -> list:
    """The OpenUAS distance classes' legend; ``shown``: which classes to list (all when ``None``)."""
    return [
        html.Ul(
            className="legend-list",
            children=[
                html.Li(
                    className="legend-item",
                    children=[html.Span(className="swatch", style={"background": col}), html.Span(f"distance {lab}")],
                )
                for c, (col, lab) in enumerate(zip(DISTANCE_COLOURS, DISTANCE_LABELS))
                if shown is None or shown[c]
            ],
        )
    ]


def match_legend(what: str, count: int, candidates: int, cutoff: float, distance: str = "distance") -> list:
    """Legend of the similar-areas colouring: the selected mesh, its matches (counted) and the rest
    (``distance``: what the cutoff is, e.g. ``pattern distance``)."""
    rows = [
        (MATCH_COLOURS[0], 1.0, "the selected mesh"),
        (
            MATCH_COLOURS[1],
            1.0,
            f"a match ({what}): {count:,} of {count_of(candidates, 'mesh', 'meshes')}"
            + (f", {distance} up to {cutoff:.3f}" if count else ""),
        ),
        (MATCH_COLOURS[2], 0.5, "any other mesh"),
    ]
    return [
        html.Ul(
            className="legend-list",
            children=[
                html.Li(
                    className="legend-item",
                    children=[html.Span(className="swatch", style={"background": col, "opacity": op}), html.Span(text)],
                )
                for col, op, text in rows
            ],
        ),
        html.P("A complemented 50 m mesh shows its 250 m mesh's match; it is not counted itself.", className="legend-note"),
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
