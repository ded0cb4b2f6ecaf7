"""Raster map tiles of mesh layers, rendered on the server (XYZ / Web Mercator, 256 px).

JIS meshes are lat/lon rectangles on a grid of 50 m cells, so a tile is array work: each pixel's
latitude and longitude give its 50 m cell, a sorted index of cells gives the mesh, and the mesh's
value gives the colour. 250 m meshes are expanded to their 25 cells; a 50 m mesh drawn in the
same place wins. The same index answers "which mesh is at this lat/lng?" for clicks.
"""

from __future__ import annotations

import io
import math

import numpy as np

from core.geo.meshcode import LAT_UNITS, LON_UNITS, code_to_cells

TILE = 256
_J_SPAN = 1 << 32


class MeshIndex:
    """Maps 50 m grid cells to mesh rows (smaller meshes on top)."""

    def __init__(self, codes: np.ndarray, sizes: np.ndarray) -> None:
        cells = code_to_cells(np.asarray(codes, np.int64), np.asarray(sizes, np.int64))
        ext = cells.extent.astype(np.int64)
        per = ext * ext
        rows = np.repeat(np.arange(len(ext)), per)
        offs = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        e = np.repeat(ext, per)
        ci = np.repeat(cells.i, per) + offs // e
        cj = np.repeat(cells.j, per) + offs % e
        key = ci * _J_SPAN + cj
        order = np.lexsort((e, key))
        key, rows = key[order], rows[order]
        first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
        self.keys = key[first]
        self.rows = rows[first]
        self.n_meshes = len(ext)
        if len(ext):
            s = cells.i.min() / LAT_UNITS
            n = (cells.i + ext).max() / LAT_UNITS
            w = 100 + cells.j.min() / LON_UNITS
            east = 100 + (cells.j + ext).max() / LON_UNITS
            self.bounds = (float(s), float(w), float(n), float(east))
        else:
            self.bounds = (0.0, 0.0, 0.0, 0.0)

    def lookup(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Row of the mesh containing each point, or -1."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        key = np.floor(lat * LAT_UNITS).astype(np.int64) * _J_SPAN + np.floor((lon - 100.0) * LON_UNITS).astype(np.int64)
        if len(self.keys) == 0:
            return np.full(key.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(self.keys[pos] == key, self.rows[pos], -1)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(south, west, north, east)`` of an XYZ tile in degrees."""
    n = 2.0**z

    def lat(yy: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / n))))

    return lat(y + 1), x / n * 360 - 180, lat(y), (x + 1) / n * 360 - 180


def tile_pixels(z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of each pixel centre of a tile (``256 x 256`` arrays)."""
    n = TILE * 2.0**z
    px = (x * TILE + np.arange(TILE) + 0.5) / n
    py = (y * TILE + np.arange(TILE) + 0.5) / n
    lon = px * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * py))))
    return np.broadcast_to(lat[:, None], (TILE, TILE)), np.broadcast_to(lon[None, :], (TILE, TILE))


def hex_to_rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def render_tile(index: MeshIndex, values: np.ndarray, colours: np.ndarray, z: int, x: int, y: int) -> np.ndarray | None:
    """RGBA pixels (``256 x 256 x 4``, uint8) of a tile, or ``None`` when it shows no mesh.

    Args:
        index: the layer's :class:`MeshIndex`.
        values: per mesh row, an index into ``colours`` (-1 = not drawn).
        colours: ``n x 4`` uint8 RGBA table.
    """
    s, w, n, e = tile_bounds(z, x, y)
    bs, bw, bn, be = index.bounds
    if s > bn or n < bs or w > be or e < bw:
        return None
    lat, lon = tile_pixels(z, x, y)
    rows = index.lookup(lat, lon)
    hit = rows >= 0
    if not hit.any():
        return None
    v = np.full(rows.shape, -1, dtype=np.int64)
    v[hit] = np.asarray(values)[rows[hit]]
    out = np.zeros((TILE, TILE, 4), dtype=np.uint8)
    drawn = v >= 0
    out[drawn] = colours[v[drawn]]
    return out


def png_bytes(rgba: np.ndarray | None) -> bytes:
    """Encode RGBA pixels as PNG (a transparent tile for ``None``)."""
    from PIL import Image

    if rgba is None:
        rgba = np.zeros((TILE, TILE, 4), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()
