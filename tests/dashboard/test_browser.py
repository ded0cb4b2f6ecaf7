"""The dashboard in real headless Chromium: a person's view of the map, clusters, clicks and diff.

Runs ``python app.py`` as a subprocess on a free port over a small demo release (no basemap, as on
an offline machine). Needs Debian's chromium and the playwright package (``.ci/run`` installs
both; the ``chromium`` fixture in conftest skips outside CI when they are missing).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from core.simulation.demo import build_demo

    data = tmp_path_factory.mktemp("data")
    build_demo(data, scale="tiny", only=("osaka_2021_04", "nagoya_2019_04", "nagoya_2020_04"))
    return data


@pytest.fixture(scope="module")
def server(demo_data):
    from dashboard.serve import running_app

    with running_app(demo_data) as url:
        yield url


@pytest.fixture
def page(chromium):
    pg = chromium.new_page(viewport={"width": 1400, "height": 1200})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert errors == [], errors


def _mercator(lat, lon, zoom):
    n = 256 * 2**zoom
    x = (lon + 180) / 360 * n
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return x, y


def _screen_point(page, map_id, lat, lon):
    """Where a point is on screen: find the mesh tile holding it and offset inside that tile."""
    src = page.locator(f"#{map_id} img.leaflet-tile").first.get_attribute("src")
    zoom = int(src.split("/tiles/")[1].split("/")[0])
    px, py = _mercator(lat, lon, zoom)
    tx, ty = int(px // 256), int(py // 256)
    box = page.locator(f"#{map_id} img.leaflet-tile[src*='/tiles/{zoom}/{tx}/{ty}.png']").bounding_box()
    return box["x"] + (px - tx * 256) * box["width"] / 256, box["y"] + (py - ty * 256) * box["height"] / 256


def _open(page, url, query=""):
    page.goto(url + "/" + query)
    page.wait_for_selector(".legend-item", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=60_000)
    page.wait_for_timeout(300)


def _known_mesh(demo_data, key):
    """A 50 m mesh of the dataset whose 8 neighbours share its k = 10 cluster (clear pixels)."""
    from core.geo.meshcode import code_centers
    from core.geo.tiles import MeshIndex
    from core.release.layout import discover, read_dataset

    ref = next(r for r in discover(demo_data) if f"{r.release}/{r.name}" == key)
    ds = read_dataset(ref)
    idx = MeshIndex(ds.codes, ds.mesh_sizes)
    lat, lon = code_centers(ds.codes, ds.mesh_sizes)
    lab = ds.labels[10]
    s, w, n, e = idx.bounds
    for row in np.argsort(np.hypot(lat - (s + n) / 2, lon - (w + e) / 2)):  # nearest the map centre first
        if ds.complemented[row] or ds.mesh_sizes[row] != 50:
            continue
        dl = np.array([-1, 0, 1]) / 2400
        dn = np.array([-1, 0, 1]) / 1600
        rows = idx.lookup((lat[row] + dl[:, None]).ravel().repeat(3), np.tile(lon[row] + dn, 3))
        if (rows >= 0).all() and (lab[rows] == lab[row]).all():
            return ds, int(row)
    raise AssertionError("no clear mesh found")


def test_map_shows_clusters_with_the_right_colours(page, server, demo_data):
    from dashboard.figures import PALETTE

    key = "demo/osaka_2021_04"
    _open(page, server, f"?ds={key}&k=10")
    assert page.locator(".legend-item").count() == 10
    ds, row = _known_mesh(demo_data, key)
    from core.geo.meshcode import code_centers

    lat, lon = code_centers(ds.codes[row : row + 1], ds.mesh_sizes[row : row + 1])
    x, y = _screen_point(page, "mesh-map", float(lat[0]), float(lon[0]))
    shot = page.screenshot(clip={"x": x - 1, "y": y - 1, "width": 3, "height": 3})
    from io import BytesIO

    from PIL import Image

    pixel = np.array(Image.open(BytesIO(shot)).convert("RGB").getpixel((1, 1)), dtype=float)
    alpha = 215 / 255 * 0.85
    bg = np.array([221, 221, 221], dtype=float)  # Leaflet's container background, no basemap

    def blended(hexcol):
        c = np.array([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        return alpha * c + (1 - alpha) * bg

    dists = [np.abs(pixel - blended(PALETTE[c])).max() for c in range(10)]
    assert int(np.argmin(dists)) == int(ds.labels[10][row]) and min(dists) < 12, (pixel, dists)
    # clicking that point shows the same mesh
    page.mouse.click(x, y)
    page.wait_for_selector("#mesh-code", timeout=30_000)
    assert page.inner_text("#mesh-code") == str(int(ds.codes[row]))
    assert page.locator(".similar-here li").count() == 5
    assert page.locator(".similar-across li").count() >= 1
    assert f"mesh={int(ds.codes[row])}" in page.url
    # similarity colouring: one chart per distance class appears
    page.get_by_text("similarity to the clicked mesh").click()
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile')].some(i => i.src.includes('mode=similar'))", timeout=30_000
    )
    page.wait_for_selector("#cluster-chart .gtitle:has-text('by distance to the clicked mesh')", timeout=30_000)


def test_changing_k_updates_legend_and_map(page, server, demo_data):
    from core.geo.meshcode import code_centers

    _open(page, server, "?ds=demo/nagoya_2019_04&k=10")
    assert page.locator(".legend-item").count() == 10
    # a clicked Nagoya mesh shows its cluster in each period of the city
    ds, row = _known_mesh(demo_data, "demo/nagoya_2019_04")
    lat, lon = code_centers(ds.codes[row : row + 1], ds.mesh_sizes[row : row + 1])
    page.mouse.click(*_screen_point(page, "mesh-map", float(lat[0]), float(lon[0])))
    page.wait_for_selector(".periods li", timeout=30_000)
    assert page.locator(".periods li").all_inner_texts()[0].startswith("demo / nagoya 2019-04: cluster")
    assert page.locator(".periods li").count() == 2
    page.get_by_label("5", exact=True).check()
    page.wait_for_function("document.querySelectorAll('.legend-item').length === 5", timeout=30_000)
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile')].some(i => i.src.includes('k=5'))", timeout=30_000
    )
    counts = [int(t.split(":")[1].split("mesh")[0].replace(",", "")) for t in page.locator(".legend-count").all_inner_texts()]
    # Each legend entry counts the meshes of its cluster in the released labels (read here independently).
    from core.release.layout import discover, read_dataset

    released = read_dataset(next(r for r in discover(demo_data) if r.name == "nagoya_2019_04")).labels[5]
    assert counts == np.bincount(released, minlength=5).tolist()
    # any k is computed on the server
    page.fill("#k-any", "7")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.legend-item').length === 7", timeout=60_000)


def test_diff_view_transition_totals(page, server, demo_data):
    from core.analysis.diff import diff_datasets
    from core.release.layout import discover, read_dataset

    refs = {r.name: r for r in discover(demo_data)}
    d = diff_datasets(read_dataset(refs["nagoya_2019_04"]), read_dataset(refs["nagoya_2020_04"]))
    expected = len(d.codes)
    by_hand = np.zeros((10, 10), int)
    np.add.at(by_hand, (d.labels_a, d.labels_b), 1)
    _open(page, server)
    page.locator("#tabs").get_by_text("Compare periods").click()
    page.wait_for_selector("#diff-summary:has-text('meshes in both')", timeout=60_000)
    assert page.inner_text("#diff-summary").startswith(f"{expected:,} meshes in both")
    z = page.evaluate("document.querySelector('#diff-matrix .js-plotly-plot').data[0].z")
    assert np.array_equal(np.asarray(z, dtype=int), by_hand)  # rows = A's clusters, columns = B's
    page.wait_for_function(
        "[...document.querySelectorAll('#diff-map img.leaflet-tile')].some(i => i.src.includes('mode=diff'))", timeout=30_000
    )


def test_export_geojson_downloads_the_dataset(page, server, demo_data):
    import json

    from core.release.layout import discover, read_dataset

    ds = read_dataset(next(r for r in discover(demo_data) if r.name == "nagoya_2019_04"))
    _open(page, server, "?ds=demo/nagoya_2019_04&k=5")
    with page.expect_download() as info:
        page.get_by_text("Export GeoJSON").click()
    path = info.value.path()
    doc = json.loads(Path(path).read_text())
    assert info.value.suggested_filename == "demo_nagoya_2019_04_k5.geojson"
    assert len(doc["features"]) == ds.n_meshes
    props = doc["features"][0]["properties"]
    assert {"code", "vector", "5cluster", "10cluster", "20cluster", "mesh_size", "is_complemented"} <= set(props)


def test_diff_maps_follow_each_other(page, server):
    _open(page, server)
    page.locator("#tabs").get_by_text("Compare periods").click()
    page.wait_for_selector("#diff-summary:has-text('meshes in both')", timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('#diff-map-a img.leaflet-tile')].some(i => i.src.includes('side=a'))", timeout=30_000
    )
    src = page.locator("#diff-map img.leaflet-tile").first.get_attribute("src")
    z = int(src.split("/tiles/")[1].split("/")[0])
    page.locator("#diff-map-a .leaflet-control-zoom-in").click()
    page.wait_for_function(
        f"[...document.querySelectorAll('#diff-map img.leaflet-tile')].some(i => i.src.includes('/tiles/{z + 1}/'))",
        timeout=30_000,
    )
    # colour period B by embedding distance instead
    page.get_by_text("embedding distance to A").click()
    page.wait_for_function(
        "[...document.querySelectorAll('#diff-map img.leaflet-tile')].some(i => i.src.includes('by=distance'))", timeout=30_000
    )


def _mesh_pixel(page, lat, lon):
    from io import BytesIO

    from PIL import Image

    x, y = _screen_point(page, "mesh-map", lat, lon)
    shot = page.screenshot(clip={"x": x - 1, "y": y - 1, "width": 3, "height": 3})
    return (x, y), np.array(Image.open(BytesIO(shot)).convert("RGB").getpixel((1, 1)), dtype=float)


def test_one_space_same_district_same_cluster_name_and_colour(page, server, demo_data):
    """Joint clusters: a mesh of one district type in Osaka and one in Nagoya show the same cluster, name and colour."""
    import pandas as pd

    from core.geo.meshcode import code_centers
    from core.geo.tiles import MeshIndex
    from core.release.layout import discover, read_dataset
    from dashboard.figures import PALETTE

    truth = pd.read_parquet(demo_data / "demo" / "truth" / "meshes.parquet")
    refs = {r.name: r for r in discover(demo_data)}
    sets = {}
    for name in ("osaka_2021_04", "nagoya_2019_04"):
        ds = read_dataset(refs[name])
        district = truth[truth["dataset"] == name].set_index("code")["district"].reindex(ds.codes).to_numpy(dtype=object)
        sets[name] = (ds, district, ~ds.complemented & (ds.mesh_sizes == 50))
    # The district type both cities have most of (business in a full build; the tiny one is small).
    counts = {n: pd.Series(d[own]).value_counts() for n, (_, d, own) in sets.items()}
    kind = max(
        set(counts["osaka_2021_04"].index) & set(counts["nagoya_2019_04"].index), key=lambda t: min(c[t] for c in counts.values())
    )
    picked = {}
    for name, (ds, district, own) in sets.items():
        lab = ds.labels[10]
        chosen = own & (district == kind)
        majority = int(np.bincount(lab[chosen], minlength=10).argmax())
        idx = MeshIndex(ds.codes, ds.mesh_sizes)
        lat, lon = code_centers(ds.codes, ds.mesh_sizes)
        best, agree = -1, -1
        for row in np.flatnonzero(chosen & (lab == majority)):  # the one whose neighbours agree most
            rows = idx.lookup(lat[row] + np.repeat([-1, 0, 1], 3) / 2400, lon[row] + np.tile([-1, 0, 1], 3) / 1600)
            score = int(((rows >= 0) & (lab[np.maximum(rows, 0)] == majority)).sum())
            if score > agree:
                best, agree = int(row), score
        if best >= 0:
            picked[name] = (ds, best, majority, float(lat[best]), float(lon[best]), agree == 9)
    assert set(picked) == {"osaka_2021_04", "nagoya_2019_04"}, (kind, counts)
    # The same kind of district is the same cluster in both cities (per-dataset clusters failed this).
    assert picked["osaka_2021_04"][2] == picked["nagoya_2019_04"][2]
    shown = {}
    for name, (ds, row, cluster, lat, lon, clear) in picked.items():
        _open(page, server, f"?ds=demo/{name}&k=10")
        (x, y), pixel = _mesh_pixel(page, lat, lon)
        colour = np.array([int(PALETTE[cluster][i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        alpha = 215 / 255 * 0.85
        if clear:  # all 8 neighbours share the cluster: the pixel under the point has its colour
            assert np.abs(pixel - (alpha * colour + (1 - alpha) * 221)).max() < 12, (name, pixel)
        page.mouse.click(x, y)
        page.wait_for_selector(f"#mesh-code:has-text('{int(ds.codes[row])}')", timeout=30_000)
        shown[name] = page.inner_text("#mesh-cluster")
        legend = page.locator(".legend-item").nth(cluster).inner_text()
        assert shown[name].split(": ", 1)[1] in legend
    assert shown["osaka_2021_04"] == shown["nagoya_2019_04"]  # "c of 10: <the same name>"


def test_period_matrix_has_cluster_names_on_its_axes(page, server, demo_data):
    from core.release.clusters import clusters_file, load_joint

    names = load_joint(clusters_file(demo_data / "demo", 10)).display_names()
    _open(page, server)
    page.locator("#tabs").get_by_text("Compare periods").click()
    page.wait_for_selector("#diff-summary:has-text('stayed in their cluster')", timeout=60_000)
    ticks = page.evaluate("document.querySelector('#diff-matrix .js-plotly-plot').data[0].y")
    assert ticks == [f"{c}: {n}" for c, n in enumerate(names)]
    summary = page.inner_text("#diff-summary")
    assert "decided from the data" in summary
