"""Take the README's screenshots of each view in headless Chromium.

    python -m docs.screenshots --data data     # writes docs/img/*.png

Starts ``app.py`` on a free port (no basemap), then shows the cluster map, a clicked mesh with its
similar areas, the similarity colouring, the period comparison and the training view (the Kobe GPS
sample uploaded and previewed). ``--views train`` takes only that one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from dashboard.serve import CHROMIUM_ARGS as ARGS
from dashboard.serve import running_app

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument(
        "--views",
        default="map,train,diff",
        help="comma-separated: map (map, mesh, similar, diff), train, diff (the diff view's own)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(args.data) as url, sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        views = set(args.views.split(","))
        if "diff" in views:
            diff_view_shot(page, url, ROOT / "docs" / "screenshots" / "diff.png")
        if "train" in views:
            page.goto(url + "/?view=train")
            page.wait_for_selector("#train-upload", timeout=60_000)
            kobe = sorted((ROOT / "tests" / "data" / "kobe").glob("user*.csv"))
            page.set_input_files("#train-upload input[type=file]", [str(k) for k in kobe])
            page.wait_for_selector("#train-preview .preview-facts", timeout=60_000)
            page.fill("#train-name", "kobe")
            page.fill("#train-period", "2016-10")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "train.png"), full_page=True)
        if "map" not in views:
            b.close()
            return
        page.goto(url + "/?ds=demo/nagoya_2019_04&k=10")
        page.wait_for_selector(".legend-item", timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "map.png"))
        box = page.locator("#mesh-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.52, box["y"] + box["height"] * 0.47)
        page.wait_for_selector("#mesh-code", timeout=30_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "mesh.png"), full_page=True)
        page.get_by_text("similarity to the clicked mesh").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "similar.png"))
        page.locator("#tabs").get_by_text("Compare periods").click()
        page.wait_for_selector("#diff-summary:has-text('meshes in both')", timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "diff.png"))
        b.close()


def diff_view_shot(page, url: str, path: Path, thr: float | None = None) -> None:
    """The period comparison (Nagoya 2019-04 vs 2020-04; the threshold from the data unless ``thr``), the
    most changed 250 m mesh of the ranked list picked (else the most changed mesh), zoomed out two levels
    around it (a palette PNG, under 250 KB)."""
    from io import BytesIO

    from PIL import Image

    before = page.viewport_size
    page.set_viewport_size({"width": 1400, "height": 1450})
    page.goto(url + "/?view=diff" + (f"&thr={thr}" if thr is not None else ""))
    page.wait_for_selector("#diff-summary:has-text('in both')", timeout=120_000)
    page.wait_for_function("document.querySelectorAll('#diff-map-a .leaflet-tile-loaded').length > 0", timeout=60_000)
    rows = page.locator("#diff-ranking button", has_text="(250 m)")
    (rows if rows.count() else page.locator("#diff-ranking button")).first.click()
    page.wait_for_function("document.querySelectorAll('#diff-panel .js-plotly-plot').length === 2", timeout=60_000)
    for _ in range(2):  # the row zoomed in on its mesh: out again, to show the city around it
        page.locator("#diff-map-a .leaflet-control-zoom-out").click()
        page.wait_for_timeout(1200)
    page.wait_for_timeout(2500)
    shot = page.screenshot(clip={"x": 0, "y": 0, "width": 1400, "height": 1450})
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(BytesIO(shot)).convert("RGB").quantize(colors=128).save(path, optimize=True)
    if before:
        page.set_viewport_size(before)


if __name__ == "__main__":
    main()
