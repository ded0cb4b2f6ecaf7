import io

import numpy as np
from PIL import Image

from core.geo.meshcode import code_centers, latlon_to_code
from core.geo.tiles import MeshIndex, hex_to_rgba, png_bytes, render_tile, tile_bounds


def _tile_of(lat, lon, z):
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return x, y


def _pixel_of(lat, lon, z, x, y):
    n = 256 * 2**z
    px = (lon + 180) / 360 * n - x * 256
    py = (1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n - y * 256
    return int(py), int(px)


def _layer():
    a = latlon_to_code(35.1700, 136.9000, 50)
    b = latlon_to_code(35.1720, 136.9030, 50)
    big = latlon_to_code(35.1650, 136.8950, 250)
    inside = latlon_to_code(*code_centers(np.array([big]), 250), 50)[0]  # a 50 m mesh inside `big`
    codes = np.array([a, b, big, inside])
    sizes = np.array([50, 50, 250, 50])
    return codes, sizes


def test_lookup_points_to_meshes():
    codes, sizes = _layer()
    idx = MeshIndex(codes, sizes)
    lat, lon = code_centers(codes, sizes)
    rows = idx.lookup(lat, lon)
    # the 250 m mesh's centre falls in the 50 m mesh drawn on top of it
    assert rows.tolist() == [0, 1, 3, 3]
    # a corner of the 250 m mesh away from the 50 m one resolves to the 250 m mesh
    corner_lat = np.floor(35.1650 * 2400 / 5) * 5 / 2400 + 0.5 / 2400
    corner_lon = 100 + np.floor((136.8950 - 100) * 1600 / 5) * 5 / 1600 + 0.5 / 1600
    assert idx.lookup(np.array([corner_lat]), np.array([corner_lon]))[0] == 2
    assert idx.lookup(np.array([36.0]), np.array([137.0]))[0] == -1


def test_pixel_colour_at_mesh_centre_and_empty_tile():
    codes, sizes = _layer()
    idx = MeshIndex(codes, sizes)
    colours = np.array([hex_to_rgba("#ff0000"), hex_to_rgba("#00ff00"), hex_to_rgba("#0000ff", 128)], dtype=np.uint8)
    values = np.array([0, 1, 2, 2])
    z = 17
    lat, lon = code_centers(codes[:1], 50)
    x, y = _tile_of(lat[0], lon[0], z)
    rgba = render_tile(idx, values, colours, z, x, y)
    r, c = _pixel_of(lat[0], lon[0], z, x, y)
    assert tuple(rgba[r, c]) == (255, 0, 0, 255)
    img = Image.open(io.BytesIO(png_bytes(rgba)))
    assert img.getpixel((c, r)) == (255, 0, 0, 255)
    # far away: no mesh, no pixels
    assert render_tile(idx, values, colours, z, 0, 0) is None
    blank = Image.open(io.BytesIO(png_bytes(None)))
    assert blank.getextrema()[3] == (0, 0)


def test_tile_bounds_by_hand():
    s, w, n, e = tile_bounds(1, 1, 0)
    assert (w, e) == (0.0, 180.0) and n > 85 and abs(s) < 1e-9
