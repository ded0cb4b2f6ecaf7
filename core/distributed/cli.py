"""Command-line glue of the distributed path: engine options for ``stays`` / ``meshes`` and the ``counts`` command."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any

from core import knobs
from core.distributed.options import ENGINES, SHUFFLES, EngineOptions

_DEFAULTS = {f.name: f.default for f in fields(EngineOptions)}


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine``, ``--scheduler``, ``--workers``, ``--partitions``, ``--shuffle`` and ``--connect-timeout`` (defaults from :class:`EngineOptions`)."""
    g = parser.add_argument_group("engine")
    g.add_argument(
        "--engine",
        choices=ENGINES,
        default=_DEFAULTS["engine"],
        help=f"run in this process (local) or on a Dask cluster (dask) (default {_DEFAULTS['engine']})",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=_DEFAULTS["scheduler"],
        help="with --engine dask: a running Dask scheduler (tcp://host:8786); default: a local cluster for this run",
    )
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=_DEFAULTS["workers"],
        help="with --engine dask and no --scheduler: worker processes of the local cluster (default: one per CPU)",
    )
    g.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        default=_DEFAULTS["partitions"],
        help="with --engine dask: partitions the fixes are hashed into by person (default: one per input chunk)",
    )
    g.add_argument(
        "--shuffle",
        choices=SHUFFLES,
        default=_DEFAULTS["shuffle"],
        help=f"with --engine dask: p2p (buffered on disk, for data larger than memory) or tasks (in memory) (default {_DEFAULTS['shuffle']})",
    )
    g.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        default=_DEFAULTS["connect_timeout"],
        help=f"with --scheduler: give up after this long (default {_DEFAULTS['connect_timeout']:g})",
    )


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` of parsed arguments."""
    return EngineOptions(
        engine=args.engine,
        scheduler=args.scheduler,
        workers=args.workers,
        partitions=args.partitions,
        connect_timeout=args.connect_timeout,
        shuffle=args.shuffle,
    )


def _terminal(desc: str, quiet: bool = False) -> Any:
    from core.progress import TerminalProgress

    return TerminalProgress(desc, enabled=not quiet)


def run_stays(args: argparse.Namespace, gps: Any) -> int:
    """``stays --engine dask``: GPS files -> stay table (or training table with --privacy)."""
    from core.distributed.pipeline import run_stays as run

    with _terminal("stays") as bar:
        report = run(args.gps, args.out, gps, engine_options(args), privacy=args.privacy, progress=bar)
    print(json.dumps(report, indent=2, default=str), file=sys.stderr)
    print(f"{report['rows']:,} {'training rows' if args.privacy is not None else 'stays'} -> {args.out}")
    return 0


def run_meshes(args: argparse.Namespace) -> int:
    """``meshes --engine dask``: stay tables -> training table under the privacy rule."""
    from core.distributed.pipeline import run_meshes as run

    with _terminal("meshes") as bar:
        report = run([args.stays], args.out, args.min_users, engine_options(args), progress=bar)
    print(json.dumps(report, indent=2, default=str), file=sys.stderr)
    p = report["privacy"]
    print(f"{report['rows']:,} stays in {p['meshes_50m'] + p['meshes_250m']:,} meshes -> {args.out}")
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    """``counts``: stay tables (or GPS files) -> the meshes x 168 count table (Parquet) for ``train``."""
    from pathlib import Path

    from core.errors import InputError

    if Path(args.out).suffix.lower() not in (".parquet", ".pq"):
        raise InputError(args.out, "the count table is Parquet", expected="an output name ending in .parquet")
    engine = engine_options(args)
    if engine.engine == "dask":
        from core.distributed.pipeline import run_counts

        with _terminal("counts", args.quiet) as bar:
            report = run_counts(args.inputs, args.out, args.min_users, engine, progress=bar)
    else:
        from core.atomic import ensure_writable_dir
        from core.distributed.local import local_counts
        from core.mobility.stays import write_counts

        ensure_writable_dir(Path(args.out).parent if str(Path(args.out).parent) else Path("."))
        counts, report = local_counts(args.inputs, args.min_users)
        write_counts(counts, args.out)
    print(json.dumps(report, indent=2, default=str), file=sys.stderr)
    c = report["counts"]
    print(f"{c['stays']:,} stays in {c['meshes']:,} meshes -> {args.out}")
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``counts`` command to the CLI's subparsers."""
    c = sub.add_parser(
        "counts",
        help="stays -> meshes x 168 token counts (Parquet), locally or on Dask",
        description=(
            "Read stay tables from 'stays' (files, folders or glob patterns of CSV / Parquet with user_id and lat/lon or "
            "code_50m; raw GPS files are recognised by their columns and turned into stays with the default rule), apply the "
            "privacy rule (meshes with more than N people) and write the count table: one row per non-zero (mesh, token) "
            "with code, mesh_size, token, count. 'python -m core train COUNTS.parquet' trains on it."
        ),
    )
    c.add_argument("inputs", nargs="+", help="stay tables (or GPS files), folders or glob patterns")
    c.add_argument("--out", required=True, metavar="COUNTS", help="output .parquet")
    knobs.MIN_USERS.add_to(c, "--min-users", metavar="N")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine_options(c)
    c.set_defaults(func=cmd_counts)
