"""Connect to a Dask cluster: an existing scheduler, or a local cluster started for one run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from core.distributed.options import EngineOptions
from core.errors import CoreError

# A local cluster's housekeeping, made rarer: its scheduler and nannies share this process with the
# client, and their timers cost CPU for every second a run lasts. Workers sample their own stacks every
# 10 ms for Dask's dashboard profile, which nobody looks at here (a cluster started with `dask worker`
# keeps its own settings: DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False does the same there).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


@contextlib.contextmanager
def dask_client(options: EngineOptions) -> Iterator[Any]:
    """Yield a ``distributed.Client``: to ``options.scheduler`` when given, else to a fresh local cluster.

    The local cluster has ``options.workers`` processes with one thread each (the kernels are
    numpy / numba, single-threaded) and no dashboard; it is shut down on exit. Scripts that start
    it need an ``if __name__ == "__main__":`` guard (worker processes are spawned).

    Raises:
        CoreError: when the scheduler cannot be reached within ``options.connect_timeout`` seconds.
    """
    import dask
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
        dask.config.set(LOCAL_CLUSTER_CONFIG),
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
