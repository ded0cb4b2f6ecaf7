"""GPS -> stays -> meshes -> token counts on a Dask cluster, with the single-machine path's results.

1. Fixes are read in chunks (byte ranges of a CSV, or a few Parquet row groups) by the workers and hashed
   by person into partitions (Dask's shuffle), so each person's fixes meet in one partition
   whatever file they came from; each partition is sorted and scanned by the compiled scan.
2. The privacy rule needs only the distinct (50 m mesh, 250 m mesh, person) rows of the stays.
   They are hashed by 250 m mesh, so a 250 m mesh and its 50 m children meet in one partition
   and the rule is decided there; only the kept meshes come back to the client.
3. Every partition of stays is assigned to the kept meshes and counted into (mesh, token) pairs;
   the partial counts are summed in a tree (at most meshes x 168 integers move).

Outputs are written by the client to a temporary name beside the target and renamed at the end,
so a run that fails (a bad row, a worker that dies for good) leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd

from core import knobs
from core.distributed import kernels as K
from core.distributed.options import EngineOptions
from core.errors import CoreError, InputError
from core.mobility.gps import GpsOptions, _check_tz
from core.mobility.privacy import MIN_USERS, KeptMeshes
from core.progress import Progress

ProgressFn = Callable[[Progress], None]
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Run:
    """Stays held on the cluster (a frame over the ``futures``) and what the run has counted (plain data in ``report``)."""

    stays: Any
    futures: list
    source: str
    report: dict = field(default_factory=dict)


class _Reporter:
    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, step: int, total: int, message: str = "") -> None:
        if self.progress is not None:
            self.progress(Progress(stage, step, max(total, 1), elapsed=time.perf_counter() - self.t0, message=message))

    def track(self, client: Any, futures: list, stage: str) -> None:
        """Report each finished future of a stage (errors surface when the results are gathered)."""
        from distributed import as_completed

        total = len(futures)
        self(stage, 0, total)
        for i, _ in enumerate(as_completed(futures), 1):
            self(stage, i, total)


def _same_dtypes(fn: _F) -> _F:
    """Build Dask graphs without Dask's conversion of text columns to Arrow strings (frames keep pandas' own dtypes)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import dask

        with dask.config.set({"dataframe.convert-string": False}):
            return fn(*args, **kwargs)

    return cast(_F, wrapper)


def _failures() -> tuple[type[BaseException], ...]:
    from distributed.scheduler import KilledWorker

    return (KilledWorker,)


