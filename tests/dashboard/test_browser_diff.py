"""The period comparison in real headless Chromium: legends, before / after, threshold, matrix cells, address.

Its own small demo build (Nagoya 2019-04 and 2020-04), the app as a subprocess (no basemap).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.dashboard.test_browser import _screen_point

A, B = "demo/nagoya_2019_04", "demo/nagoya_2020_04"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from core.simulation.demo import build_demo

    data = tmp_path_factory.mktemp("diffdata")
    build_demo(data, scale="tiny", only=("nagoya_2019_04", "nagoya_2020_04"))
    return data


@pytest.fixture(scope="module")
def server(demo_data):
    from dashboard.serve import running_app

    with running_app(demo_data) as url:
        yield url


@pytest.fixture(scope="module")
def truth(demo_data):
    """The diff computed in this process (not the server's): measures, the data's threshold, joint labels at k = 10."""
    from dashboard.catalog import Catalog

    return Catalog(demo_data).diff(A, B, 10)


@pytest.fixture
def page(chromium):
    pg = chromium.new_page(viewport={"width": 1400, "height": 1200})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert errors == [], errors


def _open_diff(page, url, query="?view=diff"):
    page.goto(url + "/" + query)
    page.wait_for_selector("#diff-summary:has-text('meshes in both')", timeout=90_000)
    page.wait_for_function("document.querySelectorAll('#diff-map .leaflet-tile-loaded').length > 0", timeout=60_000)
    page.wait_for_timeout(300)


def _tile_zoom(page, map_id, needle=""):
    sel = f"#{map_id} img.leaflet-tile" + (f"[src*='{needle}']" if needle else "[src]")
    src = page.locator(sel).first.get_attribute("src")
    return int(src.split("/tiles/")[1].split("/")[0])


def _changed(page) -> int:
    return int(page.inner_text("#diff-threshold-text").split(" changed")[0].replace(",", ""))


def test_legends_explain_both_colourings_and_the_zoom_stays(page, server, truth):
    _open_diff(page, server)
    legend = page.inner_text("#diff-legend-b")
    assert "Period B: stay pattern changed since A" in legend
    assert "unchanged: at or below " in legend and "Jensen-Shannon" in legend
    assert "Period A: cluster in A (k = 10)" in page.inner_text("#diff-legend-a")
    page.locator("#diff-map .leaflet-control-zoom-in").click()
    page.wait_for_timeout(500)
    z = _tile_zoom(page, "diff-map")
    page.get_by_text("embedding distance to A").click()
    page.wait_for_function(
        "[...document.querySelectorAll('#diff-map img.leaflet-tile')].some(i => i.src.includes('by=distance'))", timeout=30_000
    )
    page.wait_for_selector("#diff-legend-b:has-text('embedding distance to A')", timeout=30_000)
    legend = page.inner_text("#diff-legend-b")
    assert "Pale = the mesh's embedding barely moved" in legend and "dark red = it moved the most" in legend
    counts = [int(m) for m in re.findall(r": ([\d,]+) mesh(?:es)? \(", legend)]
    assert sum(counts) == len(truth.codes) and len(counts) == 5  # every compared mesh in one class
    assert _tile_zoom(page, "diff-map", "by=distance") == z  # the map was not re-created: zoom kept
    assert "by=distance" in page.url and f"a={A.replace('/', '%2F')}" in page.url


def test_a_clicked_mesh_shows_before_and_after(page, server, truth):
    from core.geo.meshcode import code_centers

    _open_diff(page, server)
    lat, lon = code_centers(truth.codes, truth.sizes)
    i = int(np.argmin(np.hypot(lat - np.median(lat), lon - np.median(lon))))  # a compared mesh near the middle
    page.mouse.click(*_screen_point(page, "diff-map", float(lat[i]), float(lon[i])))
    page.wait_for_function("document.querySelectorAll('#diff-panel .js-plotly-plot').length === 2", timeout=30_000)
    assert page.inner_text("#diff-panel-code") == f"{int(truth.codes[i])} ({int(truth.sizes[i])} m)"
    assert page.inner_text("#diff-panel-change").startswith(f"{truth.pattern_change[i]:.3f}")
    titles = page.locator("#diff-panel .gtitle").all_text_contents()  # SVG text: no innerText
    assert titles[0].startswith(f"A (2019-04): cluster {int(truth.labels_a[i])}:")
    assert titles[1].startswith(f"B (2020-04): cluster {int(truth.labels_b[i])}:")
    assert (page.locator("#diff-panel .g-ytitle").first.text_content() or "").startswith("share of stays")


def test_threshold_moves_the_counts_and_a_matrix_cell_highlights_its_meshes(page, server, truth):
    _open_diff(page, server)
    before = _changed(page)
    assert before == int(truth.changed.sum())
    track = page.locator("#diff-threshold .dash-slider-track").bounding_box()
    page.mouse.click(track["x"] + track["width"] * 0.25, track["y"] + track["height"] / 2)  # log scale: 0.001
    page.wait_for_selector("#diff-threshold-text:has-text('set by you')", timeout=30_000)
    thr = float(re.search(r"threshold ([\d.e-]+) \(set by you\)", page.inner_text("#diff-threshold-text")).group(1))
    after = _changed(page)
    assert after == int((truth.pattern_change > thr).sum()) and after != before
    assert f"thr={thr}" in page.url
    page.wait_for_function(
        f"[...document.querySelectorAll('#diff-map img.leaflet-tile')].some(i => i.src.includes('thr={thr}'))", timeout=30_000
    )
    # the largest off-diagonal transition
    m = np.zeros((10, 10), int)
    np.add.at(m, (truth.labels_a, truth.labels_b), 1)
    np.fill_diagonal(m, -1)
    i, j = (int(v) for v in np.unravel_index(np.argmax(m), m.shape))
    _click_cell(page, i, j)
    page.wait_for_selector("#diff-cell-info:has-text('Highlighted')", timeout=30_000)
    assert page.inner_text("#diff-cell-info").startswith(f"Highlighted: {m[i, j]:,} meshes went from {i}:")
    page.wait_for_function(
        f"[...document.querySelectorAll('#diff-map-a img.leaflet-tile')].some(i => i.src.includes('cell={i}-{j}'))",
        timeout=30_000,
    )
    assert page.locator("#diff-ranking tbody tr").count() == min(m[i, j], 20)  # the list shows that transition
    _click_cell(page, i, j)  # the same cell again: cleared
    page.wait_for_selector("#diff-cell-info:has-text('Click a cell')", timeout=30_000)


def _click_cell(page, i, j):
    """Click matrix cell (row i = cluster in A, column j = cluster in B) where Plotly drew it."""
    page.locator("#diff-matrix").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    xy = page.evaluate(
        """([i, j]) => {const gd = document.querySelector('#diff-matrix .js-plotly-plot'); const r = gd.getBoundingClientRect();
        const fl = gd._fullLayout; return [r.left + fl.xaxis._offset + fl.xaxis.l2p(j), r.top + fl.yaxis._offset + fl.yaxis.l2p(i)];}""",
        [i, j],
    )
    page.mouse.click(*xy)


def test_address_bar_state_and_empty_state_for_an_invalid_pair(page, server):
    _open_diff(page, server, f"?view=diff&a={B}&b={A}&dk=5&by=cluster&thr=0.02")
    page.wait_for_selector("#diff-legend-b:has-text('Period B: cluster in B (k = 5)')", timeout=30_000)
    assert "threshold 0.02 (set by you)" in page.inner_text("#diff-threshold-text")
    assert page.inner_text("#diff-note") == ""
    # A = B and a k out of range: a visible note, both maps cleared with the reason, never the previous pair
    page.goto(server + f"/?view=diff&a={A}&b={A}&dk=99")
    page.wait_for_selector("#diff-empty:has-text('same dataset')", timeout=60_000)
    assert "k = '99' is not a number of clusters" in page.inner_text("#diff-note")
    page.wait_for_timeout(500)
    srcs = page.evaluate(
        "[...document.querySelectorAll('#diff-map img.leaflet-tile, #diff-map-a img.leaflet-tile')].map(i => i.getAttribute('src'))"
    )
    assert all(not s for s in srcs)
    assert page.locator("#diff-legend-b li").count() == 0


def _tile_alpha(page, map_id, lat, lon) -> int:
    """The alpha of the mesh layer's pixel at a point, read from the loaded tile image (same origin: readable)."""
    from tests.dashboard.test_browser import _mercator

    src = page.locator(f"#{map_id} img.leaflet-tile").first.get_attribute("src")
    zoom = int(src.split("/tiles/")[1].split("/")[0])
    px, py = _mercator(lat, lon, zoom)
    tx, ty = int(px // 256), int(py // 256)
    return page.evaluate(
        """([mapId, path, x, y]) => {
            const img = [...document.querySelectorAll(`#${mapId} img.leaflet-tile`)].find(i => i.src.includes(path));
            const c = document.createElement('canvas'); c.width = 256; c.height = 256;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            return g.getImageData(x, y, 1, 1).data[3];
        }""",
        [map_id, f"/tiles/{zoom}/{tx}/{ty}.png", int(px - tx * 256), int(py - ty * 256)],
    )


def test_compared_250m_meshes_are_drawn_on_both_maps(page, server, demo_data, truth):
    """Each compared 250 m mesh is painted (paler) on its 50 m cells: at its centre neither map is empty."""
    from core.geo.meshcode import code_centers
    from dashboard.catalog import Catalog

    cat = Catalog(demo_data)
    coarse = np.flatnonzero(truth.sizes == 250)
    lat, lon = code_centers(truth.codes[coarse], 250)
    compared_50m = set(truth.codes[truth.sizes == 50].tolist())
    under = cat.index(A).lookup(lat, lon)  # the 50 m cell at each centre in A: not a compared 50 m mesh
    keep = np.array([int(cat.get(A).codes[r]) not in compared_50m for r in under])
    assert keep.sum() >= 1, "the demo has no compared 250 m mesh"
    _open_diff(page, server)
    page.wait_for_function("document.querySelectorAll('#diff-map-a .leaflet-tile-loaded').length > 0", timeout=60_000)
    page.wait_for_timeout(500)
    for i in np.flatnonzero(keep)[:5]:
        for map_id in ("diff-map-a", "diff-map"):
            assert _tile_alpha(page, map_id, float(lat[i]), float(lon[i])) > 0, (map_id, int(truth.codes[coarse[i]]))


def test_the_matrix_is_light_at_zero_and_dark_with_light_text_at_the_largest_count(page, server, truth):
    _open_diff(page, server)
    page.wait_for_selector("#diff-matrix text.gtitle", timeout=30_000)
    m = np.zeros((10, 10), int)
    np.add.at(m, (truth.labels_a, truth.labels_b), 1)
    fills = page.evaluate(
        """() => [...document.querySelectorAll('#diff-matrix text')].filter(t => !t.closest('.colorbar'))
             .filter(t => /^\\d+$/.test(t.textContent)).map(t => [Number(t.textContent), getComputedStyle(t).fill])"""
    )

    def brightness(fill: str) -> float:
        r, g, b = (int(v) for v in re.findall(r"\d+", fill)[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    top = [brightness(f) for v, f in fills if v == m.max()]
    zero = [brightness(f) for v, f in fills if v == 0]
    assert top and zero and min(top) > 200 and max(zero) < 128  # light text on the darkest cell, dark text on empty ones
