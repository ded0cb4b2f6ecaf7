"""``python -m core walkers train | embed | evaluate | humob | hybrid``: the trajectory models' command group."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CoreError, InputError

TRAJ_HELP = (
    "trajectories: a stay table with user ids (output of 'python -m core stays', or the demo's data/demo/stays/*.parquet) "
    "or a HuMob file (uid,d,t,x,y; CSV, .csv.gz or Parquet); the format is recognised from the columns, extra columns are ignored"
)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`WalkerConfig` field: defaults, choices and help read from the dataclass."""
    from core.walkers.model import WalkerConfig

    g = parser.add_argument_group("model (defaults from WalkerConfig)")
    for f in fields(WalkerConfig):
        default: Any = f.default if f.default is not MISSING else None
        kw: dict[str, Any] = {
            "default": default,
            "type": type(default),
            "help": f"{f.metadata.get('help', '')} (default {default})",
            "metavar": f.name.upper(),
        }
        if "choices" in f.metadata:
            kw["choices"] = list(f.metadata["choices"])
            del kw["metavar"]
        g.add_argument("--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", **kw)


def _config(args: argparse.Namespace) -> Any:
    from core.walkers.model import WalkerConfig

    return WalkerConfig(**{f.name: getattr(args, f"cfg_{f.name}") for f in fields(WalkerConfig)})


def _truth_path(args: argparse.Namespace) -> Path | None:
    from core.walkers.trajectories import find_demo_truth

    if getattr(args, "truth", None) == "none":
        return None
    if getattr(args, "truth", None):
        p = Path(args.truth)
        if not p.is_file():
            raise InputError(str(p), "no such file", expected="a people table (user_id or uid, commuter, role, ...)")
        return p
    return find_demo_truth(args.traj)


def _write_outputs(out: Path, model: Any, traj: Any, level: str | None, pool: str, truth: Path | None) -> dict[str, Any]:
    from core.atomic import atomic_path
    from core.walkers.regions import PEOPLE_CSV, USERS_CSV, region_embeddings, write_regions, write_users_csv
    from core.walkers.trajectories import people_table

    t0 = time.perf_counter()
    users = model.embed_users(traj)
    regions = region_embeddings(traj, users, level or model.level_, pool)
    write_users_csv(out / USERS_CSV, traj.users, users)
    write_regions(out, regions)
    people = people_table(traj, truth)
    people["held_out"] = model.held_out(traj)
    with atomic_path(out / PEOPLE_CSV) as tmp:
        people.to_csv(tmp, index=False)
    return {"n_users": int(traj.n_users), "n_regions": len(regions.keys), "embed_seconds": time.perf_counter() - t0}


