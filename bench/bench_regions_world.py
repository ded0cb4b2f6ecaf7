"""Cross-city transfer on our own kind of data: the demo world's people -> 250 m mesh graphs -> CoRE.

    python -m bench.bench_regions_world [--source sendai] [--target hiroshima] [--seeds 2] [--epochs 300]

Simulates one month of stays of two cities' people (``core.simulation.world``), builds each city's
region graph from consecutive stays of the same person (``graph_from_stays``, 250 m meshes), takes
the residents and the workers per mesh from the simulation's truth as labels, and scores the
transfer of each method (incl. Area2Vec with an anchor set built from both cities' stay counts,
``anchor_set_from_graphs``) beside the ``mean`` and ``area`` baselines (all 250 m meshes have nearly
the same area, so here the area baseline cannot lean on region size).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from core.area2vec.trainer import TrainConfig
from core.geo.meshcode import cells_to_code
from core.regions.config import CoreConfig
from core.regions.evaluate import evaluate_embeddings
from core.regions.graph import RegionGraph, graph_from_stays
from core.regions.methods import affine_map, anchor_set_from_graphs, fit_method, procrustes_map, rank_anchors
from core.regions.model import CoRE
from core.simulation.world import CITIES, Period, build_grid, make_population, simulate_month
from core.threads import torch_threads

LABELS = ("residents", "workers")


def city_graph(name: str, seed: int, residents_per_cell: float) -> tuple[RegionGraph, pd.DataFrame]:
    """Simulate a city's month and build its 250 m graph with residents / workers per mesh."""
    grid = build_grid(CITIES[name], seed)
    people = make_population(grid, residents_per_cell, seed)
    stays = simulate_month(grid, people, Period(2019, 4), seed)
    graph = graph_from_stays(stays, mesh_size=250, name=name)
    pos = pd.Series(np.arange(graph.n), index=graph.region_ids)
    for label, cells in (("residents", people.home), ("workers", people.work[people.work >= 0])):
        codes = cells_to_code(grid.i[cells], grid.j[cells], 250)
        at = pos.reindex(codes).to_numpy()
        graph.labels[label] = np.bincount(at[~np.isnan(at)].astype(np.int64), minlength=graph.n).astype(np.float64)
    print(f"{name}: {len(people)} people, {len(stays)} stays, {graph.n} meshes, {len(graph.weight)} flows")
    return graph, stays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="sendai", choices=sorted(CITIES))
    ap.add_argument("--target", default="hiroshima", choices=sorted(CITIES))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=CoreConfig.epochs)
    ap.add_argument("--residents-per-cell", type=float, default=2.0)
    args = ap.parse_args()
    torch_threads()
    (src, _), (tgt, _) = (
        city_graph(args.source, 1, args.residents_per_cell),
        city_graph(args.target, 2, args.residents_per_cell),
    )
    runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        m: [] for m in ("core", "individual", "procrustes", "affine", "area2vec")
    }
    for s in range(args.seeds):
        cfg = CoreConfig(epochs=args.epochs, seed=s)
        for method, config in (("core", cfg), ("individual", replace(cfg, alpha=0.0, beta=0.0))):
            start = time.perf_counter()
            z = CoRE(config).fit([src, tgt]).embeddings_
            print(f"seed {s} {method}: {time.perf_counter() - start:.0f} s", flush=True)
            runs[method].append((z[0], z[1]))
        z_s, z_t = runs["individual"][-1]
        i_s, i_t = rank_anchors(src, tgt)
        runs["procrustes"].append((z_s, procrustes_map(z_s, z_t, i_s, i_t)))
        runs["affine"].append((z_s, affine_map(z_s, z_t, i_s, i_t)))
        start = time.perf_counter()
        anchors = anchor_set_from_graphs([src, tgt], n_anchors=64, records_per_anchor=2000, seed=s)
        a2v = fit_method([src, tgt], "area2vec", cfg, anchors=anchors, area2vec=TrainConfig())
        print(f"seed {s} area2vec (anchored, {a2v[0].shape[1]}-d): {time.perf_counter() - start:.0f} s", flush=True)
        runs["area2vec"].append((a2v[0], a2v[1]))
    rows = []
    for method, pairs in runs.items():
        rows += evaluate_embeddings(src, tgt, pairs, method, LABELS, baselines=(method == "core"))
    print(f"\n{args.source} -> {args.target} (MAE / Spearman, mean over {args.seeds} seeds)")
    print("| method | scale | " + " | ".join(LABELS) + " |")
    print("|---|---|" + "---|" * len(LABELS))
    for scale in ("sum", "log"):
        for method in ("core", "individual", "procrustes", "affine", "area2vec", "mean", "area"):
            cells = []
            for label in LABELS:
                r = next(x for x in rows if x["method"] == method and x["label"] == label and x["scale"] == scale)
                sp = "-" if np.isnan(r["spearman"]) else f"{r['spearman']:.2f}"
                cells.append(f"{r['mae']:.3g} / {sp}")
            print(f"| {method} | {scale} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
