"""First start in headless Chromium: ``python app.py`` over an empty data folder answers at once with the
demo build's progress (stage, percent, ETA), then the page turns into the map by itself.

Builds the ``quick`` demo (three small datasets) in the app's own child process, as a user's first
start would build the default one.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from dashboard.serve import app_process, build_status
from dashboard.startup import STAGE_LABELS, STATE_LABELS

PlaywrightError = pytest.importorskip("playwright.sync_api").Error


def test_first_start_shows_the_build_progress_then_the_map(chromium, tmp_path):
    data = tmp_path / "fresh"
    with app_process(data, ("--demo-scale", "quick")) as (url, proc, log):
        t0 = time.monotonic()
        while build_status(url) is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() - t0 < 60, "the port did not open"
            time.sleep(0.05)
        first_answer = time.monotonic() - t0
        assert (data / "demo").exists() is False  # the server answers before any release exists

        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        loads: list[str] = []
        page.on("load", lambda p: loads.append(p.url))
        page.goto(url + "/")
        page.wait_for_selector("#build-stage")
        page.wait_for_function("document.getElementById('build-percent').textContent.includes('%')", timeout=120_000)

        # Watch the page as a person would: the stage, the percent and the time left move.
        seen_stages, seen_percents, seen_eta = set(), set(), set()
        deadline = time.monotonic() + 900
        while page.locator(".legend-item").count() == 0:
            assert time.monotonic() < deadline, f"no map after 900 s: {log.read_text()[-2000:]}"
            with contextlib.suppress(PlaywrightError):  # the page may turn into the app between two reads
                seen_stages.add(page.inner_text("#build-stage", timeout=1000))
                seen_percents.add(page.inner_text("#build-percent", timeout=1000))
                seen_eta.add(page.inner_text("#build-eta", timeout=1000))
            page.wait_for_timeout(300)
        page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=60_000)
        page.wait_for_timeout(500)

        build_labels = {STAGE_LABELS[s] for s in ("stays", "anchors", "train", "cluster", "write")}
        assert len(seen_stages & build_labels) >= 2, seen_stages  # it talks through the build's phases
        percents = {int(p.split()[0]) for p in seen_percents if p.strip().endswith("%")}
        assert len(percents) >= 3 and min(percents) < 50 < max(percents), percents
        assert any(e.startswith("about ") and e.endswith(" left") for e in seen_eta), seen_eta
        assert not seen_stages & {STATE_LABELS["failed"]}
        # The map came without a reload by hand: the progress page reloaded itself once, into the app.
        assert len(loads) == 2 and page.locator("#build-stage").count() == 0
        assert page.locator(".legend-item").count() >= 5
        assert build_status(url)["state"] == "ready"
        out = log.read_text()
        assert "building the demo release (quick scale)" in out and "Demo release built in" in out
        page.close()
        assert errors == [], errors
        assert first_answer < 15, first_answer  # seconds, on a loaded 2-core box (bench: python -m bench.bench_first_start)
