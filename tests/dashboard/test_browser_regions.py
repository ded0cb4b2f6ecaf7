"""The Regions view in real headless Chromium: align two cities, read the metrics, the map and the projection,
click regions and read their nearest regions in the other city; cancel a long training.

The data folder holds a tiny demo build (Osaka and Nagoya: cities derived from the demo's stays) and
two small generated LibCity-style cities under ``DATA/regions/``, written here.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from tests.regions.synthetic import write_city

RED = "#d62728"


@pytest.fixture(scope="module")
def regions_data(tmp_path_factory):
    from core.simulation.demo import build_demo

    data = tmp_path_factory.mktemp("regions-browser") / "data"
    build_demo(data, scale="tiny", only=("osaka_2021_04", "nagoya_2019_04"))
    write_city(data / "regions" / "alpha", "alpha", 30, 1)
    write_city(data / "regions" / "beta", "beta", 36, 2)
    return data


@pytest.fixture(scope="module")
def server(regions_data):
    from dashboard.serve import running_app

    with running_app(regions_data, timeout=90) as url:
        yield url


@pytest.fixture
def page(chromium):
    pg = chromium.new_page(viewport={"width": 1400, "height": 1400})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert errors == [], errors


def _open(page, server) -> None:
    page.goto(server)
    page.get_by_text("Regions", exact=True).click()
    page.wait_for_selector("#regions-source", timeout=60_000)


def _choose(page, dropdown: str, option: str) -> None:
    page.locator(f"#{dropdown}").click()
    page.get_by_role("option", name=option).first.click()
    page.wait_for_timeout(200)


def _set_number(page, field: str, value: int) -> None:
    box = page.locator(f"input#{field}")
    box.fill(str(value))
    box.press("Enter")


def _align(page, source: str, target: str, method: str, epochs: int) -> None:
    _choose(page, "regions-source", source)
    _choose(page, "regions-target", target)
    _choose(page, "regions-method", method)
    _set_number(page, "regions-epochs", epochs)
    page.wait_for_selector("text=Not trained yet", timeout=30_000)
    page.get_by_role("button", name="Align").click()
    page.wait_for_selector("#regions-trained", timeout=180_000)
    page.wait_for_selector("#regions-metrics-table", timeout=30_000)


def _metrics(page) -> dict[str, list[str]]:
    rows = page.locator("#regions-metrics-table tbody tr").all_inner_texts()
    return {r.split("\t")[0]: r.split("\t")[1:] for r in rows}


def _point_colours(page) -> list[set[str]]:
    """The fill colours of the points of each of the projection's first two traces (one per city)."""
    found = page.evaluate(
        "() => [...document.querySelectorAll('#regions-projection .scatterlayer .trace')].slice(0, 2)"
        ".map(t => [...t.querySelectorAll('path.point')].map(p => p.style.fill))"
    )
    return [set(f) for f in found]


def _map_paths(page, stroke: str) -> list[str]:
    return page.evaluate(
        "s => [...document.querySelectorAll('#regions-map path.leaflet-interactive, #regions-map path')]"
        ".filter(p => p.getAttribute('stroke') === s).map(p => p.getAttribute('fill'))",
        stroke,
    )


def _nearest(page) -> tuple[str, list[str]]:
    page.wait_for_selector("#regions-nearest-list li", timeout=30_000)
    return page.locator("#regions-nearest h3").inner_text(), page.locator("#regions-nearest-list li").all_inner_texts()


def _lonely_point(page, trace: int) -> tuple[float, float]:
    """Page coordinates of the point of ``trace`` (0 = source) farthest on screen from every other point."""
    centres = page.evaluate(
        "() => [...document.querySelectorAll('#regions-projection .scatterlayer .trace')].slice(0, 2)"
        ".map(t => [...t.querySelectorAll('path.point')].map(p => { const r = p.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; }))"
    )
    mine, every = np.asarray(centres[trace]), np.vstack([np.asarray(c) for c in centres])
    d = np.linalg.norm(mine[:, None, :] - every[None, :, :], axis=2)
    d[d == 0] = np.inf
    best = int(np.argmax(d.min(axis=1)))
    return float(mine[best, 0]), float(mine[best, 1])


