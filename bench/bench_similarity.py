"""Similar areas by stay pattern (Hellinger) vs by embedding (Euclidean): quality on the demo's truth, and speed.

    python -m bench.bench_similarity --data DIR            # a demo release under DIR/demo (e.g. --scale small)
    python -m bench.bench_similarity --timing              # time per query only (synthetic, no demo needed)
    python -m bench.bench_similarity --data DIR --click    # plus the app's search per click over the space

Quality: for query meshes of each district type in Tokyo (up to ``--queries`` per type, drawn with
a fixed seed), the share of the top-N similar meshes in each other dataset of the space (and within
Tokyo, the query left out) that have the query's true district type: precision@10 and precision at
the top 1 %. Both distances rank the same meshes (those with an embedding of their own); embedding
distance, what the lists used before, is the baseline of the same run; "chance" is the share of
the type among the target's meshes. Timing: one query over a synthetic dataset of ``--meshes``
meshes (median and p95 of 50 queries): Euclidean over the 8-d embeddings vs Hellinger over the
precomputed float32 sqrt-patterns (168 per mesh), each with the top-k; plus the one-off precompute.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.similarity import distances, hellinger, sqrt_patterns, top_k
from core.release.layout import discover, read_dataset

QUERY = "tokyo_2021_04"
SPACES = ("embedding", "pattern")


def _load(data: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per dataset: own meshes' embeddings, sqrt-patterns and true district."""
    truth = pd.read_parquet(data / "demo" / "truth" / "meshes.parquet")
    out = {}
    for ref in sorted(discover(data), key=lambda r: r.name):
        if ref.release != "demo":
            continue
        ds = read_dataset(ref)
        own = ~ds.complemented if ds.complemented is not None else np.ones(ds.n_meshes, bool)
        t = truth[truth["dataset"] == ref.name].set_index("code")["district"].reindex(ds.codes[own]).fillna("unknown")
        vec = ds.vectors[own].astype(np.float32)
        out[ref.name] = (vec, sqrt_patterns(vec, ds.decoder), t.to_numpy(dtype=object))
    return out


def _dist_matrix(q: np.ndarray, x: np.ndarray, space: str) -> np.ndarray:
    """Distances ``(queries, meshes)``: Euclidean, or Hellinger of sqrt-patterns."""
    if space == "pattern":
        return np.sqrt(np.clip(1.0 - q @ x.T, 0.0, 1.0))
    sq = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * q @ x.T
    return np.sqrt(np.maximum(sq, 0.0))


def _precision(d: np.ndarray, types: np.ndarray, want: np.ndarray, n: int) -> np.ndarray:
    """Per query row of ``d``: share of its ``n`` nearest whose type is the query's."""
    idx = np.argpartition(d, n - 1, axis=1)[:, :n]
    return (types[idx] == want[:, None]).mean(axis=1)


