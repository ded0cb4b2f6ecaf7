"""The map view in headless Chromium: similar areas by percent, complemented meshes, hover, search,
links followed inside the app, the wheel, notes for bad URLs; offline (no basemap), with no console
error and no failed request.

Its own small demo build (Nagoya 2019-04 and Osaka 2021-04, tiny scale) served by ``app.py``.
"""

from __future__ import annotations

import math
import time
from io import BytesIO

import numpy as np
import pandas as pd
import pytest

NAGOYA = "demo/nagoya_2019_04"
OSAKA = "demo/osaka_2021_04"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from core.simulation.demo import build_demo

    data = tmp_path_factory.mktemp("data")
    build_demo(data, scale="tiny", only=("nagoya_2019_04", "osaka_2021_04"))
    return data


@pytest.fixture(scope="module")
def server(demo_data):
    from dashboard.serve import running_app

    with running_app(demo_data) as url:
        yield url


@pytest.fixture(scope="module")
def data(demo_data):
    """The datasets as the test reads them itself (not through the app)."""
    from core.release.layout import discover, read_dataset

    return {f"{r.release}/{r.name}": read_dataset(r) for r in discover(demo_data)}


@pytest.fixture
def page(chromium):
    pg = chromium.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # Offline: nothing may be requested from elsewhere, and nothing may fail.
    # (Leaflet cancels the tile loads of a zoom level it leaves: those are aborted, not failed.)
    pg.on("requestfailed", lambda r: errors.append(f"failed request {r.url}") if r.failure != "net::ERR_ABORTED" else None)
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:")) else errors.append(f"request to {r.url}"))
    pg.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    yield pg
    pg.close()
    assert errors == [], errors


def _open(page, url, query=""):
    page.goto(url + "/" + query)
    page.wait_for_selector(".legend-item", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=60_000)
    page.wait_for_timeout(300)


def _zoom(page) -> int:
    src = page.locator("#mesh-map img.leaflet-tile").first.get_attribute("src")
    return int(src.split("/tiles/")[1].split("/")[0])