def cmd_train(args: argparse.Namespace) -> int:
    from core.atomic import ensure_writable_dir, write_text_atomic
    from core.progress import TerminalProgress
    from core.walkers.model import WalkerModel
    from core.walkers.trajectories import read_trajectories

    out = ensure_writable_dir(Path(args.out))
    config = _config(args)
    traj = read_trajectories(args.traj, merge_runs=not args.slots)
    truth = _truth_path(args)
    with TerminalProgress("walkers", enabled=not args.quiet) as bar:
        model = WalkerModel(config).fit(traj, progress=bar, level=args.level)
    model.save(out)
    info = _write_outputs(out, model, traj, args.level, args.pool, truth)
    metrics = {
        "source": str(args.traj),
        "records": len(traj),
        "people": traj.n_users,
        "held_out_people": len(model.test_users_),
        "train_people": len(model.train_users_),
        "train_seconds": model.seconds_,
        "parameters": model.n_params_,
        "final_loss": float(model.history_[-50:].mean()),
        "level": model.level_,
        "pool": args.pool,
        "truth": None if truth is None else str(truth),
        **info,
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(
        f"{len(traj):,} records of {traj.n_users:,} people -> {out} (trained on {len(model.train_users_):,} people, "
        f"{len(model.test_users_):,} held out; {model.n_params_:,} parameters, {model.seconds_:.0f} s, final loss "
        f"{metrics['final_loss']:.4f}; users.csv, regions.csv with {info['n_regions']:,} regions)"
    )
    return 0


def cmd_hybrid(args: argparse.Namespace) -> int:
    """Train the hybrid encoder (transformer + BiLSTM, attention pooling) and write a run the People view lists."""
    from core.atomic import atomic_path, ensure_writable_dir, write_text_atomic
    from core.walkers.hybrid import HybridConfig, HybridEncoder
    from core.walkers.regions import PEOPLE_CSV, USERS_CSV, write_users_csv
    from core.walkers.trajectories import people_table, read_trajectories

    out = ensure_writable_dir(Path(args.out))
    traj = read_trajectories(args.traj, merge_runs=not args.slots)
    truth = _truth_path(args)
    model = HybridEncoder(HybridConfig(steps=args.steps, context=args.context, seed=args.seed)).fit(traj)
    users = model.embed_users(traj)
    write_users_csv(out / USERS_CSV, traj.users, users)
    people = people_table(traj, truth)
    held = np.zeros(traj.n_users, bool)
    held[model.test_users_] = True
    people["held_out"] = held
    with atomic_path(out / PEOPLE_CSV) as tmp:
        people.to_csv(tmp, index=False)
    metrics = {
        "encoder": "hybrid (transformer + BiLSTM, attention pooling)",
        "source": str(Path(args.traj).resolve()),
        "truth": None if truth is None else str(truth),
        "people": traj.n_users,
        "held_out_people": len(model.test_users_),
        "train_seconds": model.seconds_,
        "final_loss": float(model.history_[-50:].mean()),
        "config": model.config_dict(),
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"{traj.n_users:,} people -> {out} (hybrid, {model.seconds_:.0f} s, final loss {metrics['final_loss']:.4f})")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from core.atomic import ensure_writable_dir
    from core.walkers.model import WalkerModel
    from core.walkers.trajectories import read_trajectories

    model = WalkerModel.load(args.model)
    out = ensure_writable_dir(Path(args.out))
    traj = read_trajectories(args.traj, merge_runs=not args.slots)
    info = _write_outputs(out, model, traj, args.level, args.pool, _truth_path(args))
    print(f"{info['n_users']:,} people, {info['n_regions']:,} regions -> {out} ({info['embed_seconds']:.1f} s)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.atomic import write_text_atomic
    from core.walkers.evaluate import evaluate_all
    from core.walkers.model import WalkerModel
    from core.walkers.trajectories import read_trajectories

    model = WalkerModel.load(args.model)
    traj = read_trajectories(args.traj, merge_runs=not args.slots)
    report = evaluate_all(
        model, traj, truth=_truth_path(args), stays_path=Path(args.traj), max_anchors=args.max_anchors, seed=args.seed
    )
    text = json.dumps(report, indent=2)
    print(text)
    if not args.no_save:
        write_text_atomic(Path(args.model) / "evaluation.json", text + "\n")
    return 0


def cmd_humob(args: argparse.Namespace) -> int:
    from core.atomic import atomic_path
    from core.simulation.humob import generate_humob

    out = Path(args.out)
    name = out.name
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise CoreError(f"{out}: expected a .csv or .csv.gz output")
    records, people = generate_humob(
        n_people=args.people, days=args.days, city=args.city, seed=args.seed, masked_share=args.masked_share
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        records.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
    truth = out.with_name(name.split(".")[0] + "_people.csv")
    with atomic_path(truth) as tmp:
        people.to_csv(tmp, index=False)
    n_masked = int((records["x"] == 999).sum())
    print(
        f"{len(records):,} records ({n_masked:,} masked) of {len(people):,} people over {args.days} days -> {out}; truth -> {truth}"
    )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from core.walkers.regions import POOLS
    from core.walkers.trajectories import CELL_LEVEL, CODE_LEVEL, LEVELS

    p.add_argument(
        "--level",
        choices=[*LEVELS, CODE_LEVEL, CELL_LEVEL],
        default=None,
        help="region level: JIS mesh from lat/lon (50m, 250m, 1km), the table's own code/mesh_size (code), "
        "or the HuMob cell (cell); default: code when the table has codes, else 50m; cell for HuMob",
    )
    p.add_argument("--pool", choices=list(POOLS), default="sum", help="region = sum (RAW) or mean of its visitors' embeddings")
    p.add_argument(
        "--truth",
        default=None,
        help="people table with user_id/uid and commuter, role, home_code ... (default: found beside the demo's stays "
        "or a generated HuMob file; 'none' for none)",
    )
    p.add_argument("--slots", action="store_true", help="HuMob: one token per half-hour record instead of per run of records")


def add_parser(sub: Any) -> None:
    """Add the ``walkers`` command group to the subparsers ``sub``."""
    w = sub.add_parser(
        "walkers",
        help="trajectory transformer (RAW): user and region embeddings",
        description=(
            "Regions are who walk them (RAW, arXiv 2311.10471) at laptop scale: a small causal transformer trained on "
            "people's trajectories; user embedding = mean of its final hidden states; region embedding = sum of the "
            "embeddings of the distinct people who visit it."
        ),
    )
    ws = w.add_subparsers(dest="walkers_command", required=True, metavar="SUBCOMMAND")

    t = ws.add_parser(
        "train",
        help="train the model and write users.csv and regions.csv",
        description=(
            "Train on TRAJ (people split: test-share of them held out, never by record) and write DIR/walker.pth (weights "
            "with its config), DIR/config.json, DIR/users.csv (uid,e0,...: every person with a usable record), "
            "DIR/regions.csv (key,[mesh_size,]n_visitors,e0,...), DIR/region_embeddings.csv (mesh levels: Area2Vec's "
            "code,mesh_size,e0,... form), DIR/people.csv (uid, activity, held_out and the truth's commuter, role, home "
            "district where known) and DIR/metrics.json."
        ),
    )
    t.add_argument("traj", help=TRAJ_HELP)
    t.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _common(t)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(t)
    t.set_defaults(func=cmd_train)

    hy = ws.add_parser(
        "hybrid",
        help="train the hybrid encoder (transformer + BiLSTM with attention pooling) and write users.csv for the People view",
        description=(
            "The 'Experiment 21' encoder done with care: people split by person, padding masked (never a value), no person "
            "id feature; trained to predict the next record's position. Writes DIR/users.csv, DIR/people.csv, DIR/metrics.json."
        ),
    )
    hy.add_argument("traj", help=TRAJ_HELP)
    hy.add_argument("--out", required=True, metavar="DIR", help="output folder (e.g. data/walkers/NAME)")
    hy.add_argument("--steps", type=int, default=300, help="training steps of 64 windows (default 300)")
    hy.add_argument("--context", type=int, default=48, help="records per window (default 48)")
    hy.add_argument("--seed", type=int, default=0)
    _common(hy)
    hy.set_defaults(func=cmd_hybrid)

    e = ws.add_parser(
        "embed",
        help="embed people and regions of TRAJ with a trained model",
        description="Write OUT/users.csv, OUT/regions.csv (and region_embeddings.csv, people.csv) for TRAJ with the model in MODEL.",
    )
    e.add_argument("model", metavar="MODEL", help="a folder written by 'walkers train'")
    e.add_argument("traj", help=TRAJ_HELP)
    e.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _common(e)
    e.set_defaults(func=cmd_embed)

    v = ws.add_parser(
        "evaluate",
        help="commuters, next location and region types, checked against the truth",
        description=(
            "Print (and save as MODEL/evaluation.json) the tasks on held-out people: commuter identification from user "
            "embeddings (logistic regression; needs a truth with 'commuter'), next-location error in km at 0.5 / 1 / 2.5 h "
            "vs 'stay where you are' and 'your most visited cell for this time slot', and, for a demo stays file, "
            "region-type recovery (ARI, classifier accuracy) of walker region embeddings vs the demo's Area2Vec ones."
        ),
    )
    v.add_argument("model", metavar="MODEL", help="a folder written by 'walkers train'")
    v.add_argument("traj", help=TRAJ_HELP)
    _common(v)
    v.add_argument("--max-anchors", type=int, default=20000, help="most records to predict from, per horizon (default 20000)")
    v.add_argument("--seed", type=int, default=0, help="seed of the classifiers and the sampling")
    v.add_argument("--no-save", action="store_true", help="print only")
    v.set_defaults(func=cmd_evaluate)

    h = ws.add_parser(
        "humob",
        help="write a HuMob-format file (uid,d,t,x,y) simulated from the demo world",
        description=(
            "Simulate people of a demo city over consecutive days and write their half-hour records in the HuMob / YJMob100K "
            "format (200 x 200 cells of 500 m, t = 0..47, 999 = masked: the last people's final 15 days), plus "
            "NAME_people.csv with the truth (role, commuter, home and work cells)."
        ),
    )
    h.add_argument("--out", required=True, metavar="FILE", help="output .csv or .csv.gz")
    h.add_argument("--people", type=int, default=2000, help="people (default 2000)")
    h.add_argument("--days", type=int, default=75, help="days (default 75)")
    h.add_argument("--city", default="nagoya", help="demo city (default nagoya)")
    h.add_argument("--masked-share", type=float, default=0.2, help="share of people whose last 15 days are masked (default 0.2)")
    h.add_argument("--seed", type=int, default=0)
    h.set_defaults(func=cmd_humob)