def _gather(client: Any, futures: Any) -> Any:
    """``client.gather`` with cluster failures turned into :class:`CoreError` (input errors pass unchanged)."""
    try:
        return client.gather(futures)
    except CoreError:
        raise
    except _failures() as exc:
        raise CoreError(f"a Dask worker died while running the step and the task could not be retried: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("distributed"):
            raise CoreError(f"the Dask run failed: {type(exc).__name__}: {exc}") from exc
        raise


def _persist(client: Any, frame: Any, stage: str, report: _Reporter) -> tuple[Any, list]:
    """Compute a frame's partitions on the cluster and return a frame made of the held results.

    The new frame is built from the futures themselves: a frame merely persisted is re-planned by
    Dask's optimiser when used again, and its partitions were computed a second time.
    """
    import dask.dataframe as dd
    from distributed import futures_of, wait

    meta = frame._meta
    futures = futures_of(client.persist(frame))
    report.track(client, futures, stage)
    wait(futures)
    bad = [f for f in futures if f.status == "error"]
    if bad:
        _gather(client, bad[:1])
    return dd.from_delayed(futures, meta=meta, verify_meta=False), futures


@_same_dtypes
def gps_stays(
    client: Any,
    paths: list[str | Path] | str | Path,
    options: GpsOptions = GpsOptions(),
    engine: EngineOptions = EngineOptions(engine="dask"),
    progress: ProgressFn | None = None,
) -> Run:
    """Detect stays in GPS files on the cluster and keep them there (persisted, partitioned by person).

    Raises:
        InputError: for a missing file, column or bad value (as the single-machine reader).
    """
    import dask.dataframe as dd

    _check_tz(options.tz)
    files = K.input_files(paths)
    chunks = K.input_chunks(files, engine.chunk_rows)
    report = _Reporter(progress)
    nparts = engine.partitions or len(chunks)
    codes = K.names_as_codes(chunks, nparts, options)
    fixes = dd.from_map(K.read_fix_chunk, chunks, options=options, codes=codes, meta=K.fix_meta(codes), enforce_metadata=False)
    by_person = fixes.shuffle(on=K.USER, npartitions=nparts, shuffle_method=engine.shuffle)
    stays = by_person.map_partitions(K.stays_from_partition, options, meta=K.stays_meta(options), enforce_metadata=False)
    stays, futures = _persist(client, stays, "stays", report)
    info = {
        "files": [f.name for f in files],
        "chunks": len(chunks),
        "partitions": nparts,
        "people_as": "codes" if codes else "text",
    }
    return Run(stays, futures, files[0].name, info)


@_same_dtypes
def stay_files(
    client: Any,
    paths: list[str | Path] | str | Path,
    engine: EngineOptions = EngineOptions(engine="dask"),
    progress: ProgressFn | None = None,
) -> Run:
    """Read stay tables (CSV / Parquet files, folders, globs) onto the cluster (persisted)."""
    import dask.dataframe as dd

    files = K.input_files(paths)
    chunks = K.input_chunks(files, engine.chunk_rows)
    meta = K.stays_chunk(K.Chunk(str(files[0]), 0, (), 0)) if files[0].suffix.lower() in (".parquet", ".pq") else None
    if meta is None:
        meta = pd.read_csv(files[0], nrows=1000).iloc[:0]
    stays = dd.from_map(K.stays_chunk, chunks, meta=meta, enforce_metadata=False)
    stays, futures = _persist(client, stays, "read", _Reporter(progress))
    return Run(stays, futures, files[0].name, {"files": [f.name for f in files], "chunks": len(chunks)})


@_same_dtypes
def kept_meshes_dask(
    client: Any, run: Run, min_users: int = MIN_USERS, progress: ProgressFn | None = None, shuffle: str = "p2p"
) -> KeptMeshes:
    """The privacy rule on the cluster: distinct (mesh, person) rows hashed by 250 m mesh, decided per partition."""
    min_users = knobs.MIN_USERS.check(min_users)  # the one rule: an integer >= 1, as the CLI, the UI and the demo
    pairs = run.stays.map_partitions(
        K.pair_frame, run.source, meta=K.pair_frame(run.stays._meta, run.source), enforce_metadata=False
    )
    nparts = max(1, run.stays.npartitions)
    kept = pairs.shuffle(on=K.C250, npartitions=nparts, shuffle_method=shuffle).map_partitions(
        K.kept_from_pairs, min_users, meta=K.kept_meta(), enforce_metadata=False
    )
    _, futures = _persist(client, kept, "privacy", _Reporter(progress))
    frame = pd.concat(_gather(client, futures), ignore_index=True)
    result = K.kept_from_frame(frame)
    run.report["privacy"] = {
        "min_users": int(min_users),
        "meshes_50m": len(result.codes50),
        "meshes_250m": len(result.codes250),
    }
    return result


@_same_dtypes
def training_frame(client: Any, run: Run, kept: KeptMeshes) -> Any:
    """The training rows of every partition (a lazy Dask frame; write it with :func:`write_frame`)."""
    import dask

    kept_d = dask.delayed(kept, pure=True)
    meta = K.training_partition(run.stays._meta, KeptMeshes(kept.codes50[:0], kept.codes250[:0], kept.users_per_mesh[:0]), "")
    return run.stays.map_partitions(K.training_partition, kept_d, run.source, meta=meta, enforce_metadata=False)


@_same_dtypes
def count_frame(
    client: Any, run: Run, kept: KeptMeshes, progress: ProgressFn | None = None, split_every: int = 8
) -> pd.DataFrame:
    """Token counts of the kept meshes: per-partition counts summed in a tree on the cluster."""
    import dask

    kept_d = dask.delayed(kept, pure=True)
    parts = run.stays.map_partitions(K.count_partition, kept_d, run.source, meta=K.count_meta(), enforce_metadata=False)
    parts, _ = _persist(client, parts, "counts", _Reporter(progress))
    level = list(parts.to_delayed())
    if len(level) == 1:
        level = [dask.delayed(K.sum_counts)(level)]
    while len(level) > 1:
        level = [dask.delayed(K.sum_counts)(level[i : i + split_every]) for i in range(0, len(level), split_every)]
    total = _gather(client, client.compute(level[0]))
    run.report["counts"] = {"meshes": int(total[K.MESH_CODE].nunique()), "stays": int(total[K.COUNT].sum())}
    return total


@_same_dtypes
def write_frame(client: Any, frame: Any, out: str | Path, progress: ProgressFn | None = None, stage: str = "write") -> int:
    """Write a Dask frame's partitions, in order, into one CSV or Parquet file (by suffix), atomically.

    The client fetches one partition at a time, so its memory holds a partition, not the table.

    Returns:
        The number of rows written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.atomic import atomic_path, ensure_writable_dir

    out = Path(out)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InputError(str(out), f"unknown output type '{suffix}'", expected="a .csv or .parquet file")
    futures = client.compute(list(frame.to_delayed()))  # in partition order
    report = _Reporter(progress)
    rows = 0
    with atomic_path(out) as tmp:
        writer = None
        report(stage, 0, len(futures))
        for i, fut in enumerate(futures):
            part = _gather(client, fut)
            if suffix == ".csv":
                part.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False)
            elif len(part) or (writer is None and i == len(futures) - 1):  # an empty partition has no types to give
                table = pa.Table.from_pandas(part, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                else:
                    table = table.cast(writer.schema)
                writer.write_table(table)
            rows += len(part)
            report(stage, i + 1, len(futures))
        if writer is not None:
            writer.close()
    return rows


# ---------------------------------------------------------------- whole steps (what the CLI runs)


def _open_run(
    client: Any, paths: list[str | Path], gps: GpsOptions | None, engine: EngineOptions, progress: ProgressFn | None
) -> Run:
    """GPS files (recognised by their columns, or forced by ``gps``) become stays; stay tables are read."""
    from core.mobility.gps import looks_like_gps, read_columns

    files: list[str | Path] = list(K.input_files(paths))
    if gps is not None or looks_like_gps(read_columns(files[0])):
        return gps_stays(client, files, gps or GpsOptions(), engine, progress)
    return stay_files(client, files, engine, progress)


def run_stays(
    paths: list[str | Path],
    out: str | Path,
    gps: GpsOptions = GpsOptions(),
    engine: EngineOptions = EngineOptions(engine="dask"),
    privacy: int | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """GPS files -> stay table file (or, with ``privacy``, the training table) on Dask; returns a report."""
    from core.distributed.cluster import dask_client

    with dask_client(engine) as client:
        run = gps_stays(client, paths, gps, engine, progress)
        frame = run.stays
        if privacy is not None:
            kept = kept_meshes_dask(client, run, privacy, progress, engine.shuffle)
            frame = training_frame(client, run, kept)
        run.report["rows"] = write_frame(client, frame, out, progress)
    return run.report


def run_meshes(
    paths: list[str | Path],
    out: str | Path,
    min_users: int = MIN_USERS,
    engine: EngineOptions = EngineOptions(engine="dask"),
    progress: ProgressFn | None = None,
) -> dict:
    """Stay tables -> training table under the privacy rule on Dask; returns a report."""
    from core.distributed.cluster import dask_client

    with dask_client(engine) as client:
        run = stay_files(client, paths, engine, progress)
        kept = kept_meshes_dask(client, run, min_users, progress, engine.shuffle)
        run.report["rows"] = write_frame(client, training_frame(client, run, kept), out, progress)
    return run.report


def run_counts(
    paths: list[str | Path],
    out: str | Path,
    min_users: int = MIN_USERS,
    engine: EngineOptions = EngineOptions(engine="dask"),
    gps: GpsOptions | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """Stay tables (or GPS files) -> the meshes x 168 count table (Parquet) on Dask; returns a report."""
    from core.distributed.cluster import dask_client

    with dask_client(engine) as client:
        return counts_on(client, paths, out, min_users, engine, gps, progress)


def counts_on(
    client: Any,
    paths: list[str | Path],
    out: str | Path,
    min_users: int = MIN_USERS,
    engine: EngineOptions = EngineOptions(engine="dask"),
    gps: GpsOptions | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """:func:`run_counts` on an open client (the cluster stays up for the next run)."""
    import pyarrow as pa

    from core.mobility.stays import counts_from_table, write_counts

    run = _open_run(client, list(paths), gps, engine, progress)
    kept = kept_meshes_dask(client, run, min_users, progress, engine.shuffle)
    total = count_frame(client, run, kept, progress)
    client.cancel(run.futures)  # free the stays held on the cluster
    if len(total) == 0:
        raise InputError(
            run.source, f"no mesh has more than {min_users} people", expected="stays of more people (or a lower min_users)"
        )
    counts = counts_from_table(pa.Table.from_pandas(total, preserve_index=False), "counts")
    write_counts(counts, out)
    return run.report
