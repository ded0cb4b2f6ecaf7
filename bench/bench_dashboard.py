"""Dashboard server benchmark: first map, tiles, click -> similar areas, re-clustering.

    python -m bench.bench_dashboard [--data data] [--dataset demo/tokyo_2021_04]

Measures the server side in process (no browser): everything the first map paint needs (dataset
read from the cache, mesh index, legend with cluster descriptions, the tiles of the first view),
tile rendering over zoom levels (median, p95, cold cache), a click resolved to a mesh plus the
similar-area search over every dataset of the release, and k-means at a new k. Compares the
first read of a dataset from GeoJSON with a cached read as the baseline of the same run.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from core.analysis.similarity import similar_across
from core.geo.tiles import png_bytes, render_tile
from dashboard.catalog import Catalog
from dashboard.components import viewport
from dashboard.tiles import layer_values


def tiles_of_view(view: dict, width: int = 1000, height: int = 560) -> list[tuple[int, int, int]]:
    z = view["zoom"]
    n = 256 * 2**z
    lat, lon = view["center"]
    cx = (lon + 180) / 360 * n
    cy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    xs = range(int((cx - width / 2) // 256), int((cx + width / 2) // 256) + 1)
    ys = range(int((cy - height / 2) // 256), int((cy + height / 2) // 256) + 1)
    return [(z, x, y) for x in xs for y in ys]


def synthetic_release(data: Path) -> None:
    """A release the size of the real one: the full-scale demo grids (1.42 M cells of 50 m,
    Tokyo 210 k; Nagoya 16 periods) with random embeddings and labels. The dashboard's costs
    depend on mesh counts and geometry, not on how the embeddings were trained."""
    from core.release.layout import write_dataset
    from core.simulation.demo import SCALES, _city_spec, demo_datasets
    from core.simulation.world import build_grid

    rng = np.random.default_rng(0)
    root = data / "fullsize"
    done = data / ".fullsize-complete"
    if done.exists():
        return
    grids = {}
    for city, period in demo_datasets():
        if city not in grids:
            grids[city] = build_grid(_city_spec(city, SCALES["full"]), 0)
        g = grids[city]
        n = len(g)
        vec = rng.normal(0, 2, (n, 8)).astype(np.float32)
        labels = {k: rng.integers(0, k, n) for k in (5, 10, 20)}
        write_dataset(
            root, f"{city}_{period.label}", g.code, np.full(n, 50), vec, rng.normal(size=(168, 8)), labels, np.zeros(n, bool)
        )
        print(f"wrote {city}_{period.label}: {n:,} meshes", file=sys.stderr)
    done.touch()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--dataset", default="demo/tokyo_2021_04")
    ap.add_argument(
        "--synthetic",
        action="store_true",
        help="bench a release the size of the real one (random embeddings), written under DATA/fullsize",
    )
    args = ap.parse_args()
    if args.synthetic:
        synthetic_release(Path(args.data))
        args.dataset = "fullsize/tokyo_2021_04"
    cache = Path(args.data) / ".cache"
    shutil.rmtree(cache, ignore_errors=True)  # time the first read too

    cat = Catalog(args.data)
    key = args.dataset
    t = time.perf_counter()
    cat.get(key)
    first_read = time.perf_counter() - t
    cat = Catalog(args.data)  # a fresh server process: the dataset comes from the cache
    t0 = time.perf_counter()
    ds = cat.get(key)
    cached_read = time.perf_counter() - t0
    idx = cat.index(key)
    cat.cluster_summary(key, 10)
    view = viewport(cat, key)
    values, colours = layer_values(cat, {"ds": key, "mode": "cluster", "k": 10})
    first = tiles_of_view(view)
    for z, x, y in first:
        png_bytes(render_tile(idx, values, colours, z, x, y))
    first_paint = time.perf_counter() - t0

    times = []
    for z in (11, 12, 13, 14, 15, 16):
        v = {"center": view["center"], "zoom": z}
        for zz, x, y in tiles_of_view(v):
            t = time.perf_counter()
            png_bytes(render_tile(idx, values, colours, zz, x, y))
            times.append(time.perf_counter() - t)
    times = np.array(times) * 1000

    rng = np.random.default_rng(0)
    release = cat.refs[key].release
    others = [k for k in cat.refs if cat.refs[k].release == release]
    for k in others:
        cat.get(k)
    n_all = sum(cat.get(k).n_meshes for k in others)
    clicks = []
    s, w, n, e = idx.bounds
    for _ in range(20):
        t = time.perf_counter()
        row = int(idx.lookup(np.array([rng.uniform(s, n)]), np.array([rng.uniform(w, e)]))[0])
        if row < 0:
            continue
        similar_across(
            ds.vectors[row], {k: (cat.get(k).codes, cat.get(k).vectors) for k in others}, k=5 * len(others), per_dataset=5
        )
        clicks.append(time.perf_counter() - t)
    clicks = np.array(clicks) * 1000

    t = time.perf_counter()
    cat.labels(key, 7)
    recluster = time.perf_counter() - t

    print(f"| dataset | {key}: {ds.n_meshes:,} meshes |")
    print(f"| first read of its GeoJSON (baseline) vs cached read | {first_read:.2f} s vs {cached_read * 1000:.0f} ms |")
    print(f"| server time to first map paint (cached read, index, legend, {len(first)} tiles) | {first_paint:.2f} s |")
    print(
        f"| tile render + PNG, zoom 11-16, {len(times)} tiles, cold | median {np.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms |"
    )
    print(
        f"| click -> mesh -> 5 most similar in each of {len(others)} datasets ({n_all:,} meshes) | median {np.median(clicks):.0f} ms, p95 {np.percentile(clicks, 95):.0f} ms |"
    )
    print(f"| re-clustering at k = 7 (k-means + OpenUAS order) | {recluster:.2f} s |")


if __name__ == "__main__":
    main()
