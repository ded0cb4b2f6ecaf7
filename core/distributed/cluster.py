"""Connect to a Dask cluster: an existing scheduler, or a local cluster started for one run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from core.distributed.options import EngineOptions
from core.errors import CoreError


@contextlib.contextmanager
def dask_client(options: EngineOptions) -> Iterator[Any]:
    """Yield a ``distributed.Client``: to ``options.scheduler`` when given, else to a fresh local cluster.

    The local cluster has ``options.workers`` processes with one thread each (the kernels are
    numpy / numba, single-threaded) and no dashboard; it is shut down on exit. Scripts that start
    it need an ``if __name__ == "__main__":`` guard (worker processes are spawned).

    Raises:
        CoreError: when the scheduler cannot be reached within ``options.connect_timeout`` seconds.
    """
    from distributed import Client, LocalCluster

    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout=f"{options.connect_timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise CoreError(
                f"cannot reach the Dask scheduler at {options.scheduler} within {options.connect_timeout:g} s: {exc}"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    import logging

    # The scheduler of a local cluster runs in this process: keep its routine shuffle notices off the terminal.
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    workers = options.workers or os.cpu_count() or 1
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
