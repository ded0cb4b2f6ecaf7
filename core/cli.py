"""Command line: ``python -m core COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from core import knobs
from core.errors import CoreError, InputError
from core.progress import StatusFile, TerminalProgress, fanout

if TYPE_CHECKING:
    from core.area2vec.trainer import TrainConfig

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (``error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _nonnegative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative (expected a distance of at least 0)")
    return value


def _config(args: argparse.Namespace) -> TrainConfig:
    from core.area2vec.trainer import TrainConfig

    return TrainConfig(
        seed=args.seed, dim=args.dim, schedule=args.schedule, alpha=args.alpha, max_epochs=args.epochs, tol=args.tol
    )


def cmd_train(args: argparse.Namespace) -> int:
    from core.area2vec.anchors import read_anchor_set
    from core.area2vec.embeddings import RUN_FILES, train_embeddings
    from core.atomic import check_output_dir
    from core.mobility.stays import is_count_table, read_count_table, read_stays

    check_output_dir(Path(args.out), args.overwrite, keep=RUN_FILES)  # fail before the work (creating nothing), not after
    anchors = None if args.free or args.anchors is None else read_anchor_set(args.anchors)
    if anchors is None and not args.free:
        print("note: no --anchors given: training freely (embeddings are not comparable across datasets)", file=sys.stderr)
    if is_count_table(args.stays):  # a count table from 'counts': the matrix itself
        counts, n_skipped = read_count_table(args.stays), 0
    else:
        from core.mobility.columns import parse_optional

        columns = parse_optional(args.columns)
        if columns is not None and columns.kind != "stays":
            raise InputError(
                "--columns", f"maps {columns.kind} roles", expected="stay-table roles for 'train' (e.g. stay_time=minutes)"
            )
        records = read_stays(args.stays, columns)
        counts, n_skipped = records.to_counts(), records.n_skipped
    bar = TerminalProgress("train", not args.quiet)
    try:
        emb = train_embeddings(counts, anchors, _config(args), progress=bar)
    finally:
        bar.close()
    emb.metrics["n_skipped_no_mesh"] = n_skipped
    emb.metrics["stays_file"] = str(args.stays)
    emb.save(args.out, overwrite=args.overwrite)
    m = emb.metrics
    print(
        f"{m['n_meshes']} meshes, {m['n_stays']} stays -> {args.out} "
        f"(ApproximationLoss {m['approximation_loss']:.5f}, {m['epochs']} epochs, {m['seconds']:.1f} s, "
        f"{'anchored to ' + str(m['n_anchors']) + ' anchors' if m['anchored'] else 'free'})"
    )
    return 0


def _load_embeddings(path: str):
    from core.area2vec.embeddings import AreaEmbeddings, read_embeddings_csv

    p = Path(path)
    return AreaEmbeddings.load(p) if p.is_dir() else read_embeddings_csv(p)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.area2vec.metrics import approximation_loss, misalignment
    from core.mobility.stays import read_counts

    out: dict = {}
    if args.model:
        emb = _load_embeddings(args.model)
        counts = read_counts(args.stays) if args.stays else None
        if counts is None:
            raise CoreError("evaluate --model needs --stays")
        import pandas as pd

        idx = pd.Index(emb.keys).get_indexer(counts.keys)  # -1 where the model lacks the area
        found = idx >= 0
        if not found.any():
            raise CoreError(f"none of the {counts.n_areas} areas of {args.stays} are in {args.model}")
        dense = counts.dense()[found]
        out["approximation_loss"] = approximation_loss(dense, emb.vectors[idx[found]], emb.decoder)
        out["n_meshes"] = int(found.sum())
        out["n_meshes_missing"] = int((~found).sum())
    if args.misalignment:
        a, b = (_load_embeddings(p) for p in args.misalignment)
        common, ia, ib = np.intersect1d(a.keys, b.keys, return_indices=True)
        if len(common) == 0:
            raise CoreError("the two embedding files share no area key")
        out["misalignment_euclidean"] = misalignment(a.vectors[ia], b.vectors[ib], "euclidean")
        out["misalignment_cosine"] = misalignment(a.vectors[ia], b.vectors[ib], "cosine")
        out["n_common"] = int(len(common))
    if not out:
        raise CoreError("nothing to evaluate: give --model with --stays, and/or --misalignment A B")
    print(json.dumps(out, indent=2))
    return 0


def cmd_make_anchors(args: argparse.Namespace) -> int:
    from core.area2vec.anchors import build_anchor_set
    from core.area2vec.trainer import TrainConfig
    from core.mobility.stays import read_stays

    datasets = [read_stays(p) for p in args.stays]
    bar = TerminalProgress("anchors", not args.quiet)
    try:
        aset = build_anchor_set(
            datasets, args.n_anchors, args.records, TrainConfig(seed=args.seed, dim=args.dim), args.seed, progress=bar
        )
    finally:
        bar.close()
    aset.save(args.out)
    print(f"{aset.n_anchors} anchors x {args.records} records, dim {aset.dim} -> {args.out}")
    return 0


def _decoder_of(emb) -> np.ndarray | None:
    """The decoder of loaded embeddings, ``None`` when there is none (an embeddings CSV carries zeros)."""
    from core.analysis.similarity import has_decoder

    return emb.decoder if has_decoder(emb.decoder) else None


def cmd_similar(args: argparse.Namespace) -> int:
    from core.analysis.similarity import (
        DISTANCE_NAMES,
        distance_classes,
        distances,
        points,
        resolve_space,
        similar_across,
        space_distances,
        top_matches,
    )

    emb = _load_embeddings(args.embeddings)
    hit = np.flatnonzero(emb.keys == args.key)
    if hit.size == 0:
        raise CoreError(f"area {args.key} is not in {args.embeddings}")
    i = int(hit[0])
    loaded = {str(args.embeddings): emb}
    for other in args.across or []:
        loaded[str(other)] = _load_embeddings(other)
    decoders = {name: _decoder_of(e) for name, e in loaded.items()}
    space = resolve_space(args.space, list(decoders.values()))
    if space != args.space:
        missing = [name for name, dec in decoders.items() if dec is None]
        print(f"note: no model file for {', '.join(missing)}: similar by embedding distance", file=sys.stderr)
    sets = {name: (e.keys, points(e.vectors, decoders[name], space)) for name, e in loaded.items()}
    query = sets[str(args.embeddings)][1][i]
    d_query = space_distances(sets[str(args.embeddings)][1], query, space)  # the query's own dataset, once
    matches = similar_across(
        query, sets, k=args.top, exclude=(str(args.embeddings), i), dists={str(args.embeddings): d_query}, space=space
    )
    if args.threshold is not None:
        matches = [m for m in matches if m.distance <= args.threshold]
    d_emb = distances(emb.vectors, emb.vectors[i])  # the OpenUAS distance classes are in embedding units
    classes = np.bincount(distance_classes(d_emb, i), minlength=6)
    out: dict = {
        "query": {"key": args.key, emb.key_column: args.key},
        "space": space,
        "distance": DISTANCE_NAMES[space],
        "distance_class_counts": {str(c): int(n) for c, n in enumerate(classes)},
        "matches": [{"dataset": m.dataset, "key": m.key, "distance": round(m.distance, 6)} for m in matches],
    }
    if args.percent is not None:
        top = top_matches(d_query, "percent", args.percent, exclude=i)
        out["top_percent"] = {"percent": args.percent, "areas": top.count, "of": top.candidates, "within": round(top.cutoff, 6)}
    print(json.dumps(out, indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.constants import MESH_CODE
    from core.geo.meshcode import infer_sizes
    from core.release.clusters import dataset_labels
    from core.release.layout import check_new_dataset, write_dataset, write_util_files

    check_new_dataset(args.release, args.name, args.overwrite)  # before the work
    emb = _load_embeddings(args.embeddings)
    if emb.key_column != MESH_CODE:
        raise CoreError(f"{args.embeddings} is keyed by {emb.key_column}; a release needs JIS mesh codes ('code')")
    sizes = emb.mesh_sizes if emb.mesh_sizes is not None else infer_sizes(emb.keys)
    labels = dataset_labels(emb.vectors, emb.decoder)  # a space of its own (one rule for every writer)
    ref = write_dataset(args.release, args.name, emb.keys, sizes, emb.vectors, emb.decoder, labels, overwrite=args.overwrite)
    write_util_files(args.release)
    print(f"{len(emb.keys)} meshes -> {ref.geojson} and {ref.model}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from core.simulation.demo import build_demo

    status = StatusFile(args.status) if args.status else None
    with TerminalProgress("demo", not args.quiet) as bar:
        try:
            summary = build_demo(args.data, scale=args.scale, seed=args.seed, progress=fanout(bar, status))
        except BaseException as exc:
            if status is not None:
                status.fail("interrupted" if isinstance(exc, KeyboardInterrupt) else exc)
            raise
    if status is not None:
        status.done()
    n50 = sum(d["meshes_50m"] for d in summary["datasets"])
    n250 = sum(d["meshes_250m"] for d in summary["datasets"])
    print(
        f"demo release: {len(summary['datasets'])} datasets, {n50:,} meshes of 50 m + {n250:,} of 250 m "
        f"(+ complemented), {summary['n_anchors']} anchors, built in {summary['seconds']:.0f} s -> {Path(args.data) / 'demo'}"
    )
    return 0


def write_table(frame, out: str | Path) -> Path:
    """Write a DataFrame as CSV or Parquet (by suffix), atomically."""
    from core.atomic import atomic_path, ensure_writable_dir

    out = Path(out)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise CoreError(f"{out}: unknown output type '{suffix}' (use .csv or .parquet)")
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return out


def cmd_stays(args: argparse.Namespace) -> int:
    from core.mobility.gps import GpsOptions, gps_to_stays

    opts = GpsOptions(
        user_col=args.user_col,
        time_col=args.time_col,
        date_col=args.date_col,
        lat_col=args.lat_col,
        lon_col=args.lon_col,
        tz=args.tz,
        distance_m=args.distance,
        min_minutes=args.min_duration,
        max_gap_minutes=args.max_gap,
        max_speed=args.max_speed,
        off_col=None if args.marker_col == "none" else args.marker_col,
        off_values=tuple(args.off_values),
        country=args.country,
    )
    from core.mobility.columns import GPS, parse_optional

    columns = parse_optional(args.columns)
    if columns is not None:
        if columns.kind != GPS:
            raise InputError(
                "--columns", f"maps {columns.kind} roles", expected="GPS roles for 'stays' (user_id, time, lat, lon)"
            )
        opts = columns.gps_options(opts)
    if args.engine == "dask":
        from core.distributed.cli import run_stays

        return run_stays(args, opts)
    table, report = gps_to_stays(args.gps, opts)
    if args.privacy is not None:
        from core.mobility.privacy import apply_privacy

        table, priv = apply_privacy(table, args.privacy, source=str(args.gps[0]))
        report["privacy"] = priv
    write_table(table, args.out)
    print(json.dumps(report, indent=2, default=str), file=sys.stderr)
    print(f"{len(table):,} stays -> {args.out}")
    return 0


def cmd_meshes(args: argparse.Namespace) -> int:
    from core.mobility.privacy import apply_privacy
    from core.mobility.stays import read_frame

    if args.engine == "dask":
        from core.distributed.cli import run_meshes

        return run_meshes(args)
    path = Path(args.stays)
    frame = read_frame(path)
    table, report = apply_privacy(frame, args.min_users, source=path.name)
    write_table(table, args.out)
    print(json.dumps(report, indent=2), file=sys.stderr)
    print(f"{len(table):,} stays in {report['meshes_50m'] + report['meshes_250m']:,} meshes -> {args.out}")
    return 0


def cmd_add_dataset(args: argparse.Namespace) -> int:
    from core.workflow.request import TrainRequest, run_worker

    request = TrainRequest.from_args(args).validated()
    status_file = Path(args.status_file) if args.status_file else None
    cancel_file = Path(args.cancel_file) if args.cancel_file else None
    with TerminalProgress(request.name, enabled=not args.quiet and not args.under_job) as bar:
        code, result = run_worker(request, status_file, cancel_file, args.under_job, bar)
    if code:
        print("cancelled", file=sys.stderr)
        return code
    m = result["metrics"]
    print(
        f"{result['dataset']}: {m['n_meshes']:,} meshes, ApproximationLoss {m['approximation_loss']:.4f}, {m['seconds_total']:.1f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from core.distributed.cli import add_engine_options
    from core.distributed.cli import add_parser as add_counts_parser
    from core.workflow.request import TrainRequest, add_columns_argument

    p = _Parser(prog="python -m core", description="Area embeddings from human stays (OpenUAS / Area2Vec with anchoring).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser(
        "train",
        help="train embeddings for a stay table (CSV or Parquet)",
        description=(
            "Train Area2Vec on STAYS and write DIR/embeddings.csv (area key, e0..e7), DIR/model.pth "
            "(OpenUAS state dict, anchor rows excluded) and DIR/metrics.json."
        ),
    )
    t.add_argument(
        "stays",
        help="stay table (stay_time, day_of_week, arrival_time, is_holiday and mesh_id or code), or a count table from 'counts'",
    )
    t.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (new or empty; a previous run only with --overwrite)"
    )
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out (written as a whole, then swapped)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--anchors", metavar="ANCHOR_DIR", help="anchor folder with anchor_df.csv and anchor_embeddings.pth")
    g.add_argument("--free", action="store_true", help="train without anchors")
    knobs.EPOCHS.add_to(t, "--epochs")
    knobs.TOL.add_to(t, "--tol")
    knobs.SEED.add_to(t, "--seed")
    knobs.DIM.add_to(t, "--dim")
    knobs.SCHEDULE.add_to(t, "--schedule", choices=knobs.SCHEDULES)
    knobs.ALPHA.add_to(t, "--alpha")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_columns_argument(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "evaluate",
        help="ApproximationLoss of a model on stays; Misalignment of two embeddings",
        description=(
            "Print metrics as JSON. --model DIR --stays FILE: ApproximationLoss of the trained DIR on the stays. "
            "--misalignment A B: mean Euclidean and cosine distance between two embeddings of the same areas."
        ),
    )
    e.add_argument("--model", metavar="DIR", help="a folder written by 'train'")
    e.add_argument("--stays", metavar="FILE", help="stay table to evaluate on")
    e.add_argument("--misalignment", nargs=2, metavar=("A", "B"), help="two embedding CSVs or train folders")
    e.set_defaults(func=cmd_evaluate)

    a = sub.add_parser(
        "make-anchors",
        help="build an anchor set from stay datasets",
        description=(
            "Embed the datasets together, k-means them into N anchors, sample records per anchor (times quantised "
            "to 15 minutes), train with the anchors and write OUT/anchor_df.csv and OUT/anchor_embeddings.pth."
        ),
    )
    a.add_argument("stays", nargs="+", help="stay tables")
    a.add_argument("--out", required=True, metavar="DIR")
    knobs.N_ANCHORS.add_to(a, "--n-anchors")
    knobs.ANCHOR_RECORDS.add_to(a, "--records")
    knobs.SEED.add_to(a, "--seed")
    knobs.DIM.add_to(a, "--dim")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_make_anchors)

    from core.analysis.cli import add_parser as add_analysis_commands

    add_analysis_commands(sub)

    s = sub.add_parser(
        "similar",
        help="areas most similar to one area, here and in other datasets",
        description=(
            "The areas nearest to area KEY by stay pattern (the Hellinger distance between the stay distributions the "
            "models predict, 0 to 1; the default) or by embedding (Euclidean distance; also where a dataset has no model "
            "file, e.g. an embeddings CSV); prints the space used, the OpenUAS distance-class counts (embedding units) "
            "and the nearest areas."
        ),
    )
    s.add_argument("embeddings", help="a folder written by 'train' or an embeddings CSV")
    s.add_argument("key", type=int, help="the area's mesh_id or code")
    knobs.TOP.add_to(s, "--top")
    s.add_argument("--threshold", type=_nonnegative, default=None, help="keep matches within this distance (of the space used)")
    knobs.SIMILARITY_SPACE.add_to(s, "--space")
    knobs.MATCH_PERCENT.add_to(s, "--percent", default=None)
    s.add_argument("--across", nargs="*", metavar="OTHER", help="other embedding sets of the same anchored space")
    s.set_defaults(func=cmd_similar)

    dm = sub.add_parser(
        "demo",
        help="build the synthetic-Japan demo release under DATA/demo",
        description=(
            "Simulate people in 8 Japanese cities (April 2021) and Nagoya over time (April 2019-2023, each month of 2021), "
            "turn their stays into 50 m / 250 m meshes (more than 10 users each), build an anchor set from all datasets, "
            "train every dataset anchored and write the OpenUAS release layout, stays and ground truth to DATA/demo."
        ),
    )
    dm.add_argument("--data", default="data", metavar="DIR", help="data folder (default: data)")
    knobs.DEMO_SCALE.add_to(dm, "--scale")
    dm.add_argument("--status", metavar="FILE", help="keep the build's progress (stage, percent, ETA) in this JSON file")
    knobs.SEED.add_to(dm, "--seed")
    dm.add_argument("--quiet", action="store_true", help="no progress bars")
    dm.set_defaults(func=cmd_demo)

    x = sub.add_parser(
        "export",
        help="write trained embeddings as an OpenUAS release dataset",
        description=(
            "Write RELEASE/japan_city/geojson/NAME.geojson (code, vector, 5/10/20cluster, mesh_size, is_complemented) "
            "and RELEASE/japan_city/model/NAME.pth. Needs embeddings keyed by JIS mesh code."
        ),
    )
    x.add_argument("embeddings", help="a folder written by 'train'")
    x.add_argument("--release", required=True, metavar="DIR")
    x.add_argument("--name", required=True)
    x.add_argument("--overwrite", action="store_true", help="replace a dataset of that name already in the release")
    x.set_defaults(func=cmd_export)

    st = sub.add_parser(
        "stays",
        help="detect stays in raw GPS fixes",
        description=(
            "Read fixes (CSV or Parquet: a person, a time, latitude, longitude; a file without a person column is one person, "
            "named by the file; folders are read whole), detect stays (fixes within DISTANCE of a run's first fix for at least "
            "MIN_DURATION; arrival = first fix, duration = last - first) and write the stay table: stay_time, day_of_week, "
            "arrival_time, is_holiday, user_id, lat, lon, code_50m, code_250m, arrival, departure, n_fixes. "
            "With --privacy N the output is the training table instead (code, mesh_size; meshes with more than N people)."
        ),
    )
    st.add_argument("gps", nargs="+", help="fix files or folders of them")
    st.add_argument("--out", required=True, metavar="STAYS", help="output .csv or .parquet")
    st.add_argument("--user-col", help="person column (default: user_id / user / uid ...; none: the file name)")
    st.add_argument("--time-col", help="time column: ISO 8601 text or epoch seconds (default: timestamp / datetime / time)")
    st.add_argument("--date-col", help="a separate date column joined before the time (default: 'date' when present)")
    st.add_argument("--lat-col", help="latitude column (default: lat / latitude)")
    st.add_argument("--lon-col", help="longitude column (default: lon / lng / longitude)")
    add_columns_argument(st)
    knobs.TIME_ZONE.add_to(st, "--tz")
    knobs.STAY_RADIUS.add_to(st, "--distance")
    knobs.MIN_STAY.add_to(st, "--min-duration")
    knobs.MAX_GAP.add_to(st, "--max-gap")
    knobs.MAX_SPEED.add_to(st, "--max-speed")
    st.add_argument(
        "--marker-col",
        default="auto",
        help="logger on/off marker column (default: 'Type' when it holds only 0/-2/-4; 'none' for none)",
    )
    st.add_argument(
        "--off-values", type=int, nargs="+", default=[-4], help="marker values meaning 'logger switched off' (default -4)"
    )
    knobs.COUNTRY.add_to(st, "--country")
    st.add_argument(
        "--privacy",
        type=knobs.MIN_USERS._parse,
        default=None,
        metavar="N",
        help="apply the mesh privacy rule (more than N people) and write the training table",
    )
    add_engine_options(st)
    st.set_defaults(func=cmd_stays)

    ms = sub.add_parser(
        "meshes",
        help="assign stays to 50 m / 250 m meshes under the privacy rule",
        description=(
            "Read a stay table with user_id and lat/lon (or code_50m), keep 50 m meshes with more than N people, move the rest "
            "to their 250 m mesh under the same rule, drop what is left, and write SPEC columns plus code and mesh_size "
            "(no person or position columns)."
        ),
    )
    ms.add_argument("stays", help="stay table from 'stays' (.csv or .parquet)")
    ms.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    knobs.MIN_USERS.add_to(ms, "--min-users", metavar="N")
    add_engine_options(ms)
    ms.set_defaults(func=cmd_meshes)

    ad = sub.add_parser(
        "add-dataset",
        help="train your stays (or raw GPS) into the 'user' release of a data folder",
        description=(
            "Validate INPUTS (a stay table with 'code', or with 'mesh_id' plus --mapping; or raw GPS files, detected by their "
            "columns and turned into stays with the privacy rule), train them anchored to an installed release's anchor set "
            "(or --free) and write DATA/user/japan_city/{geojson,model,metrics}/NAME_PERIOD.*; the GeoJSON is written last, "
            "so a killed run leaves no dataset."
        ),
    )
    TrainRequest.add_arguments(ad)
    ad.set_defaults(func=cmd_add_dataset)

    from core.walkers.cli import add_parser as add_walkers_parser

    add_walkers_parser(sub)
    add_counts_parser(sub)

    from core.regions.cli import add_parser as add_regions_parser

    add_regions_parser(sub)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings from the library as one line on stderr (``warning: ...``), like errors."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input of any kind ends in one line on stderr and exit status 2."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.func(args) or 0)
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a file that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
