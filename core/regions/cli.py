"""``python -m core regions ...``: cross-city region embeddings and label transfer (CoRE and baselines)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from core.regions.config import (
    ANCHORS,
    CLUSTERS_K,
    DEFAULT_LABELS,
    EPOCHS,
    LOSSES,
    MESH_SIZE,
    METHOD,
    REGIONS,
    SCALES,
    SEED,
    CoreConfig,
    TransferConfig,
)


def _labels(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _load(args: argparse.Namespace, path: str, labels: tuple[str, ...] | None) -> Any:
    """A city folder or a stay table, as a region graph (the stay options of ``args`` apply to tables)."""
    from core.regions.sources import load_city

    return load_city(path, labels, mesh_size=args.mesh_size, regions=args.regions, k=args.k)


def _anchors(args: argparse.Namespace, paths: list[str]) -> Any:
    """The ``area2vec`` method's anchor set: ``--anchors``, else the release of the first stay table that has one."""
    from core.area2vec.anchors import read_anchor_set
    from core.regions.sources import release_anchor_dir

    if args.method != "area2vec":
        return None
    folder = args.anchors or next((d for d in map(release_anchor_dir, paths) if d is not None), None)
    if folder is None:
        return None  # fit_area2vec says what is missing
    print(f"anchor set: {folder}")
    return read_anchor_set(folder)


def _config(args: argparse.Namespace) -> CoreConfig:
    return CoreConfig(
        epochs=args.epochs, seed=args.seed, n_anchors=args.n_anchors, alpha=args.alpha, beta=args.beta, losses=args.losses
    )


