"""The single-machine path of the ``counts`` step (and the reference the Dask path must equal)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.mobility.gps import GpsOptions
from core.mobility.privacy import MIN_USERS
from core.mobility.stays import AreaCounts


def read_stay_frames(files: list[Path]) -> pd.DataFrame:
    """Stay tables read whole (as the single-machine ``meshes`` step reads one) and stacked."""
    from core.distributed.kernels import Chunk, stays_chunk

    frames = []
    for k, f in enumerate(files):
        if f.suffix.lower() in (".parquet", ".pq"):
            frames.append(pd.read_parquet(f))
        else:
            frames.append(stays_chunk(Chunk(str(f), k)))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def local_counts(
    paths: list[str | Path] | str | Path, min_users: int = MIN_USERS, gps: GpsOptions | None = None
) -> tuple[AreaCounts, dict]:
    """Stay tables (or GPS files) -> per-mesh token counts under the privacy rule, in this process.

    Returns:
        The counts and a report (plain data).

    Raises:
        InputError: for bad input (file, column, rows).
    """
    from core.distributed.kernels import input_files
    from core.mobility.gps import gps_to_stays, looks_like_gps, read_columns
    from core.mobility.privacy import apply_privacy
    from core.mobility.stays import stays_from_frame

    files = input_files(paths)
    report: dict = {"files": [f.name for f in files]}
    if gps is not None or looks_like_gps(read_columns(files[0])):
        as_given: list[str | Path] = list(files)
        stays, gps_report = gps_to_stays(as_given, gps or GpsOptions())
        report["stays"] = gps_report["stays"]
    else:
        stays = read_stay_frames(files)
    table, priv = apply_privacy(stays, min_users, source=files[0].name)
    report["privacy"] = priv
    counts = stays_from_frame(table, files[0].name).to_counts()
    report["counts"] = {"meshes": counts.n_areas, "stays": counts.n_stays}
    return counts, report
