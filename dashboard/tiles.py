"""The mesh tile route on the Dash (Flask) server: ``/tiles/<z>/<x>/<y>.png?ds=...&mode=...``."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

import numpy as np
from flask import Response, abort, jsonify, request

from core import knobs
from core.errors import CoreError
from core.geo.tiles import hex_to_rgba, png_bytes, render_tile

from .catalog import Catalog, get_catalog
from .figures import CHANGE_COLOURS, DIFF_DISTANCE_COLOURS, DISTANCE_COLOURS, FADED_COLOUR, HEAT_COLOURS, MATCH_COLOURS, PALETTE
from .palette import COMPLEMENTED_ALPHA, OWN_ALPHA

MAX_ZOOM = 20
_CACHE_SIZE = 4096


def _table(colours, alpha: int) -> np.ndarray:
    return np.array([hex_to_rgba(c, alpha) for c in colours], dtype=np.uint8)


def _int(text: str) -> int:
    """An integer query value, or HTTP 400."""
    try:
        return int(text)
    except (TypeError, ValueError):
        abort(400)


def _k_ok(k: int) -> bool:
    """``k`` within the number-of-clusters knob's range."""
    return int(knobs.K.low or 2) <= k <= int(knobs.K.high or 50)


def _float(text: str) -> float:
    """A finite number query value, or HTTP 400."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        abort(400)
    if not np.isfinite(value):
        abort(400)
    return value


def layer_values(catalog: Catalog, args) -> tuple[np.ndarray, np.ndarray]:
    """Per-mesh colour index and the colour table for a layer described by query arguments.

    Modes: ``cluster`` (k; complemented meshes paler), ``similar`` (sel = mesh row; by = percent or
    rank with top = the threshold and space = pattern or embedding (default: the knob's): the selected
    mesh, its matches and the rest; by = distance with
    thr: the OpenUAS distance classes within it), ``diff`` (other = the other period: :func:`diff_layer`).
    """
    key = args.get("ds", "")
    if key not in catalog.refs:
        abort(404)
    ds = catalog.get(key)
    mode = args.get("mode", "cluster")
    if mode == "cluster":
        k = _int(args.get("k", knobs.K.default))
        if not _k_ok(k) or k > ds.n_meshes:
            abort(400)
        labels = catalog.labels(key, k)
        comp = ds.complemented if ds.complemented is not None else np.zeros(ds.n_meshes, bool)
        colours = [PALETTE[c % len(PALETTE)] for c in range(k)]
        return labels + k * comp, np.vstack([_table(colours, OWN_ALPHA), _table(colours, COMPLEMENTED_ALPHA)])
    if mode == "similar":
        row = _int(args.get("sel", -1))
        if not 0 <= row < ds.n_meshes:
            abort(400)
        by = args.get("by", "distance")
        if by not in (knobs.MATCH_BY.choices or ()):
            abort(400)
        if by == "distance":  # OpenUAS distance classes within a distance
            thr = _float(args.get("thr", 1e9))
            d = catalog.distances_from(key, catalog.own_row(key, row))
            cls = catalog.distance_classes(key, row).astype(np.int64)
            return np.where(d <= thr, cls, -1), _table(DISTANCE_COLOURS, OWN_ALPHA)
        knob = knobs.MATCH_PERCENT if by == "percent" else knobs.MATCH_RANK
        top = _float(args.get("top", knob.default))
        if knob.clamp(top) != top:  # out of its range, or a fraction of a rank
            abort(400)
        space = args.get("space")
        if space is not None and space not in (knobs.SIMILARITY_SPACE.choices or ()):
            abort(400)
        return match_values(catalog, key, row, by, top, space), MATCH_TABLE
    if mode == "diff":
        return diff_layer(catalog, key, args)
    abort(400)


def _cell(text: str | None, k: int) -> tuple[int, int] | None:
    """A transition-matrix cell ``"i-j"`` (clusters in A and B, each below k), ``None`` when absent, else HTTP 400."""
    if text is None:
        return None
    m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text)
    if m is None or int(m.group(1)) >= k or int(m.group(2)) >= k:
        abort(400)
    return int(m.group(1)), int(m.group(2))


def diff_layer(catalog: Catalog, key: str, args) -> tuple[np.ndarray, np.ndarray]:
    """A period diff drawn on one of its two datasets: only the meshes compared (in both, own embedding).

    Arguments: ``other`` (the other period), ``side`` (``b``: ``ds`` is period B, the default; ``a``:
    it is period A), ``k``, ``by`` (:data:`knobs.DIFF_COLOUR`: ``change`` changed / unchanged at
    ``thr`` or the data's threshold, ``distance`` the pair's distance classes, ``cluster`` the joint
    cluster in ``ds``), ``cell`` (``i-j``: meshes outside that transition are drawn faded).
    """
    other = args.get("other", "")
    if other not in catalog.refs:
        abort(404)
    k = _int(args.get("k", knobs.K.default))
    side, by = args.get("side", "b"), args.get("by", knobs.DIFF_COLOUR.default)
    if not _k_ok(k) or side not in ("a", "b") or by not in (knobs.DIFF_COLOUR.choices or ()):
        abort(400)
    change_thr = _float(args["thr"]) if "thr" in args else None
    if change_thr is not None and knobs.CHANGE_THRESHOLD.clamp(change_thr) != change_thr:  # out of its range
        abort(400)
    cell = _cell(args.get("cell"), k)
    try:
        diff = catalog.diff(key, other, k, change_thr) if side == "a" else catalog.diff(other, key, k, change_thr)
    except (ValueError, CoreError):  # no shared mesh, no model file: not a pair the view offers
        abort(400)
    if by == "cluster":
        labels = diff.labels_a if side == "a" else diff.labels_b
        if labels is None:
            abort(400)
        cls, table = labels.astype(np.int64), _table([PALETTE[c % len(PALETTE)] for c in range(k)], OWN_ALPHA)
    elif by == "distance":
        cls, table = diff.distance_classes(), _table(DIFF_DISTANCE_COLOURS, OWN_ALPHA)
    else:
        cls, table = diff.changed.astype(np.int64), _table(CHANGE_COLOURS, OWN_ALPHA)
    if cell is not None:
        cls = np.where(diff.in_cell(cell), cls, len(table))
        table = np.vstack([table, _table([FADED_COLOUR], 90)])
    values = np.full(catalog.get(key).n_meshes, -1, dtype=np.int64)
    values[diff.index_a if side == "a" else diff.index_b] = cls
    return with_enclosing_values(values, table, catalog.enclosing_rows(key))


def with_enclosing_values(values: np.ndarray, table: np.ndarray, enclosing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undrawn 50 m meshes inside a drawn 250 m mesh take its colour, paler (as the cluster map draws complemented ones).

    The tiles draw the smallest mesh of a place on top, and a 250 m mesh's 25 cells are all 50 m
    meshes (kept ones or complemented children): a layer that colours only the 250 m mesh would show
    nothing of it. A 50 m mesh with a colour of its own keeps it.

    Args:
        values: per mesh row, an index into ``table`` (-1 = not drawn).
        table: ``n x 4`` RGBA colours.
        enclosing: :meth:`dashboard.catalog.Catalog.enclosing_rows` (-1 = no 250 m mesh around).

    Returns:
        ``(values, table)``: the table followed by its paler copy, which those 50 m meshes index.
    """
    out = np.asarray(values, dtype=np.int64).copy()
    rows = np.flatnonzero((enclosing >= 0) & (out < 0))
    inherited = out[enclosing[rows]]
    out[rows] = np.where(inherited >= 0, inherited + len(table), -1)
    pale = table.copy()
    pale[:, 3] = (pale[:, 3].astype(np.int64) * COMPLEMENTED_ALPHA // OWN_ALPHA).astype(np.uint8)
    return out, np.vstack([table, pale])


MATCH_TABLE = np.array(
    [hex_to_rgba(MATCH_COLOURS[0], 235), hex_to_rgba(MATCH_COLOURS[1], 235), hex_to_rgba(MATCH_COLOURS[2], 110)], np.uint8
)


def match_values(catalog: Catalog, key: str, row: int, by: str, value: float, space: str | None = None) -> np.ndarray:
    """Per mesh: 0 the selected mesh, 1 a match, 2 any other; a complemented mesh takes its parent's class
    (``space``: the similarity space asked for, :meth:`Catalog.match_space`; ``None``: the knob's default)."""
    top = catalog.matches(key, row, by, value, space)
    query = catalog.own_row(key, row)
    values = np.full(catalog.get(key).n_meshes, 2, dtype=np.int64)
    values[top.index] = 1
    values[query] = 0
    parents = catalog.parent_rows(key)
    comp = parents >= 0
    values[comp] = values[parents[comp]]
    return values


def mesh_at(catalog: Catalog, args) -> dict:
    """The mesh under ``lat``/``lon`` of dataset ``ds`` with its cluster at ``k`` (the hover tooltip).

    Returns ``{}`` outside every mesh; HTTP 404 for an unknown dataset, 400 for a bad number.
    """
    key = args.get("ds", "")
    if key not in catalog.refs:
        abort(404)
    lat, lon = _float(args.get("lat")), _float(args.get("lon"))
    k = _int(args.get("k", knobs.K.default))
    ds = catalog.get(key)
    if not _k_ok(k) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        abort(400)
    row = int(catalog.index(key).lookup(np.array([lat]), np.array([lon]))[0])
    if row < 0:
        return {}
    k = min(k, ds.n_meshes)
    cluster = int(catalog.labels(key, k)[row])
    comp = bool(ds.complemented[row]) if ds.complemented is not None else False
    return {
        "code": int(ds.codes[row]),
        "size": int(ds.mesh_sizes[row]),
        "cluster": cluster,
        "k": k,
        "name": catalog.cluster_names(key, k)[cluster],
        "complemented": comp,
        "colour": PALETTE[cluster % len(PALETTE)],
    }


def people_layer(args):
    """The People heatmap: ``src`` (a People source), ``sel`` (a selection token, optional), ``day``, ``h0``, ``h1``.

    Returns (mesh index, per-region colour class, colour table); HTTP 400 on any bad value, 404 for
    an unknown source or a selection the server no longer holds.
    """
    from core.walkers.explore import DAYS, StayFilter

    from . import people

    key = args.get("src", "")
    if key not in people.sources():
        abort(404)
    day = args.get("day", "all")
    if day not in DAYS:
        abort(400)
    h0, h1 = _int(args.get("h0", 0)), _int(args.get("h1", 24))
    if not 0 <= h0 < h1 <= 24:
        abort(400)
    token = args.get("sel") or None
    if token is not None:
        sel = people.selection(token)
        if sel is None:
            abort(404 if re.fullmatch(r"[0-9a-f]{16}", token) else 400)
        if sel[0] != key:
            abort(400)
    values = people.heat(key, token, StayFilter(day, h0, h1))
    return people.index(key), values, _table(HEAT_COLOURS, 225)


def register_tiles(server) -> None:
    """Add the tile route to the Flask server (the catalog is the running app's)."""
    cache: OrderedDict = OrderedDict()
    lock = threading.Lock()

    @server.route("/api/mesh-at")
    def mesh_at_point():
        return jsonify(mesh_at(get_catalog(), request.args))

    @server.route("/tiles/<int:z>/<int:x>/<int:y>.png")
    def mesh_tile(z: int, x: int, y: int):
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
            abort(404)
        key = (request.query_string, z, x, y)
        with lock:
            png = cache.get(key)
        if png is None:
            if request.args.get("mode") == "people":
                index, values, colours = people_layer(request.args)
            else:
                catalog = get_catalog()
                values, colours = layer_values(catalog, request.args)
                index = catalog.index(request.args["ds"])
            png = png_bytes(render_tile(index, values, colours, z, x, y))
            with lock:
                cache[key] = png
                while len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=3600"})
