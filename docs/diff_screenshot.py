"""The README's screenshot of the period comparison alone: Nagoya 2019-04 vs 2020-04, a picked mesh.

    python -m docs.diff_screenshot --data data [--thr 0.05]

Starts ``app.py`` offline (no basemap) and takes :func:`docs.screenshots.diff_view_shot` (the same
shot ``python -m docs.screenshots --views diff`` takes): ``docs/screenshots/diff.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from dashboard.serve import CHROMIUM_ARGS, running_app
from docs.screenshots import ROOT, diff_view_shot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--thr", type=float, default=None, help="a threshold set by hand (default: from the data)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "diff.png"))
    args = ap.parse_args()
    out = Path(args.out)
    with running_app(args.data, timeout=120) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        diff_view_shot(browser.new_page(), url, out, args.thr)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
