"""Short names for clusters, derived from their pooled stay pattern by documented rules.

The OpenUAS paper names its clusters by hand ("office", "residential", ...). Here a cluster's name
describes what its stays look like, from the sum of its meshes' token distributions (168 tokens:
day type x 2-hour arrival bin x duration class, SPEC §2), so that the same name means the same
pattern in every city and period of a shared space:

1. **Day**: the share of weekend/holiday stays per day (holiday tokens divided by 2 days, weekday
   tokens by 5): below 35 % "weekday", above 60 % "weekend", else "all-week".
2. **Arrival**: the 4-hour band with most arrivals: night (22-4 h), early morning (4-6 h), morning
   (6-10 h), midday (10-14 h), afternoon (14-18 h), evening (18-22 h).
3. **Duration**: the most common duration class: < 30 min, 30-60 min, 1-2 h, 2-4 h, 4-6 h, 6-12 h,
   > 12 h.
4. Phrases: a weekday morning arrival staying 4 h or more reads "weekday office hours, 6-12 h";
   an evening or night arrival staying 6 h or more reads "<day> nights, > 12 h"; otherwise
   "<day> <band>s, <duration>" (e.g. "weekend afternoons, 1-2 h").
5. Names are unique within a clustering: clusters that would share a name get their second most
   common duration added ("..., 1-2 h (also 2-4 h)"), then a number in cluster order.
"""

from __future__ import annotations

import numpy as np

from core.constants import N_DAY_TYPES, N_DURATIONS, N_TIME_BINS, N_TOKENS
from core.errors import ParameterError

DURATIONS = ("< 30 min", "30-60 min", "1-2 h", "2-4 h", "4-6 h", "6-12 h", "> 12 h")
# 2-hour arrival bins -> bands (bin b covers hours 2b .. 2b+2).
_BAND_OF_BIN: tuple[str, ...] = ("night", "night", "early morning", "morning", "morning", "midday", "midday")
_BAND_OF_BIN += ("afternoon", "afternoon", "evening", "evening", "night")
BANDS = ("night", "early morning", "morning", "midday", "afternoon", "evening")
_PLURAL = {"night": "nights", "early morning": "early mornings", "morning": "mornings", "midday": "middays"}
_PLURAL |= {"afternoon": "afternoons", "evening": "evenings"}


def pattern_parts(distribution: np.ndarray) -> tuple[str, str, int, int]:
    """Day word, arrival band, top and second duration class of a pooled 168-token distribution."""
    f = np.asarray(distribution, dtype=np.float64).reshape(N_DAY_TYPES, N_TIME_BINS, N_DURATIONS)
    total = f.sum()
    if total <= 0:
        return "", "", -1, -1
    per_day = f.sum(axis=(1, 2)) / np.array([5.0, 2.0])
    weekend = per_day[1] / per_day.sum()
    day = "weekday" if weekend < 0.35 else "weekend" if weekend > 0.60 else "all-week"
    by_bin = f.sum(axis=(0, 2))
    bands = {b: 0.0 for b in BANDS}
    for i, band in enumerate(_BAND_OF_BIN):
        bands[band] += by_bin[i]
    band = max(BANDS, key=lambda b: bands[b])
    dur = f.sum(axis=(0, 1))
    order = np.argsort(-dur, kind="stable")
    return day, band, int(order[0]), int(order[1])


def name_pattern(distribution: np.ndarray) -> str:
    """The name of one pooled distribution (rules 1-4 of the module docstring)."""
    day, band, dur, _ = pattern_parts(distribution)
    if dur < 0:
        return "no stays"
    if day == "weekday" and band in ("early morning", "morning") and dur >= 4:
        return f"weekday office hours, {DURATIONS[dur]}"
    if band in ("evening", "night") and dur >= 5:
        return f"{day} nights, {DURATIONS[dur]}"
    return f"{day} {_PLURAL[band]}, {DURATIONS[dur]}"


def name_clusters(pooled: np.ndarray) -> list[str]:
    """Unique names of clusters from their pooled distributions ``(k, 168)`` (all five rules).

    Empty clusters are named "empty cluster <c>".
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    if pooled.ndim != 2 or pooled.shape[1] != N_TOKENS:
        raise ParameterError(f"pooled distributions must be k x {N_TOKENS}, got {pooled.shape}")
    names = [name_pattern(p) if p.sum() > 0 else f"empty cluster {c}" for c, p in enumerate(pooled)]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    for c, n in enumerate(names):
        if counts[n] > 1 and not n.startswith("empty"):
            second = pattern_parts(pooled[c])[3]
            names[c] = f"{n} (also {DURATIONS[second]})"
    seen: dict[str, int] = {}
    for c, n in enumerate(names):
        if names.count(n) > 1:
            seen[n] = seen.get(n, 0) + 1
            names[c] = f"{n} #{seen[n]}"
    return names