def _screen_point(page, lat, lon):
    """Where a point is on screen: the loaded mesh tile holding it, and the offset inside it."""
    zoom = _zoom(page)
    n = 256 * 2**zoom
    px = (lon + 180) / 360 * n
    py = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    tx, ty = int(px // 256), int(py // 256)
    box = page.locator(f"#mesh-map img.leaflet-tile[src*='/tiles/{zoom}/{tx}/{ty}.png']").bounding_box()
    return box["x"] + (px - tx * 256) * box["width"] / 256, box["y"] + (py - ty * 256) * box["height"] / 256


def _pixel(page, x, y) -> np.ndarray:
    from PIL import Image

    shot = page.screenshot(clip={"x": x - 1, "y": y - 1, "width": 3, "height": 3})
    return np.array(Image.open(BytesIO(shot)).convert("RGB").getpixel((1, 1)), dtype=float)


def _centres(ds):
    from core.geo.meshcode import code_centers

    return code_centers(ds.codes, ds.mesh_sizes)


def _clear_meshes(ds, keep) -> np.ndarray:
    """Rows of 50 m meshes (of ``keep``) whose 8 neighbours are meshes of ``keep`` too (clear pixels at any zoom)."""
    from core.geo.tiles import MeshIndex

    idx = MeshIndex(ds.codes, ds.mesh_sizes)
    lat, lon = _centres(ds)
    rows = np.flatnonzero(keep & (ds.mesh_sizes == 50))
    dy, dx = np.repeat([-1, 0, 1], 3) / 2400, np.tile([-1, 0, 1], 3) / 1600
    around = idx.lookup(lat[rows, None] + dy, lon[rows, None] + dx)
    ok = (around >= 0).all(axis=1) & keep[np.maximum(around, 0)].all(axis=1)
    return rows[ok]


def _own_distances(ds, row, space="pattern"):
    """Distances to mesh ``row`` among meshes with an embedding of their own, computed here in float64: by
    stay pattern (the default: Hellinger distance of the predicted distributions) or by embedding."""
    own = ~ds.complemented
    if space == "pattern":
        logits = ds.vectors.astype(np.float64) @ ds.decoder.astype(np.float64).T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = np.sqrt(np.clip(1.0 - np.sqrt(p) @ np.sqrt(p[row]), 0.0, 1.0))
    else:
        d = np.linalg.norm(ds.vectors.astype(np.float64) - ds.vectors[row], axis=1)
    d[~own] = np.inf
    d[row] = np.inf
    return d, int(own.sum()) - 1


def _colour_by_similarity_to_a_clear_mesh(page, server, ds) -> int:
    """Open Nagoya, click a mesh of its own (not complemented) away from others, colour by similarity to it."""
    lat, lon = _centres(ds)
    row = int(_clear_meshes(ds, ~ds.complemented)[0])
    _open(page, server, f"?ds={NAGOYA}&k=10")
    page.mouse.click(*_screen_point(page, float(lat[row]), float(lon[row])))
    page.wait_for_selector(f"#mesh-code:has-text('{int(ds.codes[row])}')", timeout=30_000)
    page.get_by_text("similarity to the clicked mesh").click()
    return row


def test_top_one_percent_highlights_and_counts_the_matches(page, server, data):
    from dashboard.figures import MATCH_COLOURS

    ds = data[NAGOYA]
    lat, lon = _centres(ds)
    row = _colour_by_similarity_to_a_clear_mesh(page, server, ds)
    d, candidates = _own_distances(ds, row)
    for percent in (5, 1):
        page.fill("#match-value", str(percent))
        page.keyboard.press("Enter")
        n = math.ceil(candidates * percent / 100)
        expected = f"Matches (top {percent} %): {n:,} of {candidates:,} meshes here"
        page.wait_for_selector(f"#match-count:has-text('{expected}')", timeout=30_000)
        page.wait_for_selector(f".legend-item:has-text('a match (top {percent} %): {n:,} of {candidates:,} meshes')")
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile')]"
        ".some(i => i.src.includes('by=percent&top=1') && i.src.includes('space=pattern'))",
        timeout=30_000,
    )
    page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=30_000)
    page.wait_for_timeout(800)
    # The map shows the matches in the match colour and every other mesh pale grey.
    matches = np.argsort(d, kind="stable")[: math.ceil(candidates / 100)]
    clear = _clear_meshes(ds, np.isin(np.arange(ds.n_meshes), matches))
    others = _clear_meshes(ds, ~np.isin(np.arange(ds.n_meshes), np.r_[matches, row]) & ~ds.complemented)
    alpha = 235 / 255 * 0.85
    bg = _pixel(page, *_corner(page))  # the map's background where no mesh is

    def blended(hexcol, a):
        c = np.array([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        return a * c + (1 - a) * bg

    if len(clear):  # a match whose neighbours are matches too: its pixel is the match colour
        m = int(clear[0])
        got = _pixel(page, *_screen_point(page, float(lat[m]), float(lon[m])))
        assert np.abs(got - blended(MATCH_COLOURS[1], alpha)).max() < 14, got
    o = int(others[len(others) // 2])
    got = _pixel(page, *_screen_point(page, float(lat[o]), float(lon[o])))
    assert np.abs(got - blended(MATCH_COLOURS[2], 110 / 255 * 0.85)).max() < 14, got
    # Some match is drawn: magenta pixels appear in a screenshot of the map.
    from PIL import Image

    shot = np.asarray(Image.open(BytesIO(page.locator("#mesh-map").screenshot())).convert("RGB"), dtype=float)
    magenta = np.abs(shot - blended(MATCH_COLOURS[1], alpha)).max(axis=2) < 14
    assert magenta.sum() > 20


def _corner(page):
    """A point of the map far from the meshes (top-left, below the zoom buttons)."""
    box = page.locator("#mesh-map").bounding_box()
    return box["x"] + 12, box["y"] + box["height"] - 60


def test_a_complemented_mesh_lists_no_sibling_and_not_its_parent(page, server, data):
    from core.geo.meshcode import parent_code

    ds = data[NAGOYA]
    child = int(np.flatnonzero(ds.complemented)[0])
    parent_code_ = int(parent_code(ds.codes[child : child + 1], 50, 250)[0])
    family = set(ds.codes[ds.complemented].tolist()) | {parent_code_}
    _open(page, server, f"?ds={NAGOYA}&k=10&mesh={int(ds.codes[child])}")
    page.wait_for_selector(f"#mesh-code:has-text('{int(ds.codes[child])}')", timeout=30_000)
    assert page.locator(f"text=embedding of its 250 m mesh {parent_code_}").count() == 1
    items = page.locator(".similar-here li").all_inner_texts()
    assert len(items) == 5
    listed = {int(t.split(" ")[0]) for t in items}
    assert not listed & family, listed & family
    assert not any(t.endswith(" 0.000") for t in items)  # no copy of the query (its siblings, its parent)
    # The list is the 5 nearest meshes with an embedding of their own, nearest first.
    parent_row = int(np.flatnonzero((ds.codes == parent_code_) & (ds.mesh_sizes == 250))[0])
    d, _ = _own_distances(ds, parent_row)
    assert [int(t.split(" ")[0]) for t in items] == ds.codes[np.argsort(d, kind="stable")[:5]].tolist()
    assert all("pattern distance" in t for t in items)
    # By embedding: the list follows, and says so.
    page.locator("#similarity-space input[value='embedding']").check()
    page.wait_for_selector(".similar-here li:has-text('embedding distance')", timeout=30_000)
    items = page.locator(".similar-here li").all_inner_texts()
    d, _ = _own_distances(ds, parent_row, "embedding")
    assert [int(t.split(" ")[0]) for t in items] == ds.codes[np.argsort(d, kind="stable")[:5]].tolist()
    assert not {int(t.split(" ")[0]) for t in items} & family


def test_hover_shows_code_cluster_and_name(page, server, data, demo_data):
    from core.release.clusters import clusters_file, load_joint

    ds = data[NAGOYA]
    names = load_joint(clusters_file(demo_data / "demo", 10)).display_names()
    lat, lon = _centres(ds)
    _open(page, server, f"?ds={NAGOYA}&k=10")
    waits = []
    for row in _clear_meshes(ds, np.ones(ds.n_meshes, bool))[:3]:
        x, y = _screen_point(page, float(lat[row]), float(lon[row]))
        page.mouse.move(x - 30, y - 30)
        page.mouse.move(x, y, steps=3)
        t0 = time.perf_counter()
        code = str(int(ds.codes[row]))
        page.wait_for_selector(f".mesh-hover:has-text('{code}')", state="visible", timeout=10_000)
        waits.append(time.perf_counter() - t0)
        c = int(ds.labels[10][row])
        text = page.inner_text(".mesh-hover")
        assert f"cluster {c} of 10: {names[c]}" in text, text
        assert page.locator(".mesh-hover").evaluate("e => e.getAttribute('role')") == "tooltip"
    print(f"hover -> tooltip: {', '.join(f'{w * 1000:.0f} ms' for w in waits)}")
    assert max(waits) < 2.0  # a throttled server lookup, not a page-level callback
    page.mouse.move(5, 5)  # leaving the map hides it
    page.wait_for_selector(".mesh-hover", state="hidden", timeout=5_000)


def test_search_by_place_name_zooms_and_selects(page, server, data, demo_data):
    from core.geo.meshcode import code_centers
    from core.geo.places import read_places

    places = read_places(demo_data / "demo")
    ds = data[NAGOYA]
    lat, lon = code_centers(ds.codes, ds.mesh_sizes)
    # A named Nagoya place (not the city itself) with a mesh of this dataset right under it.
    from core.geo.tiles import MeshIndex

    idx = MeshIndex(ds.codes, ds.mesh_sizes)
    nagoya = places[(places["city"] == "nagoya") & (places["kind"] != "city")]
    under = idx.lookup(nagoya["lat"].to_numpy(), nagoya["lon"].to_numpy())
    assert (under >= 0).any(), "no named place over a mesh in the tiny build"
    place = nagoya[under >= 0].iloc[0]
    row = int(under[under >= 0][0])
    _open(page, server, f"?ds={OSAKA}&k=10")  # another city: the search switches dataset
    z0 = _zoom(page)
    page.fill("#map-search", str(place["name"]).lower())
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#mesh-code:has-text('{int(ds.codes[row])}')", timeout=30_000)
    page.wait_for_function(f"location.search.includes('mesh={int(ds.codes[row])}')", timeout=10_000)
    assert "nagoya_2019_04" in page.url
    assert f"{place['name']} ({place['kind']})" in page.inner_text("#map-search-msg")
    page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=30_000)
    assert _zoom(page) >= 16 > z0  # zoomed in to the mesh
    # The mesh is at the middle of the map, outlined.
    box = page.locator("#mesh-map").bounding_box()
    x, y = _screen_point(page, float(place["lat"]), float(place["lon"]))
    assert abs(x - (box["x"] + box["width"] / 2)) < 30 and abs(y - (box["y"] + box["height"] / 2)) < 30
    assert page.locator("#mesh-map path.leaflet-interactive").count() >= 1
    # Offline, the map names its places (no basemap to do it).
    page.wait_for_selector(f"#mesh-map .place-label span:text-is('{place['name']}')", timeout=10_000)


def test_following_a_similar_area_link_stays_in_the_app(page, server, data):
    ds = data[NAGOYA]
    lat, lon = _centres(ds)
    row = int(_clear_meshes(ds, ~ds.complemented)[1])
    _open(page, server, f"?ds={NAGOYA}&k=20")
    page.mouse.click(*_screen_point(page, float(lat[row]), float(lon[row])))
    page.wait_for_selector(".similar-across li", timeout=30_000)
    page.get_by_text("similarity to the clicked mesh").click()
    page.evaluate("window.__same_page = true")
    link = page.locator(".similar-across a").first
    target = link.inner_text()  # "demo / osaka 2021-04: <code> (50 m) - pattern distance 0.054": the dataset's label
    label, code = target.split(": ")[0], target.split(": ")[1].split(" ")[0]
    other = {"demo / osaka 2021-04": OSAKA, "demo / nagoya 2019-04": NAGOYA}[label].split("/", 1)[1]  # as in URLs (%2F)
    t0 = time.perf_counter()
    link.click()
    page.wait_for_selector(f"#mesh-code:has-text('{code}')", timeout=30_000)
    page.wait_for_function(
        f"[...document.querySelectorAll('#mesh-map img.leaflet-tile')].some(i => i.src.includes('{other}') && i.src.includes('mode=similar'))",
        timeout=30_000,
    )
    print(f"link -> target mesh shown: {time.perf_counter() - t0:.2f} s")
    assert page.evaluate("window.__same_page === true")  # no reload
    assert page.is_checked("#view-mode input[value='similar']")  # the colour mode is kept
    assert page.is_checked("#k-select input[value='20']")  # and k
    assert _zoom(page) >= 15  # zoomed to the target mesh
    assert other in page.url


def test_the_wheel_scrolls_the_page_and_ctrl_wheel_zooms(page, server):
    _open(page, server, f"?ds={NAGOYA}&k=10")
    z0 = _zoom(page)
    box = page.locator("#mesh-map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 400)
    page.wait_for_function("window.scrollY > 100", timeout=5_000)
    assert page.locator("#mesh-map.leaflet-gesture-handling-scroll-warning").count() == 1  # the hint
    page.wait_for_timeout(500)
    assert _zoom(page) == z0
    box = page.locator("#mesh-map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Control")
    for _ in range(2):  # a person's wheel sends several events (the first one switches wheel zoom on)
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(150)
    page.keyboard.up("Control")
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile')].some(i => +i.src.split('/tiles/')[1].split('/')[0] > "
        + str(z0)
        + ")",
        timeout=10_000,
    )


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ("?ds=demo/atlantis_2021_04&k=10", "dataset 'demo/atlantis_2021_04', which is not in the data folder"),
        (f"?ds={NAGOYA}&k=999", "k = '999' is out of range"),
        (f"?ds={NAGOYA}&k=10&mesh=abc", "mesh 'abc' is not a mesh code"),
        ("?k=999", "k = '999' is out of range"),  # no ds: checked against the dataset shown
        ("?mesh=abc", "mesh 'abc' is not a mesh code"),
    ],
)
def test_a_url_asking_for_what_does_not_exist_says_so(page, server, query, note):
    _open(page, server, query)
    page.wait_for_selector(f'#url-note:has-text("{note}")', timeout=30_000)


def test_out_of_range_boxes_are_clamped_with_a_note(page, server, data):
    """A number box out of its range reached the server as empty (the default was used silently)."""
    _colour_by_similarity_to_a_clear_mesh(page, server, data[NAGOYA])
    page.fill("#match-value", "500")
    page.keyboard.press("Enter")
    page.wait_for_selector("#match-note:has-text(\"top % = '500' is out of range\")", timeout=30_000)
    assert "using top % = 100." in page.inner_text("#match-note")
    page.wait_for_selector(".legend-item:has-text('a match (top 100 %)')", timeout=30_000)
    page.fill("#match-value", "5")
    page.keyboard.press("Enter")
    page.wait_for_selector(".legend-item:has-text('a match (top 5 %)')", timeout=30_000)
    assert page.inner_text("#match-note").strip() == ""
    page.fill("#k-any", "999")
    page.keyboard.press("Enter")
    page.wait_for_selector(
        "#k-note:has-text(\"k = '999' is out of range (an integer from 2 to 50); using k = 50.\")", timeout=30_000
    )
    page.wait_for_function("new URLSearchParams(window.location.search).get('k') === '50'", timeout=30_000)
    # "within distance" starts empty: the clicked mesh's top 1 % distance, drawn by the tiles
    page.click("#match-by")
    page.get_by_text("within distance", exact=True).last.click()
    page.wait_for_selector('#match-count:has-text("its top 1 %\'s")', timeout=30_000)
    assert page.input_value("#match-value") == ""
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile')].some(i => i.src.includes('by=distance&thr='))",
        timeout=30_000,
    )


def test_places_file_of_the_demo(demo_data):
    """The demo release names its districts and stations (what search and the labels read)."""
    frame = pd.read_csv(demo_data / "demo" / "places.csv")
    assert list(frame.columns) == ["name", "kind", "city", "lat", "lon"]
    assert {"Nagoya Station", "Osaka Station", "Dotonbori", "Nagoya", "Osaka"} <= set(frame["name"])
    assert set(frame["city"]) == {"nagoya", "osaka"}
