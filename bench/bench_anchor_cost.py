"""What anchoring costs in structure: free vs anchored embeddings against the demo's district truth.

    python -m bench.bench_anchor_cost                 # builds two small demo releases in a temp folder
    python -m bench.bench_anchor_cost --work DIR      # keeps (and reuses) them under DIR

The anchor set comes from Tokyo, Osaka and Nagoya 2019 (a small demo build); Sapporo and Fukuoka
are **held out** (their stays simulated by a second build, never seen by the anchors). Every city
is trained on the same counts with the same seeds (``--seeds``), free and anchored to that set. For each,
k-means (k = the number of district types, 4 restarts, seeded) is scored by the adjusted Rand index
against the true district of each mesh, in three geometries:

- ``embedding``: the raw 8-d embeddings (Euclidean), how the issue measured the gap;
- ``whitened``: the embeddings standardised per dimension (the shared space's scale removed);
- ``pattern``: ``sqrt(softmax(e W^T))``, each mesh's predicted stay distribution under the
  Hellinger geometry: what the app's joint clusters use.

Prints a Markdown table (ARI free / anchored per city and geometry, and ApproximationLoss).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ANCHOR_CITIES = ("tokyo_2021_04", "osaka_2021_04", "nagoya_2019_04")
HELD_OUT = ("sapporo_2021_04", "fukuoka_2021_04")
GEOMETRIES = ("embedding", "whitened", "pattern")


def _counts(stays_file: Path):
    from core.mobility.stays import stays_from_frame

    return stays_from_frame(pd.read_parquet(stays_file), stays_file.name).to_counts()


def _geometry(vectors: np.ndarray, decoder: np.ndarray, kind: str) -> np.ndarray:
    from core.area2vec.model import predict_distributions

    if kind == "embedding":
        return vectors.astype(np.float64)
    if kind == "whitened":
        v = vectors.astype(np.float64)
        return (v - v.mean(axis=0)) / np.maximum(v.std(axis=0), 1e-12)
    return np.sqrt(predict_distributions(vectors, decoder))


def _ari(points: np.ndarray, truth: np.ndarray, k: int, seed: int = 0) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    labels = KMeans(k, n_init=4, random_state=seed).fit_predict(points)
    return float(adjusted_rand_score(truth, labels))


def build(work: Path) -> tuple[Path, Path]:
    """The anchor build (three cities) and the held-out build (two cities), reused when present."""
    from core.simulation.demo import build_demo

    a, b = work / "anchored", work / "heldout"
    for folder, only in ((a, ANCHOR_CITIES), (b, HELD_OUT)):
        if not (folder / "demo" / "truth" / "summary.json").exists():
            t0 = time.perf_counter()
            build_demo(folder, scale="small", only=only)
            print(f"built {folder} ({', '.join(only)}) in {time.perf_counter() - t0:.0f} s", flush=True)
    return a, b


def measure(work: Path, seeds: int = 1) -> list[dict]:
    from core.area2vec.anchors import read_anchor_set
    from core.area2vec.embeddings import train_embeddings
    from core.area2vec.trainer import TrainConfig
    from core.release.layout import ANCHOR_DIR

    a, b = build(work)
    anchors = read_anchor_set(a / "demo" / ANCHOR_DIR)
    rows = []
    for n, name in enumerate(ANCHOR_CITIES + HELD_OUT):
        root = (a if name in ANCHOR_CITIES else b) / "demo"
        counts = _counts(root / "stays" / f"{name}.parquet")
        truth = pd.read_parquet(root / "truth" / "meshes.parquet")
        t = truth[truth["dataset"] == name].set_index("code").reindex(counts.keys)["district"].to_numpy()
        known = t != "unknown"
        k = len(np.unique(t[known]))
        row: dict = {"dataset": name, "held_out": name in HELD_OUT, "meshes": int(known.sum()), "k": k}
        for mode, anchor_set in (("free", None), ("anchored", anchors)):
            runs: dict[str, list[float]] = {}
            for seed in range(seeds):
                emb = train_embeddings(counts, anchor_set, TrainConfig(seed=100 * seed + n))
                runs.setdefault("loss", []).append(emb.metrics["approximation_loss"])
                for g in GEOMETRIES:
                    pts = _geometry(emb.vectors, emb.decoder, g)[known]
                    runs.setdefault(g, []).append(_ari(pts, t[known], k, seed=seed))
            row[f"loss_{mode}"] = float(np.mean(runs["loss"]))
            for g in GEOMETRIES:
                row[f"{g}_{mode}"] = float(np.mean(runs[g]))
                row[f"{g}_{mode}_sd"] = float(np.std(runs[g]))
        rows.append(row)
        print(
            f"{name}: " + ", ".join(f"{g} {row[f'{g}_free']:.3f}/{row[f'{g}_anchored']:.3f}" for g in GEOMETRIES),
            flush=True,
        )
    return rows


def table(rows: list[dict]) -> str:
    head = "| dataset | meshes | " + " | ".join(f"{g}: free | {g}: anchored" for g in GEOMETRIES)
    head += " | ApproximationLoss free / anchored |"
    lines = [head, "|" + "---|" * (2 + 2 * len(GEOMETRIES) + 1)]
    for r in rows:
        name = r["dataset"] + (" (held out)" if r["held_out"] else "")
        cells = " | ".join(
            f"{r[f'{g}_free']:.3f} ± {r[f'{g}_free_sd']:.3f} | {r[f'{g}_anchored']:.3f} ± {r[f'{g}_anchored_sd']:.3f}"
            for g in GEOMETRIES
        )
        lines.append(f"| {name} | {r['meshes']:,} | {cells} | {r['loss_free']:.4f} / {r['loss_anchored']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", help="folder for the two demo builds (reused when present); default: a temp folder")
    ap.add_argument("--seeds", type=int, default=1, help="trainings per city and mode (ARI: mean ± sd over them)")
    args = ap.parse_args()
    from core.threads import torch_threads

    torch_threads()
    if args.work:
        rows = measure(Path(args.work), args.seeds)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure(Path(tmp), args.seeds)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
