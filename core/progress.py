"""One progress type for every long-running step (trainers, the demo build, jobs) and its terminal view.

Reporters call a ``progress`` callback with :class:`Progress` values: plain, frozen data that pickles
into a Dash background job's cache and round-trips through a job's JSON status file. They never
print; :class:`TerminalProgress` is the one renderer for the command line.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class Progress:
    """A progress report.

    Attributes:
        stage: what runs now (``"decoder"``, ``"embed"``, ``"anchors"``, ``"simulate"``, ...).
        step: steps done in this stage.
        total: the most steps this stage may take (>= 1).
        loss: the current training loss, where there is one.
        elapsed: seconds since the reporter started.
        message: a short human-readable line about this step.
        fraction: share of the whole job done (0..1), when the reporter knows it.
        eta: seconds the whole job still needs, when the reporter can estimate it.
        anchor_power: anchored Area2Vec only: the anchor power ``p`` of this step.
    """

    stage: str
    step: int
    total: int
    loss: float | None = None
    elapsed: float = 0.0
    message: str = ""
    fraction: float | None = None
    eta: float | None = None
    anchor_power: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        """The report from :meth:`to_dict`'s output (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


ProgressFn = Callable[[Progress], None]
_WHOLE = "\0whole job"  # the stage key of the one whole-job bar


class EtaClock:
    """Seconds a job still needs, from its measured rate (share done per second), never from a fixed guess.

    The rate is the share done over the time it took, measured from the first report (a job's
    set-up before its first step does not count); nothing is estimated before ``min_fraction``
    of the job and ``min_seconds`` of measurement, when the rate is still noise.

    Example:
        >>> clock = EtaClock()
        >>> clock.update(0.0, 0.0), clock.update(0.25, 10.0)
        (None, 30.0)
    """

    def __init__(self, min_fraction: float = 0.02, min_seconds: float = 2.0) -> None:
        self.min_fraction = min_fraction
        self.min_seconds = min_seconds
        self._start: tuple[float, float] | None = None  # (elapsed, fraction) of the first report
        self._best = 0.0

    def update(self, fraction: float, elapsed: float) -> float | None:
        """The ETA (seconds) after a report of ``fraction`` (0..1) done at ``elapsed`` seconds.

        A fraction that goes back (a stage's estimate corrected) counts as the highest seen so far.
        """
        if not math.isfinite(fraction) or not math.isfinite(elapsed):
            return None
        f = min(max(fraction, 0.0), 1.0)
        if self._start is None:
            self._start = (elapsed, f)
        self._best = max(self._best, f)
        if self._best >= 1.0:
            return 0.0
        t0, f0 = self._start
        done, seconds = self._best - f0, elapsed - t0
        if self._best < self.min_fraction or done <= 0 or seconds < self.min_seconds:
            return None
        return (1.0 - self._best) * seconds / done


