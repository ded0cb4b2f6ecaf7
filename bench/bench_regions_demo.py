"""Cross-city label transfer between two datasets of a release with stays (the demo): Area2Vec beside CoRE's family.

    python -m bench.bench_regions_demo --data DATA/demo [--source tokyo_2021_04] [--target osaka_2021_04]
        [--regions meshes|clusters] [--mesh-size 1000] [--k 10] [--seeds 3] [--epochs 300]
        [--methods area2vec,individual,procrustes,affine,core]

Each city is ``DATA/stays/<dataset>.parquet`` as a region graph (:func:`core.regions.sources.load_city`:
JIS meshes or the release's joint clusters; labels ``stays`` and, from the demo's truth, ``residents``
and ``workers``). ``area2vec`` is anchored to the release's anchor set (``DATA/anchor_data``);
``individual`` is trained once per seed and ``procrustes`` / ``affine`` map those same embeddings.
Prints one Markdown table per scale (MAE / Spearman, mean over seeds) with the ``mean`` and ``area``
baselines, and the training seconds per method and seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.regions.config import CoreConfig
from core.regions.evaluate import evaluate_embeddings
from core.regions.methods import affine_map, fit_method, procrustes_map, rank_anchors
from core.regions.sources import load_city, release_anchor_dir
from core.threads import torch_threads

ORDER = ("area2vec", "core", "individual", "procrustes", "affine", "mean", "area")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the release folder (e.g. data/demo)")
    ap.add_argument("--source", default="tokyo_2021_04")
    ap.add_argument("--target", default="osaka_2021_04")
    ap.add_argument("--regions", default="meshes", choices=("meshes", "clusters"))
    ap.add_argument("--mesh-size", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=CoreConfig.epochs)
    ap.add_argument("--methods", default="area2vec,individual,procrustes,affine,core")
    args = ap.parse_args()
    torch_threads()
    from core.area2vec.anchors import read_anchor_set

    root = Path(args.data)
    paths = [root / "stays" / f"{name}.parquet" for name in (args.source, args.target)]
    src, tgt = (load_city(p, mesh_size=args.mesh_size, regions=args.regions, k=args.k) for p in paths)
    labels = [x for x in ("stays", "residents", "workers") if x in src.labels and x in tgt.labels]
    print(f"{src.name}: {src.n} regions, {len(src.weight)} flows; {tgt.name}: {tgt.n} regions, {len(tgt.weight)} flows")
    methods = args.methods.split(",")
    anchors = read_anchor_set(release_anchor_dir(paths[0]) or root / "anchor_data") if "area2vec" in methods else None
    runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    for s in range(args.seeds):
        cfg = CoreConfig(epochs=args.epochs, seed=s)
        for method in methods:
            if method in ("procrustes", "affine"):
                continue
            start = time.perf_counter()
            z = fit_method([src, tgt], method, cfg, anchors=anchors)
            seconds[method].append(time.perf_counter() - start)
            runs[method].append((z[0], z[1]))
            print(f"seed {s} {method}: {seconds[method][-1]:.1f} s", flush=True)
            if method == "individual":
                i_s, i_t = rank_anchors(src, tgt)
                for name, mapper in (("procrustes", procrustes_map), ("affine", affine_map)):
                    if name in runs:
                        runs[name].append((z[0], mapper(z[0], z[1], i_s, i_t)))
    rows = []
    for method, pairs in runs.items():
        if pairs:
            rows += evaluate_embeddings(src, tgt, pairs, method, labels, baselines=(method == methods[0]))
    kind = f"{args.mesh_size} m meshes" if args.regions == "meshes" else f"joint clusters, k = {args.k}"
    for scale in ("sum", "density", "log"):
        print(f"\n{src.name} -> {tgt.name}, {kind}, {scale} (MAE / Spearman, mean over {args.seeds} seeds)")
        print("| method | " + " | ".join(labels) + " |")
        print("|---|" + "---|" * len(labels))
        for method in (m for m in ORDER if any(r["method"] == m for r in rows)):
            cells = []
            for label in labels:
                r = next(x for x in rows if x["method"] == method and x["label"] == label and x["scale"] == scale)
                sp = "–" if np.isnan(r["spearman"]) else f"{r['spearman']:.2f}"
                sd = f" ± {r['mae_sd']:.3g}" if r["runs"] > 1 else ""
                cells.append(f"{r['mae']:.4g}{sd} / {sp}")
            print(f"| {method} | " + " | ".join(cells) + " |")
    print("\ntraining seconds per seed: " + ", ".join(f"{m} {np.mean(v):.1f}" for m, v in seconds.items() if v))


if __name__ == "__main__":
    main()
