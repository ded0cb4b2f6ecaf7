"""Thread counts set deliberately: torch beside numpy/numba on a small machine.

Measured here (NOTES): with torch's default thread pool on a busy 2-core box, the torch phases of the
demo build slowed 15-20x (oversubscription), numpy phases 2.3x. Again with this module's first rule
(as many threads as cores): 150 epochs of a 6,000-mesh training took 45.8 s with 2 threads and 8.6 s
with 1 at a load average of 12 on 2 cores -- a thread that waits for a core stalls every parallel
step of the others. So the default is the cores *not busy with other work* (:func:`free_cores`),
decided again at every training. Every torch entry point of the library calls :func:`torch_threads`
first.
"""

from __future__ import annotations

import contextlib
import os

ENV = "AREA_THREADS"  # an explicit thread count for torch (e.g. 1 on a shared box)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not on Linux
        return max(os.cpu_count() or 1, 1)


def free_cores(load: float | None = None) -> int:
    """Cores that a new parallel step can have to itself: the available cores less the other work's.

    The 1-minute load average counts runnable processes, this one included (about 1 while it
    computes): on 2 cores, a load up to 1.5 leaves both, a higher one leaves 1.

    Args:
        load: the load average to use (default: the system's; unknown -> every available core).
    """
    cores = available_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on Unix
            return cores
    return max(1, min(cores, int(cores - load + 1.5)))


def torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (and one inter-op thread) and return it.

    Args:
        threads: the count; default: ``$AREA_THREADS`` when set, else :func:`free_cores`, never
            more than the cores available.

    Returns:
        The thread count torch now uses.
    """
    import torch

    if threads is None:
        env = os.environ.get(ENV, "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else free_cores()
    threads = max(1, min(int(threads), available_cores()))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process (torch allows it once, before parallel work)
        torch.set_num_interop_threads(1)
    return threads