def test_align_two_cities_read_metrics_projection_and_nearest_regions(page, server):
    _open(page, server)
    page.locator("#regions-source").click()
    offered = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert offered[:2] == ["alpha", "beta"]
    assert any(o.startswith("nagoya_2019_04 (demo stays") for o in offered)
    assert any(o.startswith("osaka_2021_04 (demo stays") for o in offered)

    _align(page, "alpha", "beta", "Procrustes (rank anchors)", 3)
    assert "Procrustes (rank anchors) on regions/alpha (30 regions) and regions/beta (36 regions), 3 epochs" in (
        page.locator("#regions-trained").inner_text()
    )
    metrics = _metrics(page)
    assert list(metrics) == ["Procrustes (rank anchors)", "mean of source", "area only (ridge on log area)"]
    for name, values in metrics.items():
        assert re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", values[0]), (name, values)  # MAE is a number (1,234.5)
    assert metrics["mean of source"][1] == "–"  # a constant has no Spearman

    # The projection: the two cities' points, one colour each.
    page.wait_for_selector("#regions-projection .scatterlayer .trace path.point", timeout=30_000)
    colours = _point_colours(page)
    assert len(colours) == 2 and all(len(c) == 1 for c in colours) and colours[0] != colours[1]
    assert page.locator("#regions-projection .scatterlayer .trace").nth(0).locator("path.point").count() == 30
    assert page.locator("#regions-projection .scatterlayer .trace").nth(1).locator("path.point").count() == 36

    # The map: every target region, coloured (more than one colour), with its legend.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#regions-map path')].filter(p => p.getAttribute('stroke') === '#444').length == 36",
        timeout=30_000,
    )
    assert "predicted gdp" in page.locator("#regions-legend").inner_text()
    assert "#bdbdbd" not in _map_paths(page, "#444")  # every region has a prediction
    for by in ("true", "error"):
        page.locator("#regions-colour").get_by_text(by, exact=True).click()
        page.wait_for_function(f"() => document.querySelector('#regions-legend').innerText.startsWith('{by}')", timeout=30_000)
        page.wait_for_timeout(300)
        assert len(set(_map_paths(page, "#444"))) > 3, by  # a colour scale, not one colour

    # Click a target region on the map: its nearest regions in the source city, listed; it is outlined.
    region = page.locator("#regions-map path[stroke='#444']").nth(5)
    region.click(force=True)
    head, items = _nearest(page)
    assert re.fullmatch(r"Nearest to beta region \d+ in alpha", head), head
    assert len(items) == 5 and all(re.fullmatch(r"alpha region \d+ \(cosine similarity -?[0-9.]+\)", i) for i in items), items
    page.wait_for_function(f"() => document.querySelectorAll('#regions-map path[stroke=\"{RED}\"]').length == 1")
    assert page.locator("#regions-projection .scatterlayer .trace").count() == 4  # cities, nearest ringed, picked

    # Click a source point in the projection: its nearest target regions, listed and outlined on the map.
    x, y = _lonely_point(page, 0)
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => (document.querySelector('#regions-nearest h3') || {}).innerText?.startsWith('Nearest to alpha')", timeout=30_000
    )
    head, items = _nearest(page)
    assert re.fullmatch(r"Nearest to alpha region \d+ in beta", head), head
    assert len(items) == 5 and all(i.startswith("beta region ") for i in items)
    page.wait_for_function(f"() => document.querySelectorAll('#regions-map path[stroke=\"{RED}\"]').length == 5")


def test_demo_cities_align_and_a_long_training_can_be_cancelled(page, server, regions_data):
    _open(page, server)
    # Cities from the demo's stays (1 km meshes, label 'stays'): a fresh install with only the demo works.
    _align(
        page, "osaka_2021_04 (demo stays, 1 km meshes)", "nagoya_2019_04 (demo stays, 1 km meshes)", "affine (rank anchors)", 2
    )
    assert list(_metrics(page))[0] == "affine (rank anchors)"
    assert page.locator("#regions-label").inner_text().strip() == "stays"
    page.wait_for_selector("#regions-projection .scatterlayer .trace path.point", timeout=30_000)
    assert all(len(c) == 1 for c in _point_colours(page))

    # A long CoRE run: progress shows, Cancel stops it, nothing is cached, Align is offered again.
    _choose(page, "regions-source", "alpha")
    _choose(page, "regions-target", "beta")
    _choose(page, "regions-method", "CoRE (one stage)")
    _set_number(page, "regions-epochs", 5000)
    page.wait_for_selector("text=Not trained yet for core, 5000 epochs", timeout=30_000)
    page.get_by_role("button", name="Align").click()
    page.wait_for_function("() => document.querySelector('#regions-status').innerText.includes('epoch')", timeout=120_000)
    assert page.get_by_role("button", name="Align").is_disabled()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("text=Cancelled: nothing was saved.", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#regions-start').disabled", timeout=60_000)
    time.sleep(1.0)
    assert not list((regions_data / ".cache" / "regions" / "embeddings").glob("*__core__s0__e5000__*"))
    assert page.locator("text=Not trained yet for core, 5000 epochs").count() == 1
