"""One progress type for every long-running step (trainers, the demo build, jobs) and its terminal view.

Reporters call a ``progress`` callback with :class:`Progress` values: plain, frozen data that pickles
into a Dash background job's cache and round-trips through a job's JSON status file. They never
print; :class:`TerminalProgress` is the one renderer for the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
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


class TerminalProgress:
    """Render :class:`Progress` reports as one tqdm bar per stage on stderr (when it is a terminal).

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

        if p.stage != self._stage or self._bar is None:
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

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
