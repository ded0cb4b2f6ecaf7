"""Walkers (RAW) on the demo and on a generated HuMob file: the README table, baselines in the same run.

Run: ``python -m bench.bench_walkers [--data data] [--steps 1500] [--objectives median regress classify]``.

Without ``--data`` it builds the tiny demo's Tokyo dataset under ``bench/out/`` first (measured: 281 s on the busy
2-core box; the same 595,124 stays as ``python -m core demo --scale tiny``).
Set ``AREA_THREADS=1`` on a busy shared machine (NOTES: torch thread oversubscription).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def demo_stays(data: Path | None, dataset: str) -> Path:
    """The demo's stays file, building the tiny demo's dataset under bench/out when no data folder is given."""
    if data is not None:
        return data / "demo" / "stays" / f"{dataset}.parquet"
    path = OUT / "walkers_demo" / "stays" / f"{dataset}.parquet"
    if not path.is_file():
        from core.simulation.demo import build_demo

        t0 = time.perf_counter()
        build_demo(OUT, scale="tiny", only=(dataset,), name="walkers_demo")
        print(f"built the tiny demo's {dataset} in {time.perf_counter() - t0:.0f} s")
    return path


def run(path: Path, config: object, truth: Path | None, max_anchors: int) -> dict:
    from core.walkers.evaluate import evaluate_all
    from core.walkers.model import WalkerModel
    from core.walkers.trajectories import read_trajectories

    t0 = time.perf_counter()
    traj = read_trajectories(path)
    read_s = time.perf_counter() - t0
    model = WalkerModel(config).fit(traj)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    users = model.embed_users(traj)
    embed_s = time.perf_counter() - t1
    report = evaluate_all(model, traj, truth=truth, stays_path=path, max_anchors=max_anchors)
    report.update(
        {
            "read_seconds": read_s,
            "embed_seconds": embed_s,
            "tokens_per_second": model.tokens_seen_ / model.seconds_,
            "train_tokens": model.n_train_tokens_,
            "final_loss": float(model.history_[-50:].mean()),
            "embedded_people": int(users.shape[0]),
        }
    )
    return report


def row(name: str, r: dict) -> str:
    c = r.get("commuters", {})
    e = c.get("embeddings", {})
    b = c.get("baseline_mobility_features", {})
    nl = r["next_location"]
    cells = [
        name,
        f"{e.get('accuracy', float('nan')):.3f} ({e.get('balanced_accuracy', float('nan')):.3f})",
        f"{e.get('majority_accuracy', float('nan')):.3f} / {b.get('accuracy', float('nan')):.3f}",
    ]
    for h in ("30min", "60min", "150min"):
        x = nl[h]
        cells.append(f"{x['model_mean_km']:.3f} / {x['stay_put_mean_km']:.3f} / {x['slot_mode_mean_km']:.3f}")
    cells.append(f"{r['train_seconds']:.0f} s, {r['parameters']:,}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    from core.threads import torch_threads
    from core.walkers.model import WalkerConfig
    from core.walkers.trajectories import find_demo_truth

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--data", type=Path, default=None, help="a data folder with demo/ (default: build the tiny Tokyo under bench/out)"
    )
    ap.add_argument("--dataset", default="tokyo_2021_04")
    ap.add_argument("--steps", type=int, default=WalkerConfig().steps)
    ap.add_argument("--objectives", nargs="+", default=["median", "regress", "classify"])
    ap.add_argument("--humob-people", type=int, default=2000, help="people in the generated HuMob file (0: skip)")
    ap.add_argument("--max-anchors", type=int, default=20000)
    args = ap.parse_args()
    print(f"torch threads: {torch_threads()}")
    path = demo_stays(args.data, args.dataset)
    results: dict[str, dict] = {}
    for obj in args.objectives:
        t0 = time.perf_counter()
        results[f"demo/{obj}"] = run(path, WalkerConfig(steps=args.steps, objective=obj), find_demo_truth(path), args.max_anchors)
        print(f"demo {obj}: {time.perf_counter() - t0:.0f} s in all", flush=True)
    if args.humob_people:
        from core.simulation.humob import generate_humob

        hp = OUT / f"humob_{args.humob_people}.csv.gz"
        if not hp.is_file():
            records, people = generate_humob(n_people=args.humob_people, days=75, seed=0)
            OUT.mkdir(parents=True, exist_ok=True)
            records.to_csv(hp, index=False, compression="gzip")
            people.to_csv(OUT / f"humob_{args.humob_people}_people.csv", index=False)
        t0 = time.perf_counter()
        results["humob/median"] = run(
            hp, WalkerConfig(steps=args.steps, objective="median"), find_demo_truth(hp), args.max_anchors
        )
        print(f"humob: {time.perf_counter() - t0:.0f} s in all", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_walkers.json").write_text(json.dumps(results, indent=2, default=float))
    print()
    print(
        "| run | commuters: accuracy (balanced) | majority / hand features | 0.5 h: model / stay-put / slot-mode (km) "
        "| 1 h | 2.5 h | training time, parameters |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(row(name, r))
    print()
    print("| run | region set | k-means ARI | k-means ARI (unit vectors) | classifier accuracy (balanced) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        rt = r.get("region_types")
        if not rt:
            continue
        for k in ("walkers_sum", "walkers_mean", "area2vec"):
            x = rt[k]
            print(
                f"| {name} | {k} | {x['ari_kmeans']:.3f} | {x['ari_kmeans_unit']:.3f} | {x['accuracy']:.3f} ({x['balanced_accuracy']:.3f}) |"
            )
        m = rt["_meshes"]
        print(f"| {name} | ({int(m['n'])} meshes, {int(m['n_types'])} types, majority {m['majority_accuracy']:.3f}) | | | |")
    print(f"\nfull results: {OUT / 'bench_walkers.json'}")


if __name__ == "__main__":
    main()
