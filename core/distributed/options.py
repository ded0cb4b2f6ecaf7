"""Where the GPS -> stays -> meshes -> counts steps run: this process, or a Dask cluster (declared once, read by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError

ENGINES = ("local", "dask")
SHUFFLES = ("p2p", "tasks")


@dataclass(frozen=True)
class EngineOptions:
    """How to run a step.

    Attributes:
        engine: ``"local"`` (this process, numpy) or ``"dask"`` (a Dask cluster).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); ``None`` starts a
            local cluster of ``workers`` processes for the run.
        workers: processes of the local cluster (one thread each); ``None`` = the CPU count.
        partitions: partitions the fixes are hashed into by person; ``None`` = one per input chunk.
        chunk_rows: input is read in chunks of about this many rows: groups of Parquet row groups, byte
            ranges of an uncompressed CSV (about 50 bytes a row); a compressed CSV is one chunk.
        connect_timeout: seconds to wait for the scheduler before giving up.
        shuffle: how fixes move to their person's partition: ``"p2p"`` (Dask's peer-to-peer shuffle,
            buffered on the workers' disks: for data larger than the cluster's memory) or
            ``"tasks"`` (in memory, task by task: less overhead on small clusters).
    """

    engine: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    partitions: int | None = None
    chunk_rows: int = 4_000_000
    connect_timeout: float = 10.0
    shuffle: str = "p2p"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError("engine", f"unknown engine {self.engine!r}", expected=" or ".join(ENGINES))
        if self.workers is not None and self.workers < 1:
            raise InputError("workers", f"{self.workers} workers", expected="at least 1")
        if self.partitions is not None and self.partitions < 1:
            raise InputError("partitions", f"{self.partitions} partitions", expected="at least 1")
        if self.chunk_rows < 1:
            raise InputError("chunk_rows", f"{self.chunk_rows} rows per chunk", expected="at least 1")
        if self.shuffle not in SHUFFLES:
            raise InputError("shuffle", f"unknown shuffle {self.shuffle!r}", expected=" or ".join(SHUFFLES))
        if not self.connect_timeout > 0:
            raise InputError("connect_timeout", f"{self.connect_timeout} s", expected="a number of seconds > 0")