def quality(data: Path, queries: int, n: int, seed: int) -> None:
    sets = _load(data)
    tvec, tpat, ttype = sets[QUERY]
    rng = np.random.default_rng(seed)
    kinds = [k for k in sorted(set(ttype)) if k != "unknown"]
    pick = np.concatenate(
        [rng.choice(np.flatnonzero(ttype == k), min(queries, int((ttype == k).sum())), replace=False) for k in kinds]
    )
    want = ttype[pick]
    q = {"embedding": tvec[pick], "pattern": tpat[pick]}
    print(f"queries: {len(pick)} Tokyo meshes ({', '.join(f'{k} {int((want == k).sum())}' for k in kinds)}), seed {seed}")
    rows = []
    per_type: dict[tuple[str, str, str], list[float]] = {}
    for name, (vec, pat, types) in sets.items():
        x = {"embedding": vec, "pattern": pat}
        one = max(1, int(np.ceil(len(types) * 0.01)))
        chance = float(np.mean([np.mean(types == w) for w in want]))
        res = {}
        held = np.array([(types == w).sum() >= 10 for w in want])  # queries of a type this dataset holds (>= 10 meshes)
        for space in SPACES:
            d = _dist_matrix(q[space], x[space], space)
            if name == QUERY:  # within Tokyo: the query itself left out
                d[np.arange(len(pick)), pick] = np.inf
            for label, m in ((f"p@{n}", n), ("p@1%", one)):
                p = _precision(d, types, want, m)
                res[(space, label)] = float(p.mean())
                res[(space, label + " held")] = float(p[held].mean())
                for k in kinds:
                    per_type.setdefault((space, label, k), []).append(float(p[want == k].mean()))
        rows.append((name, len(types), one, chance, res))
    print(
        f"\n| dataset | meshes | top 1 % = | chance | p@{n} embedding | p@{n} **pattern** | p@1% embedding | p@1% **pattern** |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, size, one, chance, res in rows:
        tag = " (within, query left out)" if name == QUERY else ""
        vals = [res[("embedding", f"p@{n}")], res[("pattern", f"p@{n}")], res[("embedding", "p@1%")], res[("pattern", "p@1%")]]
        print(f"| {name}{tag} | {size:,} | {one:,} | {chance:.3f} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    others = [r for r in rows if r[0] != QUERY]
    mean = {key: float(np.mean([r[4][key] for r in others])) for key in others[0][4]}
    print(
        f"| mean of the {len(others)} other datasets | | | {np.mean([r[3] for r in others]):.3f} | "
        + " | ".join(f"{mean[(s, lab)]:.3f}" for lab in (f"p@{n}", "p@1%") for s in SPACES)
        + " |"
    )
    print(
        "| mean, queries of a type the target holds (>= 10 meshes) | | | | "
        + " | ".join(f"{mean[(s, lab + ' held')]:.3f}" for lab in (f"p@{n}", "p@1%") for s in SPACES)
        + " |"
    )
    worse = [r[0] for r in others if r[4][("pattern", f"p@{n}")] < r[4][("embedding", f"p@{n}")]]
    print(f"datasets where pattern p@{n} is below embedding: {len(worse)} of {len(others)} {worse}")
    print(f"\nper Tokyo district type, mean over all {len(rows)} datasets (Tokyo included):")
    print(f"| district | p@{n} embedding | p@{n} pattern | p@1% embedding | p@1% pattern |")
    print("|---|---|---|---|---|")
    for k in kinds:
        vals = [np.mean(per_type[(s, lab, k)]) for lab in (f"p@{n}", "p@1%") for s in SPACES]
        print(f"| {k} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")


def timing(meshes: int, repeats: int = 50, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(40, 8))
    vec = (centres[rng.integers(0, 40, meshes)] + rng.normal(scale=0.4, size=(meshes, 8))).astype(np.float32)
    dec = rng.normal(size=(168, 8)).astype(np.float32)
    t0 = time.perf_counter()
    pat = sqrt_patterns(vec, dec)
    pre = time.perf_counter() - t0
    rows = rng.integers(0, meshes, repeats)

    def run(f) -> np.ndarray:
        out = []
        for r in rows:
            t = time.perf_counter()
            top_k(f(r), 10, exclude=int(r))
            out.append(time.perf_counter() - t)
        return np.array(out) * 1000

    emb = run(lambda r: distances(vec, vec[r]))
    hel = run(lambda r: hellinger(pat, pat[r]))
    direct = run(lambda r: np.sqrt(0.5 * ((pat - pat[r]) ** 2).sum(axis=1)))
    print(f"\ntime per query, {meshes:,} meshes, distances + top 10 ({repeats} queries): median / p95 ms")
    print(f"| embedding, Euclidean over 8-d (baseline) | {np.median(emb):.1f} / {np.percentile(emb, 95):.1f} |")
    print(f"| pattern, Hellinger = sqrt(1 - P q) over 168 float32 | {np.median(hel):.1f} / {np.percentile(hel, 95):.1f} |")
    print(f"| pattern, Hellinger from (P - q)^2 (for comparison) | {np.median(direct):.1f} / {np.percentile(direct, 95):.1f} |")
    print(
        f"sqrt-patterns precomputed once per dataset: {pre:.2f} s, {pat.nbytes / 2**20:.0f} MiB (embeddings {vec.nbytes / 2**20:.1f} MiB)"
    )


def click(data: Path, repeats: int = 20, seed: int = 0) -> None:
    """The app's search per click (warm caches): distances from a Tokyo mesh to every mesh of the 22 other
    datasets of the space, then the 3 nearest in each, as the map view's list does."""
    from core.analysis.similarity import similar_across
    from dashboard.catalog import Catalog

    cat = Catalog(data)
    key = f"demo/{QUERY}"
    ds = cat.get(key)
    rows = np.random.default_rng(seed).choice(np.flatnonzero(~ds.complemented), repeats, replace=False)
    total = sum(cat.get(o).n_meshes for o in cat.comparable(key))
    print(f"\nclick on a Tokyo mesh -> distances to {total:,} meshes of {len(cat.comparable(key))} datasets + 3 nearest in each")
    for space in SPACES:
        t0 = time.perf_counter()
        for o in (key, *cat.comparable(key)):
            cat.points(o, space)
        pre = time.perf_counter() - t0
        times = []
        for r in rows:
            t = time.perf_counter()
            near = cat.distances_across(key, int(r), space)
            sets = {o: (cat.get(o).codes, cat.get(o).vectors) for o in near}
            similar_across(cat.points(key, space)[r], sets, k=10, per_dataset=3, dists=near, space=space)
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1000
        print(
            f"| {space} | median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms | points of every dataset once: {pre:.2f} s |"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="data folder holding a demo release (demo/)")
    ap.add_argument("--queries", type=int, default=100, help="query meshes per district type")
    ap.add_argument("--top", type=int, default=10, help="N of precision@N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing", action="store_true", help="time per query on a synthetic dataset")
    ap.add_argument("--meshes", type=int, default=200_000, help="meshes of the synthetic dataset")
    ap.add_argument("--click", action="store_true", help="with --data: time the app's search per click over the whole space")
    args = ap.parse_args(argv)
    if args.data is not None:
        quality(args.data, args.queries, args.top, args.seed)
    if args.data is not None and args.click:
        click(args.data)
    if args.timing:
        timing(args.meshes)
    if args.data is None and not args.timing:
        ap.error("give --data DIR and/or --timing")


if __name__ == "__main__":
    main()
