"""Core benchmark: Tokyo-scale ingest and anchored training, and our trainer vs the per-record baseline.

    python -m bench.bench_core                      # Tokyo scale: 200 k meshes, 40 M stays
    python -m bench.bench_core --meshes 20000 --stays 4000000   # a quick run

Generated inputs (the Parquet stay table, the anchor set) are cached in bench/out/ (git-ignored);
their build times are printed but not counted. Prints a Markdown table and writes bench/out/core.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.area2vec.anchors import build_anchor_set, read_anchor_set
from core.area2vec.baseline import train_per_record
from core.area2vec.embeddings import train_embeddings
from core.area2vec.metrics import approximation_loss
from core.area2vec.trainer import TrainConfig
from core.mobility.stays import read_stays, stays_from_frame
from core.simulation.synthetic import synthetic_city

OUT = Path(__file__).resolve().parent / "out"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_table(meshes: int, stays: int, seed: int) -> Path:
    path = OUT / f"stays_{meshes}_{stays}_{seed}.parquet"
    if not path.exists():
        t = time.perf_counter()
        city = synthetic_city(meshes, stays / meshes, seed=seed)
        tmp = path.with_suffix(".tmp")
        city.stays.to_parquet(tmp, index=False)
        tmp.rename(path)
        log(f"generated {path.name}: {len(city.stays):,} stays in {time.perf_counter() - t:.1f} s (not counted)")
    return path


def make_anchors(n: int, records: int) -> Path:
    folder = OUT / f"anchors_{n}_{records}"
    if not (folder / "anchor_embeddings.pth").exists():
        t = time.perf_counter()
        cities = [stays_from_frame(synthetic_city(12_000, 150, seed=100 + s).stays) for s in range(4)]
        build_anchor_set(cities, n_anchors=n, records_per_anchor=records, seed=0).save(folder)
        log(f"built anchor set {folder.name} in {time.perf_counter() - t:.1f} s (not counted)")
    return folder


def python_loop_tokenise(frame) -> np.ndarray:
    """Per-record Python tokenising, as the public code does it (the ingest baseline)."""
    bounds = (30, 60, 120, 240, 360, 720)
    out = []
    for st, dow, at, hol in zip(frame["stay_time"], frame["day_of_week"], frame["arrival_time"], frame["is_holiday"]):
        day = 1 if hol or dow in ("Saturday", "Sunday") else 0
        b = int(at.split(":")[0]) // 2
        c = next((i for i, x in enumerate(bounds) if st <= x), 6)
        out.append(84 * day + 7 * b + c)
    return np.asarray(out)


def end_to_end(table: Path, anchors_dir: Path) -> dict:
    t0 = time.perf_counter()
    recs = read_stays(table)
    t1 = time.perf_counter()
    counts = recs.to_counts()
    t2 = time.perf_counter()
    anchors = read_anchor_set(anchors_dir)
    t3 = time.perf_counter()
    emb = train_embeddings(counts, anchors, TrainConfig(seed=0))
    t4 = time.perf_counter()
    emb.save(OUT / "run")
    t5 = time.perf_counter()
    n = len(recs)
    return {
        "stays": n,
        "meshes": counts.n_areas,
        "read_validate_s": t1 - t0,
        "tokenise_aggregate_s": t2 - t1,
        "ingest_stays_per_s": n / (t2 - t0),
        "read_anchors_s": t3 - t2,
        "train_s": t4 - t3,
        "write_s": t5 - t4,
        "total_s": t5 - t0,
        "approximation_loss": emb.metrics["approximation_loss"],
        "epochs": emb.metrics["epochs"],
    }


def versus_baseline(meshes: int, stays: int, epochs: int) -> dict:
    table = make_table(meshes, stays, seed=7)
    recs = read_stays(table)
    counts = recs.to_counts()
    dense = counts.dense()
    keys, index = recs.area_index()
    import pandas as pd

    frame = pd.read_parquet(table)
    frame = {
        c: frame[c].astype(object if c in ("day_of_week", "arrival_time") else frame[c].dtype).tolist() for c in frame.columns
    }
    t = time.perf_counter()
    loop_tokens = python_loop_tokenise(frame)
    loop_s = time.perf_counter() - t
    assert np.array_equal(loop_tokens, recs.tokens()), "baseline tokeniser disagrees"
    t = time.perf_counter()
    read_stays(table).tokens()
    ours_tok_s = time.perf_counter() - t

    history = []
    train_per_record(
        index,
        recs.tokens(),
        len(keys),
        epochs=epochs,
        seed=0,
        on_epoch=lambda ep: history.append((ep.epoch, ep.seconds, approximation_loss(dense, ep.embeddings, ep.decoder))),
    )
    best_epoch, best_time, best_loss = min(history, key=lambda h: h[2])
    # Our time to reach the baseline's best: the shortest run (growing epoch budgets, each one
    # complete with its embedding and refine phases) whose ApproximationLoss is at least as good.
    ladder = []
    for budget in (5, 10, 20, 40, 80, 160, 800):
        t = time.perf_counter()
        run = train_embeddings(counts, None, TrainConfig(seed=0, max_epochs=budget))
        ladder.append((budget, time.perf_counter() - t, run.metrics["approximation_loss"]))
    reached = [r for r in ladder if r[2] <= best_loss]
    ours_loss, ours_s = ladder[-1][2], ladder[-1][1]
    return {
        "meshes": counts.n_areas,
        "stays": len(recs),
        "python_loop_tokenise_stays_per_s": len(recs) / loop_s,
        "ours_read_tokenise_stays_per_s": len(recs) / ours_tok_s,
        "baseline_epochs": epochs,
        "baseline_epoch_s": history[-1][1] / epochs,
        "baseline_best_loss": best_loss,
        "baseline_best_epoch": best_epoch,
        "baseline_time_to_best_s": best_time,
        "baseline_losses": [round(h[2], 5) for h in history],
        "ours_loss": ours_loss,
        "ours_total_s": ours_s,
        "ours_ladder": [{"max_epochs": b, "seconds": round(t, 3), "loss": round(loss, 5)} for b, t, loss in ladder],
        "ours_time_to_baseline_best_s": reached[0][1] if reached else None,
        "speedup_to_baseline_best": best_time / reached[0][1] if reached else None,
    }


def release_read(meshes: int) -> dict:
    """Write a dataset of ``meshes`` meshes in the OpenUAS layout; time the first and a cached read."""
    import shutil

    from core.geo.meshcode import latlon_to_code
    from core.release.layout import discover, read_dataset, write_dataset

    rng = np.random.default_rng(0)
    codes = np.unique(latlon_to_code(35.5 + rng.random(meshes * 2) * 0.5, 139.4 + rng.random(meshes * 2) * 0.6, 50))[:meshes]
    root = OUT / "release" / "bench"
    shutil.rmtree(OUT / "release", ignore_errors=True)
    t = time.perf_counter()
    vec = rng.normal(size=(len(codes), 8)).astype(np.float32)
    labels = {k: rng.integers(0, k, len(codes)) for k in (5, 10, 20)}
    write_dataset(root, "tokyo_2021_04", codes, np.full(len(codes), 50), vec, rng.normal(size=(168, 8)), labels)
    write_s = time.perf_counter() - t
    ref = discover(OUT / "release")[0]
    cache = OUT / "release" / ".cache"
    t = time.perf_counter()
    read_dataset(ref, cache_dir=cache)
    first = time.perf_counter() - t
    t = time.perf_counter()
    ds = read_dataset(ref, cache_dir=cache)
    cached = time.perf_counter() - t
    return {"meshes": ds.n_meshes, "write_s": write_s, "first_read_s": first, "cached_read_s": cached}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", type=int, default=200_000)
    ap.add_argument("--stays", type=int, default=40_000_000)
    ap.add_argument("--anchors", type=int, default=512)
    ap.add_argument("--anchor-records", type=int, default=20_000)
    ap.add_argument("--baseline-meshes", type=int, default=2000)
    ap.add_argument("--baseline-stays", type=int, default=400_000)
    ap.add_argument("--baseline-epochs", type=int, default=200, help="the public trainer's default is 200")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    import torch

    res: dict = {"torch_threads": torch.get_num_threads()}
    table = make_table(args.meshes, args.stays, seed=1)
    anchors_dir = make_anchors(args.anchors, args.anchor_records)
    log("end to end ...")
    res["end_to_end"] = end_to_end(table, anchors_dir)
    log("release read ...")
    res["release"] = release_read(args.meshes)
    if not args.skip_baseline:
        log("baseline ...")
        res["baseline"] = versus_baseline(args.baseline_meshes, args.baseline_stays, args.baseline_epochs)
    (OUT / "core.json").write_text(json.dumps(res, indent=2))
    e = res["end_to_end"]
    print(
        f"| Tokyo-scale end to end ({e['meshes']:,} meshes, {e['stays']:,} stays, anchored to {args.anchors}) | {e['total_s']:.1f} s |"
    )
    print(f"| - read + validate Parquet | {e['read_validate_s']:.1f} s |")
    print(f"| - tokenise + aggregate | {e['tokenise_aggregate_s']:.1f} s |")
    print(f"| - ingest rate | {e['ingest_stays_per_s'] / 1e6:.1f} M stays/s |")
    print(f"| - anchored training ({e['epochs']} decoder epochs) | {e['train_s']:.1f} s |")
    print(f"| - write embeddings.csv + model.pth | {e['write_s']:.1f} s |")
    print(f"| - ApproximationLoss | {e['approximation_loss']:.4f} |")
    r = res["release"]
    print(
        f"| OpenUAS-layout dataset of {r['meshes']:,} meshes: write / first read (GeoJSON) / cached read | {r['write_s']:.1f} s / {r['first_read_s']:.2f} s / {r['cached_read_s'] * 1000:.0f} ms |"
    )
    if "baseline" in res:
        b = res["baseline"]
        print(f"| Baseline table | {b['meshes']:,} meshes, {b['stays']:,} stays |")
        print(
            f"| Python-loop tokenise (baseline) vs ours (read+validate+tokenise) | {b['python_loop_tokenise_stays_per_s'] / 1e6:.2f} vs {b['ours_read_tokenise_stays_per_s'] / 1e6:.1f} M stays/s |"
        )
        print(
            f"| Per-record baseline: {b['baseline_epochs']} epochs | {b['baseline_epoch_s']:.2f} s/epoch, best ApproximationLoss {b['baseline_best_loss']:.4f} at epoch {b['baseline_best_epoch']} ({b['baseline_time_to_best_s']:.1f} s) |"
        )
        print(f"| Ours (free, to convergence) | {b['ours_total_s']:.2f} s, ApproximationLoss {b['ours_loss']:.4f} |")
        sp = b["speedup_to_baseline_best"]
        if sp:
            print(
                f"| Time to the baseline's best loss: baseline vs ours | {b['baseline_time_to_best_s']:.1f} s vs {b['ours_time_to_baseline_best_s']:.2f} s ({sp:.0f}x shorter) |"
            )
        else:
            print("| Time to the baseline's best loss | not reached |")


if __name__ == "__main__":
    main()
