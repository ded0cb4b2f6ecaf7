"""GPS -> stays -> meshes -> token counts on a Dask cluster, with the same results as the single-machine path.

Dask is imported only by the functions that run on it, so ``import core.distributed`` stays light.
"""

from core.distributed.cluster import dask_client
from core.distributed.local import local_counts
from core.distributed.options import ENGINES, EngineOptions
from core.distributed.pipeline import (
    count_frame,
    counts_on,
    gps_stays,
    kept_meshes_dask,
    run_counts,
    run_meshes,
    run_stays,
    stay_files,
    training_frame,
    write_frame,
)

__all__ = [
    "ENGINES",
    "EngineOptions",
    "count_frame",
    "counts_on",
    "dask_client",
    "gps_stays",
    "kept_meshes_dask",
    "local_counts",
    "run_counts",
    "run_meshes",
    "run_stays",
    "stay_files",
    "training_frame",
    "write_frame",
]
