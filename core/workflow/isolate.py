"""Run untrusted parsing (an upload's preview) in a worker process with limits, never in the web process.

The worker is forked from a forkserver (a clean process that never ran torch or the web server), its
address space is capped with ``resource.setrlimit``, and it is killed after ``timeout_s``. Text
inputs are first streamed with :func:`core.mobility.stays.scan_csv` against a cap on (decompressed)
bytes, rows and line length. Whatever happens in the worker, the caller gets the result or one
:class:`~core.errors.InputError` with a clear message.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import CoreError, InputError


@dataclass(frozen=True)
class Limits:
    """What one preview may cost.

    Attributes:
        memory_mb: address-space cap of the worker (``RLIMIT_AS``); Python, numpy, pandas and
            pyarrow themselves take about 1.5 GB of address space here.
        max_bytes: decompressed bytes of text input, all files together.
        max_rows: lines of text input, all files together.
        timeout_s: wall-clock limit of the worker.
    """

    memory_mb: int = 4096
    max_bytes: int = 1 << 30
    max_rows: int = 20_000_000
    timeout_s: float = 120.0


class LimitExceeded(InputError):
    """The input needs more than a preview may use."""


def check_text_inputs(paths: Sequence[str | Path], limits: Limits) -> None:
    """Stream every CSV input against the byte, row and line-length caps (Parquet files are skipped)."""
    from core.mobility.stays import scan_csv

    used_bytes = used_rows = 0
    for p in map(Path, paths):
        if p.suffix.lower() in (".parquet", ".pq"):
            continue
        n_bytes, n_rows = scan_csv(p, p.name, max_bytes=limits.max_bytes - used_bytes, max_rows=limits.max_rows - used_rows)
        used_bytes += n_bytes
        used_rows += n_rows


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict, limits: Limits, paths: Sequence[Path]) -> None:
    import resource

    cap = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        check_text_inputs(paths, limits)
        conn.send(("ok", fn(*args, **kwargs)))
    except InputError as exc:
        conn.send(("error", exc))
    except MemoryError:
        conn.send(("memory", None))
    except CoreError as exc:
        conn.send(("error", InputError("input", str(exc))))
    except Exception as exc:  # anything else a crafted file provokes: a message, not a traceback
        conn.send(("error", InputError("input", f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})")))
    finally:
        conn.close()


def run_limited(
    fn: Callable[..., Any], *args: Any, paths: Sequence[str | Path] = (), limits: Limits | None = None, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` in a fresh worker process under ``limits``; ``fn`` must be a module-level function.

    Raises:
        InputError: what ``fn`` raised, or :class:`LimitExceeded` when the worker ran out of memory
            or time or a text input is above the caps.
    """
    limits = limits or Limits()
    ctx = mp.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs, limits, [Path(p) for p in paths]), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(limits.timeout_s):
            raise LimitExceeded("preview", f"took longer than {limits.timeout_s:g} s", expected="a smaller file")
        try:
            status, value = parent.recv()
        except EOFError:
            status, value = "memory", None  # the worker died (killed for memory)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status == "ok":
        return value
    if status == "memory":
        raise LimitExceeded(
            "preview",
            f"needs more than {limits.memory_mb:,} MB of memory",
            expected="a smaller file (or train it from the command line)",
        )
    raise value
