"""One shared space, measured: per-dataset vs joint clusters on the demo's truth, the change flag, timings.

    python -m bench.bench_joint --data data            # the demo release under data/demo
    python -m bench.bench_joint --data data --timing   # plus joint clustering of 1.42 M meshes
    python -m bench.bench_joint --data DIR --changes   # only the changed-mesh table (a quick demo too)

Prints (1) Tokyo's cluster -> district map applied to other cities at k = 10, with each city's
own best map beside it, for clusters fitted per dataset (the old way) and jointly (now); (2) the
pattern-change flag on Nagoya 2019 -> every other Nagoya period against the designed changes, the
threshold decided from the data beside the previous rule and a fixed 0.04 (``--changes``: only
this, on any demo scale); (3) the name each district type's
majority cluster gets; (4) timings of a joint clustering at a new k of 1.42 M meshes and of
assigning a new 200 k-mesh dataset to stored centres.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.clustering import cluster_areas
from core.analysis.diff import diff_datasets
from core.analysis.joint import SpacePart, fit_joint
from core.release.layout import discover, read_dataset

CITIES = ("tokyo_2021_04", "osaka_2021_04", "nagoya_2019_04", "sapporo_2021_04", "fukuoka_2021_04")  # Tokyo first


def majority_map(labels: np.ndarray, types: np.ndarray) -> dict:
    return {c: pd.Series(types[labels == c]).mode().iloc[0] for c in np.unique(labels)}


def accuracy(mapping: dict, labels: np.ndarray, types: np.ndarray) -> float:
    return float(np.mean(np.array([mapping.get(c, "?") for c in labels], dtype=object) == types))


def transfer_table(data: Path, k: int = 10) -> None:
    refs = {r.name: r for r in discover(data) if r.release == "demo"}
    truth = pd.read_parquet(data / "demo" / "truth" / "meshes.parquet")
    sets = {}
    for name in CITIES:
        ds = read_dataset(refs[name])
        own = ~ds.complemented
        t = truth[truth["dataset"] == name].set_index("code").reindex(ds.codes[own])["district"].to_numpy()
        sets[name] = (ds, own, t)
    per = {n: cluster_areas(ds.vectors[own], ds.decoder, k) for n, (ds, own, _) in sets.items()}
    parts = {n: SpacePart(ds.vectors, ds.decoder, ds.complemented) for n, (ds, _, _) in sets.items()}
    jc = fit_joint(parts, k, space="demo")
    joint = {n: jc.assign(ds.vectors[own], ds.decoder) for n, (ds, own, _) in sets.items()}
    print(f"\n(1) Tokyo's cluster meanings applied to other cities, k = {k} (accuracy of the district map)")
    print("| dataset | per-dataset: Tokyo's map | per-dataset: own map | joint: Tokyo's map | joint: own map |")
    print("|---|---|---|---|---|")
    t_tokyo = sets["tokyo_2021_04"][2]
    m_per, m_joint = majority_map(per["tokyo_2021_04"], t_tokyo), majority_map(joint["tokyo_2021_04"], t_tokyo)
    for n in CITIES[1:]:
        t = sets[n][2]
        row = (
            accuracy(m_per, per[n], t),
            accuracy(majority_map(per[n], t), per[n], t),
            accuracy(m_joint, joint[n], t),
            accuracy(majority_map(joint[n], t), joint[n], t),
        )
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    print(f"\n(3) Names (k = {k}, joint): the majority cluster of each district type in Tokyo")
    names = jc.display_names()
    lab = joint["tokyo_2021_04"]
    for d in sorted(pd.unique(t_tokyo)):
        c = int(np.bincount(lab[t_tokyo == d], minlength=k).argmax())
        print(f"| {d} | {c}: {names[c]} |")


def previous_threshold(pattern_change: np.ndarray, separation: float = 3.0, seed: int = 0) -> float:
    """The rule before December 2026 (the baseline): 3 components on the log scale, the heaviest = the noise."""
    from sklearn.mixture import GaussianMixture

    x = np.asarray(pattern_change, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 30:
        return float("inf")
    lx = np.log(x)[:, None]
    gm = GaussianMixture(n_components=3, random_state=seed, n_init=3).fit(lx)
    means = gm.means_.ravel()
    top, bulk = int(np.argmax(means)), int(np.argmax(gm.weights_))
    if top == bulk or np.exp(means[top] - means[bulk]) < separation:
        return float("inf")
    changed = (gm.predict_proba(lx)[:, top] > 0.5) & (lx.ravel() > means[bulk])
    return float(np.exp(lx[changed].min())) if changed.any() else float("inf")


def change_table(data: Path) -> None:
    refs = {r.name: r for r in discover(data) if r.release == "demo"}
    truth = pd.read_parquet(data / "demo" / "truth" / "meshes.parquet")
    nagoya = {n: read_dataset(r) for n, r in refs.items() if n.startswith("nagoya")}
    base = nagoya["nagoya_2019_04"]
    jc = fit_joint({n: SpacePart(d.vectors, d.decoder, d.complemented) for n, d in nagoya.items()}, 10, space="demo")
    labels = {n: jc.assign(d.vectors, d.decoder) for n, d in nagoya.items()}
    print("\n(2) Changed meshes: the threshold from the data (now) vs the previous rule and a fixed 0.04")
    print("| pair | compared | designed changes | rule | threshold | flagged | precision | recall | stayed in cluster |")
    print("|---|---|---|---|---|---|---|---|---|")
    for other in sorted(n for n in nagoya if n != "nagoya_2019_04"):
        b = nagoya[other]
        t = truth[truth["dataset"] == other]
        designed = pd.Series(t["changed"].to_numpy(bool), index=t["code"].to_numpy() * 1000 + t["mesh_size"].to_numpy())
        d = diff_datasets(base, b, k=10, labels_a=labels["nagoya_2019_04"], labels_b=labels[other])
        y = designed.reindex(d.codes * 1000 + d.sizes).fillna(False).to_numpy(bool)
        rules = (("from the data (now)", d.threshold), ("before", previous_threshold(d.pattern_change)), ("fixed 0.04", 0.04))
        for rule, thr in rules:
            flagged = d.pattern_change > thr
            tp = int((flagged & y).sum())
            prec = f"{tp / flagged.sum():.2f}" if flagged.any() else "-"
            rec = f"{tp / y.sum():.2f}" if y.any() else "-"
            print(
                f"| 2019-04 -> {other[7:].replace('_', '-')} | {len(y):,} | {int(y.sum()):,} | {rule} | {thr:.4f} | "
                f"{int(flagged.sum()):,} | {prec} | {rec} | {d.stayed:.0%} |"
            )


def timing(n_meshes: int = 1_418_827, n_new: int = 200_000, k: int = 13) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.0, size=(40, 8))
    vec = (centres[rng.integers(0, 40, n_meshes)] + rng.normal(scale=0.4, size=(n_meshes, 8))).astype(np.float32)
    dec = rng.normal(size=(168, 8)).astype(np.float32)
    parts = {f"d{i}": SpacePart(v, dec) for i, v in enumerate(np.array_split(vec, 23))}  # 23 datasets, as released
    t0 = time.perf_counter()
    jc = fit_joint(parts, k, space="bench")
    t_fit = time.perf_counter() - t0
    new = (centres[rng.integers(0, 40, n_new)] + rng.normal(scale=0.4, size=(n_new, 8))).astype(np.float32)
    t0 = time.perf_counter()
    jc.assign(new, dec)
    t_assign = time.perf_counter() - t0
    print(f"\n(4) joint clustering of {n_meshes:,} meshes in 23 datasets at k = {k}: {t_fit:.1f} s (goal < 10 s)")
    print(f"    assigning a new {n_new:,}-mesh dataset to the stored centres: {t_assign * 1000:.0f} ms (goal < 500 ms)")
    print(f"    (baseline: k-means over all {n_meshes:,} meshes at once, n_init=1:", end=" ", flush=True)
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    KMeans(k, n_init=1, random_state=0).fit(vec)
    print(f"{time.perf_counter() - t0:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data", help="data folder holding the demo release")
    ap.add_argument("--timing", action="store_true", help="also time joint clustering at real-release size")
    ap.add_argument("--changes", action="store_true", help="only the changed-mesh table (any demo scale, quick included)")
    args = ap.parse_args()
    data = Path(args.data)
    if not args.changes:
        transfer_table(data)
    change_table(data)
    if args.timing:
        timing()


if __name__ == "__main__":
    main()
