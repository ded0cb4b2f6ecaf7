"""The README's screenshot of the map view: a place found by name, its top 1 % highlighted, a hover.

    python -m docs.map_screenshot --data data [--dataset demo/nagoya_2019_04] [--place "Sakae Station"]

Starts ``app.py`` offline (no basemap: the map names the data's places itself), searches the
place, colours by similarity (top 1 %), hovers a mesh beside it and writes
``docs/screenshots/map.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from dashboard.serve import CHROMIUM_ARGS, running_app

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--dataset", default="demo/nagoya_2019_04")
    ap.add_argument("--place", default="Sakae Station")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "map.png"))
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with running_app(args.data) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{url}/?ds={args.dataset}&k=10")
        page.wait_for_selector(".legend-item", timeout=60_000)
        page.fill("#map-search", args.place)
        page.keyboard.press("Enter")
        page.wait_for_selector("#mesh-code", timeout=30_000)
        page.get_by_text("similarity to the clicked mesh").click()
        page.wait_for_selector("#match-count", timeout=30_000)
        # Zoom out one level to show the matches around the place, then hover a mesh.
        page.locator("#mesh-map .leaflet-control-zoom-out").click()
        page.wait_for_timeout(1500)
        box = page.locator("#mesh-map").bounding_box()
        x, y = box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.58
        page.mouse.move(x - 20, y - 20)
        page.mouse.move(x, y, steps=4)
        page.wait_for_selector(".mesh-hover", state="visible", timeout=10_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1300, "height": 900})
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
