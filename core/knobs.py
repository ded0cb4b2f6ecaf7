"""Every user-facing setting declared once: its default, its range or choices, and its name in messages.

The config dataclasses take their defaults from here, the command line builds its options with
:meth:`Knob.add_to`, and the dashboard's forms and callbacks read :attr:`Knob.low` /
:attr:`Knob.high` / :attr:`Knob.choices` and clamp what the browser sends with :meth:`Knob.clamp`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from core.errors import InputError


@dataclass(frozen=True)
class Knob:
    """One setting.

    Attributes:
        name: the setting's name in messages ("time zone", "number of clusters").
        default: the default value (``None``: unset).
        kind: ``int``, ``float`` or ``str``.
        help: one line for ``--help`` and form hints (the default is appended).
        low, high: inclusive bounds of numbers (``None``: unbounded on that side).
        choices: the allowed values of a string setting.
        unit: unit shown beside numbers ("m", "min").
    """

    name: str
    default: Any
    kind: type
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    unit: str = ""

    def check(self, value: Any) -> Any:
        """``value`` converted to :attr:`kind` and validated.

        Raises:
            InputError: naming the setting, the value and what is allowed.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.default is None:
                return None
            value = self.default
        try:
            if self.kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                v: Any = int(str(value).strip()) if isinstance(value, str) else int(value)
            elif self.kind is float:
                v = float(value)
                if not math.isfinite(v):
                    raise ValueError
            else:
                v = str(value).strip()
        except (TypeError, ValueError):
            raise InputError(
                self.name, f"{value!r} is not a{'n integer' if self.kind is int else ' number'}", expected=self.allowed()
            ) from None
        if self.choices is not None and v not in self.choices:
            raise InputError(self.name, f"unknown value {v!r}", expected=self.allowed())
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise InputError(self.name, f"{v} is out of range", expected=self.allowed())
        return v

    def clamp(self, value: Any) -> Any:
        """``value`` forced into range (numbers clipped; anything unreadable -> the default).

        For values that come from a browser: never raises.
        """
        if self.choices is not None:
            return value if value in self.choices else self.default
        try:
            v = self.kind(value)
            if self.kind is float and not math.isfinite(v):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            return self.default
        if self.low is not None:
            v = max(v, self.kind(self.low))
        if self.high is not None:
            v = min(v, self.kind(self.high))
        return v

    def allowed(self) -> str:
        """What is allowed, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        what = "an integer" if self.kind is int else "a number" if self.kind is float else "text"
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{what} from {_num(self.low)} to {_num(self.high)}{unit}"
        if self.low is not None:
            return f"{what} of at least {_num(self.low)}{unit}"
        if self.high is not None:
            return f"{what} of at most {_num(self.high)}{unit}"
        return what

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, *flags: str, **kwargs: Any) -> None:
        """Add this setting as a command-line option (validated by :meth:`check`)."""
        default = kwargs.pop("default", self.default)
        shown = "none" if default is None else default
        kwargs.setdefault("metavar", self.unit.upper() if self.unit else None)
        if kwargs["metavar"] is None:
            del kwargs["metavar"]
        parser.add_argument(*flags, type=self._parse, default=default, help=f"{self.help} (default {shown})", **kwargs)

    def _parse(self, text: str) -> Any:
        try:
            return self.check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}"


SCHEDULES = ("exponential", "linear", "constant", "mixed")

# Area2Vec training (SPEC §3-4).
DIM = Knob("embedding size", 8, int, "embedding size when training free (anchored: the anchor set's)", 2, 64)
SEED = Knob("seed", 0, int, "random seed", 0, 2**31 - 1)
EPOCHS = Knob("most epochs", 800, int, "most epochs of the decoder phase (stops earlier once converged)", 1, 1_000_000)
TOL = Knob(
    "tolerance", 2e-5, float, "relative loss improvement over 20 epochs below which training stops (0: never early)", 0.0, 1.0
)
SCHEDULE = Knob("anchor schedule", "exponential", str, "anchor-power schedule", choices=SCHEDULES)
ALPHA = Knob("final anchor power", 0.3, float, "anchor power at the end of the schedule (alpha)", 1e-6, 1.0)

# Anchor sets (SPEC §4; released: 512 anchors with 20,000 records each).
N_ANCHORS = Knob("number of anchors", 512, int, "anchors in the set", 2, 100_000)
ANCHOR_RECORDS = Knob("records per anchor", 20_000, int, "stay records sampled per anchor", 10, 10_000_000)

# The privacy rule (SPEC §8, the OpenUAS rule: a mesh is kept with more than 10 distinct people).
MIN_USERS = Knob("privacy threshold", 10, int, "a mesh is kept when more than N distinct people stay in it", 1, 1_000_000)
PRIVACY_DROP_WARN = Knob(
    "privacy-drop warning", 0.25, float, "warn when the privacy rule drops more than this share of the stays", 0.0, 1.0
)
FEW_MESHES_WARN = Knob(
    "few-meshes warning", 20, int, "warn when a dataset has fewer meshes than this (k is capped by the mesh count)", 1, 1_000_000
)

# Raw GPS -> stays (SPEC §9).
TIME_ZONE = Knob("time zone", "Asia/Tokyo", str, "time zone of times without an offset (an IANA name)")
COUNTRY = Knob("holiday calendar", "JP", str, "country of the holiday calendar, an ISO code (JP: jpholiday)")
STAY_RADIUS = Knob(
    "stay radius", 100.0, float, "a stay's fixes lie within this distance of its first fix", 1.0, 100_000.0, unit="m"
)
MIN_STAY = Knob("shortest stay", 5.0, float, "shortest stay", 0.0, 1440.0, unit="min")
MAX_GAP = Knob(
    "longest gap", None, float, "no stay spans a longer gap between fixes (none: any gap)", 0.0, 10_000_000.0, unit="min"
)
MAX_SPEED = Knob("spike speed", 100.0, float, "a fix reached and left faster than this is a spike", 1.0, 1_000_000.0, unit="m/s")

# Period diffs: the pattern change (JS divergence, natural log, at most ln 2 = 0.69) above which a
# mesh counts as changed; the diff view's slider spans this range on a log scale.
CHANGE_THRESHOLD = Knob(
    "change threshold", None, float, "pattern change above which a mesh is changed (none: decided from the data)", 1e-4, 1.0
)
DIFF_COLOUR = Knob(
    "diff colouring",
    "change",
    str,
    "what colours period B of a diff: pattern changed or not, embedding distance to A, or B's cluster",
    choices=("change", "distance", "cluster"),
)

# The app: the largest browser upload (bigger files go into DATA/inbox/ and are picked from a list).
UPLOAD_CAP = Knob(
    "upload cap", 50.0, float, "largest browser upload; bigger files go into DATA/inbox/", 0.001, 100_000.0, unit="MB"
)

# The web server (`python app.py --workers / --timeout`): processes sharing the port, and how long one request may run.
WORKERS = Knob(
    "server processes",
    2,
    int,
    "server processes sharing the port, each with its own threads and caches (1 on Windows)",
    1,
    32,
)
REQUEST_TIMEOUT = Knob(
    "request timeout",
    180.0,
    float,
    "a request still running after this long gets HTTP 503 (its work finishes in the background); above the "
    "upload preview's 120 s",
    0.01,
    3600.0,
    unit="s",
)

# The demo release (core.simulation.demo.SCALES holds each scale's sizes): `python -m core demo --scale`, `app.py --demo-scale`.
DEMO_SCALE = Knob(
    "demo scale",
    "default",
    str,
    "size of the demo release: quick (3 small datasets), tiny / small (23 small datasets), default, full (the real release's size)",
    choices=("quick", "tiny", "small", "default", "full"),
)

# Clustering and similar areas (SPEC §7).
K = Knob("number of clusters", 10, int, "k of k-means", 2, 50)
TOP = Knob("number of matches", 10, int, "matches to list", 1, 1000)

# Similar areas on the map: the matches to a selected mesh are its nearest percent of meshes, its
# nearest N, or every mesh within a distance (the OpenUAS distance classes up to it).
MATCH_BY = Knob(
    "similar areas by",
    "percent",
    str,
    "matches of a mesh: the nearest percent of meshes, the nearest N, or all within a distance",
    choices=("percent", "rank", "distance"),
)
MATCH_PERCENT = Knob("top percent", 1.0, float, "matches: this percentage of meshes, the nearest", 0.01, 100.0, unit="%")
MATCH_RANK = Knob("top matches", 100, int, "matches: this many meshes, the nearest", 1, 1_000_000)
# No fixed default distance: embeddings are not on one scale (the OpenUAS class edges 2 / 4 / 8 / 16
# took in every mesh of the demo, where the nearest meshes lie at 0.25-0.5), so an unset distance is
# the clicked mesh's own top MATCH_PERCENT.default % distance (dashboard.views.map.resolve_threshold).
MATCH_DISTANCE = Knob(
    "largest distance",
    None,
    float,
    "matches: meshes within this embedding distance, coloured by OpenUAS distance class; unset: the distance of "
    "the clicked mesh's top 1 %",
    0.0,
    1e6,
)

# What "similar" means: stay patterns (the Hellinger distance between the stay distributions the
# meshes' models predict, 0 = the same pattern, 1 = nothing in common; robust across independently
# trained anchored datasets, like the joint clusters) or the embeddings (Euclidean distance, the
# OpenUAS definition). A search falls back to embedding distance when a dataset it reads has no model file.
SIMILARITY_SPACE = Knob(
    "similarity space",
    "pattern",
    str,
    "similar areas by stay pattern (Hellinger distance of predicted stay distributions) or by embedding (Euclidean "
    "distance); embedding where a dataset has no model file",
    choices=("pattern", "embedding"),
)
