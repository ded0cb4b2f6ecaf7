"""Thread counts set deliberately: torch beside numpy/numba on a small machine.

Measured here (NOTES): with torch's default thread pool on a busy 2-core box, the torch phases of the
demo build slowed 15-20x (oversubscription), numpy phases 2.3x. Every torch entry point of the
library calls :func:`torch_threads` first.
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


def torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (and one inter-op thread) and return it.

    Args:
        threads: the count; default: ``$AREA_THREADS`` when set, else the cores available, never more.

    Returns:
        The thread count torch now uses.
    """
    import torch

    if threads is None:
        env = os.environ.get(ENV, "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else available_cores()
    threads = max(1, min(int(threads), available_cores()))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process (torch allows it once, before parallel work)
        torch.set_num_interop_threads(1)
    return threads
