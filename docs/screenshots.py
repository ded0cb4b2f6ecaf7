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


def diff_view_shot(page, url: str, path: Path) -> None:
    """The period comparison with a threshold set by hand and a clicked mesh (a palette PNG, under 250 KB)."""
    from io import BytesIO

    from PIL import Image

    page.goto(url + "/?view=diff&a=demo/nagoya_2019_04&b=demo/nagoya_2020_04&dk=10&by=change&thr=0.05")
    page.wait_for_selector("#diff-summary:has-text('meshes in both')", timeout=90_000)
    page.wait_for_function("document.querySelectorAll('#diff-map .leaflet-tile-loaded').length > 0", timeout=60_000)
    box = page.locator("#diff-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.6)
    page.wait_for_function("document.querySelectorAll('#diff-panel .js-plotly-plot').length === 2", timeout=30_000)
    page.wait_for_timeout(1500)
    shot = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": 1450})
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(BytesIO(shot)).convert("RGB").quantize(colors=128).save(path, optimize=True)


if __name__ == "__main__":
    main()