def format_seconds(seconds: float | None) -> str:
    """``"1 min 05 s"``, ``"42 s"`` or ``"2 h 03 min"`` (``""`` for ``None``)."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


_ABS_PATH = re.compile(r"""(?<![\w.~])(?:[A-Za-z]:)?[/\\](?:[^\s'"/\\:,;()]+[/\\])+([^\s'"/\\:,;()]*)""")


def public_message(error: BaseException | str) -> str:
    """An error as one line for a web page: no traceback, no server paths (each kept as its last name).

    Example:
        >>> public_message(OSError("No space left on device: '/srv/data/.demo.tmp/stays/x.parquet'"))
        "OSError: No space left on device: 'x.parquet'"
    """
    if isinstance(error, BaseException):
        from core.errors import CoreError

        text = str(error) if isinstance(error, CoreError) and str(error) else f"{type(error).__name__}: {error}"
    else:
        text = error
    lines = [line.strip() for line in text.splitlines() if line.strip()] or ["unknown error"]
    # A traceback ends with the exception's own line; anything else starts with its point.
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return _ABS_PATH.sub(lambda m: m.group(1) or "...", line)[:500]


class StatusFile:
    """A progress callback that keeps a job's latest state in a small JSON file, for another process to read.

    The file is replaced atomically (a reader never sees half a file) at most every ``interval``
    seconds, and always on a stage change and at the end. Keys: ``state`` (``"running"``,
    ``"done"`` or ``"failed"``), ``updated`` (epoch seconds), the last :class:`Progress` as a dict
    under ``progress``, and ``error`` (see :func:`public_message`) when it failed.
    """

    def __init__(self, path: str | Path, interval: float = 0.25) -> None:
        self.path = Path(path)
        self.interval = interval
        self._last_write = -math.inf
        self._stage: str | None = None
        self._latest: Progress | None = None

    def __call__(self, p: Progress) -> None:
        self._latest = p
        now = time.monotonic()
        if p.stage != self._stage or now - self._last_write >= self.interval:
            self._stage = p.stage
            self._last_write = now
            self._write("running")

    def done(self) -> None:
        """Record that the job finished."""
        self._write("done")

    def fail(self, error: BaseException | str) -> None:
        """Record that the job failed, with :func:`public_message` of ``error``."""
        self._write("failed", public_message(error))

    def _write(self, state: str, error: str | None = None) -> None:
        data = {
            "state": state,
            "updated": time.time(),
            "progress": None if self._latest is None else self._latest.to_dict(),
            "error": error,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


def read_status(path: str | Path) -> dict[str, Any] | None:
    """What a :class:`StatusFile` last wrote (``None`` when there is no file, or not a readable one yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fanout(*callbacks: ProgressFn | None) -> ProgressFn:
    """One progress callback calling each of ``callbacks`` (``None`` entries skipped)."""
    live = [c for c in callbacks if c is not None]

    def call(p: Progress) -> None:
        for c in live:
            c(p)

    return call


class TerminalProgress:
    """Render :class:`Progress` reports on stderr (when it is a terminal).

    Reports with a ``fraction`` of the whole job share one bar in percent, with the stage, what it
    is at and the ETA beside it; other reports get one tqdm bar per stage (steps of that stage).
    Use as a callback and close it when done (or use it as a context manager).
    """

    def __init__(self, desc: str, enabled: bool = True, file: TextIO | None = None) -> None:
        self.desc = desc
        self.file = file or sys.stderr
        # Bars only on a terminal: in logs, pipes and tests they would be noise around the real output.
        self.enabled = enabled and bool(getattr(self.file, "isatty", lambda: False)())
        self._bar: Any = None
        self._stage: str | None = None

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if p.fraction is not None:
            self._whole(p)
            return
        if p.stage != self._stage or self._bar is None or self._stage is _WHOLE:
            self.close()
            self._stage = p.stage
            self._bar = tqdm(total=max(p.total, 1), desc=f"{self.desc}: {p.stage}", unit="step", file=self.file, leave=False)
        self._bar.total = max(p.total, 1)
        self._bar.n = min(p.step, self._bar.total)
        post: dict[str, str] = {}
        if p.loss is not None:
            post["loss"] = f"{p.loss:.5f}"
        if p.anchor_power is not None:
            post["p"] = f"{p.anchor_power:.3f}"
        if p.message:
            post["at"] = p.message[:40]
        self._bar.set_postfix(post, refresh=False)
        self._bar.refresh()

    def _whole(self, p: Progress) -> None:
        from tqdm import tqdm

        if self._stage is not _WHOLE or self._bar is None:
            self.close()
            self._stage = _WHOLE
            fmt = "{desc} {percentage:3.0f}%|{bar}| {postfix}"
            self._bar = tqdm(total=1000, desc=self.desc, file=self.file, leave=False, bar_format=fmt)
        self._bar.n = int(min(max(p.fraction or 0.0, 0.0), 1.0) * 1000)
        eta = format_seconds(p.eta) if p.eta is not None else "estimating"
        at = f" ({p.message[:48]})" if p.message else ""
        self._bar.set_postfix_str(f"{p.stage}{at}, elapsed {format_seconds(p.elapsed)}, ETA {eta}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