def _json_ready(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN (Spearman of a constant prediction) becomes JSON null."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def _fmt(v: Any, sd: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f} ± {sd:.3f}" if sd else f"{v:.3f}"


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The transfer rows as a plain text table (MAE, Spearman, R^2)."""
    lines = [f"{'label':<12} {'scale':<8} {'method':<12} {'MAE':>22} {'Spearman':>16} {'R^2':>16}"]
    for r in rows:
        lines.append(
            f"{r['label']:<12} {r['scale']:<8} {r['method']:<12} {_fmt(r['mae'], r['mae_sd']):>22} "
            f"{_fmt(r['spearman'], r['spearman_sd']):>16} {_fmt(r['r2'], r['r2_sd']):>16}"
        )
    return "\n".join(lines)


def cmd_transfer(args: argparse.Namespace) -> int:
    """Train a method on source + target and score the source -> target label transfer."""
    from core.atomic import write_text_atomic
    from core.errors import InputError
    from core.progress import TerminalProgress
    from core.regions.evaluate import transfer

    labels = _labels(args.labels)
    source, target = _load(args, args.source, labels), _load(args, args.target, labels)
    if labels is None:
        common = set(source.labels) & set(target.labels)
        labels = tuple(x for x in DEFAULT_LABELS if x in common) or tuple(sorted(common))
        if not labels:
            raise InputError(
                "labels",
                f"{source.name} and {target.name} share no label",
                expected=f"labels in both cities ({sorted(source.labels)} / {sorted(target.labels)})",
            )
    anchors = _anchors(args, [args.source, args.target])
    with TerminalProgress(f"{args.method} {source.name}->{target.name}", enabled=not args.quiet) as bar:
        rows, seconds = transfer(
            source, target, args.method, labels, seeds=args.seeds, config=_config(args), progress=bar, anchors=anchors
        )
    print(
        f"{source.name} ({source.n} regions) -> {target.name} ({target.n} regions), {args.method}, "
        f"{args.seeds} seeds, {sum(seconds) / len(seconds):.1f} s training per seed"
    )
    print(format_rows(rows))
    if args.out:
        write_text_atomic(Path(args.out), json.dumps(_json_ready(rows), indent=1) + "\n")
        print(f"-> {args.out}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed two or more cities with a method and write each city's embeddings as CSV."""
    import pandas as pd

    from core.atomic import atomic_path, ensure_writable_dir
    from core.errors import InputError
    from core.progress import TerminalProgress
    from core.regions.methods import fit_method

    graphs = [_load(args, c, ()) for c in args.city]  # labels are not needed to embed
    names = [g.name for g in graphs]
    if len(set(names)) != len(names):
        raise InputError("city", f"two cities with the same folder name {names}", expected="city folders with distinct names")
    out = ensure_writable_dir(Path(args.out))
    with TerminalProgress(f"{args.method}", enabled=not args.quiet) as bar:
        embeddings = fit_method(graphs, args.method, _config(args), bar, anchors=_anchors(args, args.city))
    for g, z in zip(graphs, embeddings):
        frame = pd.DataFrame(z, columns=[f"e{i}" for i in range(z.shape[1])])
        frame.insert(0, "geo_id", g.region_ids)
        with atomic_path(out / f"{g.name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        print(f"{g.name}: {g.n} regions x {z.shape[1]} -> {out / (g.name + '.csv')}")
    return 0


def _training_options(p: argparse.ArgumentParser) -> None:
    METHOD.add_to(p, "--method", metavar="{" + ",".join(METHOD.choices or ()) + "}")
    EPOCHS.add_to(p, "--epochs")
    SEED.add_to(p, "--seed")
    p.add_argument(
        "--n-anchors",
        type=int,
        default=CoreConfig.n_anchors,
        help="virtual anchors of CoRE's manifold alignment (default: %(default)s)",
    )
    p.add_argument(
        "--alpha", type=float, default=CoreConfig.alpha, help="weight of the manifold alignment loss (default: %(default)s)"
    )
    p.add_argument(
        "--beta", type=float, default=CoreConfig.beta, help="weight of the individual alignment loss (default: %(default)s)"
    )
    LOSSES.add_to(p, "--losses", choices=LOSSES.choices)
    ANCHORS.add_to(p, "--anchors", metavar="DIR")
    REGIONS.add_to(p, "--regions", choices=REGIONS.choices)
    MESH_SIZE.add_to(p, "--mesh-size", choices=(1000, 250, 50))
    CLUSTERS_K.add_to(p, "--k")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub: Any) -> None:
    """Add the ``regions`` command group (``transfer``, ``embed``) to the CLI's subparsers."""
    regions = sub.add_parser(
        "regions",
        help="cross-city region embeddings (CoRE and baselines) and label transfer",
        description="Region embeddings of several cities in one space from OD flows (CoRE, ICML 2025, and baselines).",
    )
    rsub = regions.add_subparsers(dest="regions_command", required=True)
    t = rsub.add_parser(
        "transfer",
        help="train on two cities, fit a ridge on the source's labels, score it on the target",
        description=(
            "Train a method on two cities (folders with *.geo, *.mob, <label>_*.npy, or stay tables as regions of "
            "JIS meshes or of the release's joint clusters), fit a ridge (alpha 1) on the source "
            "city's embeddings and labels, apply it to every target region (negatives clipped) and print MAE, "
            "Spearman and R^2 (mean ± sd over seeds) for labels as sums, per km^2 (density) and log(1 + sum), "
            "beside the baselines 'mean' (the source's mean) and 'area' (a ridge on log area)."
        ),
    )
    t.add_argument("--source", required=True, help="source city folder or stay table (its labels train the ridge)")
    t.add_argument("--target", required=True, help="target city folder or stay table (its labels only score)")
    t.add_argument(
        "--seeds", type=int, default=TransferConfig.seeds, help="training runs, seeds seed..seed+n-1 (default: %(default)s)"
    )
    t.add_argument(
        "--labels",
        help=f"comma-separated labels (default: {','.join(DEFAULT_LABELS)} where both cities have them, else every common label)",
    )
    t.add_argument("--out", help=f"write the rows as JSON (method, label, scale in {SCALES}, metrics with *_sd)")
    _training_options(t)
    t.set_defaults(func=cmd_transfer)
    e = rsub.add_parser(
        "embed",
        help="embed two or more cities in one space and write geo_id,e0,... CSVs",
        description=(
            "Embed the regions of two or more cities (folders or stay tables) with one method; "
            "writes OUT/<city folder or table name>.csv."
        ),
    )
    e.add_argument("--city", action="append", required=True, help="a city folder or stay table (repeat: --city A --city B)")
    e.add_argument("--out", required=True, help="output folder")
    _training_options(e)
    e.set_defaults(func=cmd_embed)
