"""The browser's side of the People scatter: drawing 100 k people, and redrawing a selection, in Chromium.

    python -m bench.bench_people_browser [--people 100000] [--repeats 3]

Builds the view's figure (``dashboard.figures.people_scatter``: one WebGL trace per colour) for N
people in a 2-D projection, and, as the baseline, the same figure drawn as SVG (``go.Scatter``, what
plotly uses without WebGL). Each is drawn in headless Debian Chromium (the browser tests' flags;
WebGL runs in software there, SwiftShader, so a desktop GPU is faster) from a page holding
plotly.js; the page measures, in the browser, the time from ``Plotly.newPlot`` to the first
``plotly_afterplot`` (draw), and from a selection of a quarter of the points
(``Plotly.restyle(selectedpoints)``, what a lasso does) to the next ``plotly_afterplot`` (redraw).
Also prints the figure's JSON size and the page's JS heap after the draw. Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="plotly.js"></script></head>
<body><div id="plot" style="width:900px;height:460px"></div></body></html>"""

MEASURE = """async ([fig, selected]) => {
  const el = document.getElementById('plot');
  const after = () => new Promise(resolve => el.once('plotly_afterplot', resolve));
  Plotly.purge(el);
  let t0 = performance.now();
  await Plotly.newPlot(el, fig.data, fig.layout, {responsive: false});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const draw = performance.now() - t0;
  t0 = performance.now();
  const done = after();
  await Plotly.restyle(el, {selectedpoints: selected});
  await done;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const redraw = performance.now() - t0;
  const heap = performance.memory ? performance.memory.usedJSHeapSize : null;
  return {draw, redraw, heap};
}"""


def figures(n: int, seed: int = 0) -> dict[str, tuple[dict, list[list[int]]]]:
    """The view's WebGL figure and its SVG baseline (plain JSON-ready dicts), each with a selection.

    The selection is a quarter of each trace's points, as a lasso over a quarter of the cloud.
    """
    import plotly.graph_objects as go

    from dashboard.figures import people_scatter

    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(n, 2)) * np.array([2.0, 1.0])
    cat = (rng.random(n) < 0.23).astype(np.int64)  # "commuter" share of the demo
    gl = people_scatter(xy, cat, ["others", "commuters"], "bench")
    svg = go.Figure(gl)
    svg.data = ()
    for trace in gl.data:
        svg.add_trace(go.Scatter(trace.to_plotly_json()))
    selected = [list(range(0, len(t.x), 4)) for t in gl.data]
    return {"webgl (the view)": (json.loads(gl.to_json()), selected), "svg (baseline)": (json.loads(svg.to_json()), selected)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    from dashboard.serve import CHROMIUM_ARGS

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    figs = figures(args.people)
    print(
        f"{args.people:,} people; figure JSON: "
        + ", ".join(f"{k} {len(json.dumps(v[0])) / 2**20:.1f} MB" for k, v in figs.items())
    )
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        root = Path(tmp)
        (root / "plotly.js").write_text(get_plotlyjs())
        (root / "index.html").write_text(PAGE)
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        page.goto((root / "index.html").as_uri())
        page.wait_for_function("() => typeof Plotly !== 'undefined'")
        print("| figure | draw (newPlot -> painted) | redraw after selecting 25 % | JS heap after |")
        print("|---|---|---|---|")
        for name, (fig, selected) in figs.items():
            best: dict | None = None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = page.evaluate(MEASURE, [fig, selected])
                r["wall"] = time.perf_counter() - t0
                if best is None or r["draw"] < best["draw"]:
                    best = r
            assert best is not None
            heap = f"{best['heap'] / 2**20:,.0f} MB" if best["heap"] else "n/a"
            print(f"| {name} | {best['draw']:,.0f} ms | {best['redraw']:,.0f} ms | {heap} |")
        browser.close()


if __name__ == "__main__":
    main()
