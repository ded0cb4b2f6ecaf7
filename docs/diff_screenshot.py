"""The README's screenshot of the period comparison: Nagoya 2019-04 vs 2020-04, the threshold from the data, a picked mesh.

    python -m docs.diff_screenshot --data data [--thr 0.05]

Starts ``app.py`` offline (no basemap), opens the Compare periods view, picks the most changed
250 m mesh of the ranked list (else the most changed mesh), zooms out two levels around it and
writes ``docs/screenshots/diff.png``.
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
    ap.add_argument("--thr", type=float, default=None, help="a threshold set by hand (default: from the data)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "diff.png"))
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    query = "?view=diff" + (f"&thr={args.thr}" if args.thr is not None else "")
    with running_app(args.data, timeout=120) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1450})
        page.goto(url + "/" + query)
        page.wait_for_selector("#diff-summary:has-text('in both')", timeout=120_000)
        page.wait_for_function("document.querySelectorAll('#diff-map-a .leaflet-tile-loaded').length > 0", timeout=60_000)
        rows = page.locator("#diff-ranking button", has_text="(250 m)")
        (rows if rows.count() else page.locator("#diff-ranking button")).first.click()
        page.wait_for_function("document.querySelectorAll('#diff-panel .js-plotly-plot').length === 2", timeout=60_000)
        for _ in range(2):  # the row zoomed in on its mesh: out again, to show the city around it
            page.locator("#diff-map-a .leaflet-control-zoom-out").click()
            page.wait_for_timeout(1200)
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1400, "height": 1450})
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
