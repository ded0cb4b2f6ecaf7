"""Time a first start: ``python -m bench.bench_first_start [--demo-scale default] [--keep DIR]``.

Starts ``python app.py`` over a fresh, empty data folder (no basemap), as a new user's first start,
and prints the seconds from the start of the command to

- the first HTTP answer (the progress page),
- each phase of the demo build as the progress page reports it (first seen, polled every 0.25 s),
- the app being ready (``/build-status`` says ``ready``),
- the populated map in headless Chromium (a page opened at the first answer, never reloaded by
  hand: the cluster legend shown and the first map tiles loaded); skipped without chromium.

with the machine's load average (``/proc/loadavg``) before and after, since the build's time depends
on it. Bounded: gives up after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from core import knobs
from dashboard.serve import CHROMIUM_ARGS, app_process, build_status


def _load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    knobs.DEMO_SCALE.add_to(ap, "--demo-scale", metavar="SCALE")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds (default 3600)")
    ap.add_argument("--keep", metavar="DIR", help="build into DIR (must not exist) and keep it; default: a temporary folder")
    ap.add_argument("--no-browser", action="store_true", help="do not open the page in headless Chromium")
    ap.add_argument("--screenshot", metavar="PNG", help="save the progress page once it shows 25 %% or more and an ETA")
    args = ap.parse_args(argv)

    tmp = None
    if args.keep:
        data = Path(args.keep)
        if data.exists():
            raise SystemExit(f"error: {data} exists; a first start needs a fresh folder")
    else:
        tmp = tempfile.mkdtemp(prefix="first-start-")
        data = Path(tmp) / "data"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"load average before: {_load()} ({cores} cores); demo scale: {args.demo_scale}", flush=True)
    try:
        times = _measure(data, args.demo_scale, args.timeout, not args.no_browser, args.screenshot)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {_load()}")
    for what, seconds in times.items():
        print(f"{what:<40} {seconds:8.2f} s")


def _measure(data: Path, scale: str, timeout: float, browser: bool, screenshot: str | None = None) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.monotonic()
    with app_process(data, ("--demo-scale", scale)) as (url, proc, log), contextlib.ExitStack() as stack:

        def check() -> None:
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                raise SystemExit(f"error: the app stopped or timed out: {log.read_text(errors='replace')[-2000:]}")

        while (status := build_status(url, timeout=1.0)) is None:
            check()
            time.sleep(0.02)
        times["first HTTP answer (progress page)"] = time.monotonic() - t0
        page = None
        if browser and shutil.which("chromium"):
            from playwright.sync_api import sync_playwright

            pw = stack.enter_context(sync_playwright())
            chromium = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            stack.callback(chromium.close)
            page = chromium.new_page(viewport={"width": 1000, "height": 620})
            page.goto(url + "/")
        while status.get("state") not in ("ready", "failed"):
            check()
            key = f"  phase '{status.get('stage') or status.get('state')}' first seen"
            times.setdefault(key, time.monotonic() - t0)
            if page is not None and screenshot and (status.get("percent") or 0) >= 25 and status.get("eta_text"):
                page.wait_for_timeout(1200)  # the page's own poll shows the same state
                page.screenshot(path=screenshot)
                print(f"screenshot of the progress page at {status['percent']:.0f} % -> {screenshot}", flush=True)
                screenshot = None
            time.sleep(0.25)
            status = build_status(url, timeout=5.0) or status
        if status["state"] == "failed":
            raise SystemExit(f"error: the build failed: {status.get('error')}")
        times["app ready (/build-status)"] = time.monotonic() - t0
        if page is not None:
            page.wait_for_selector(".legend-item", timeout=max(timeout - (time.monotonic() - t0), 1) * 1000)
            page.wait_for_function("document.querySelectorAll('#mesh-map .leaflet-tile-loaded').length > 0", timeout=120_000)
            times["populated map in the browser"] = time.monotonic() - t0
    return times


if __name__ == "__main__":
    main()
