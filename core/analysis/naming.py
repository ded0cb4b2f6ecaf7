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
5. Names are unique within a clustering. Clusters that would share a name get a qualifier in
   brackets from the feature that tells them apart best, chosen per group of equal names among
   (a) the second most common duration ("also 2-4 h"; "only 6-12 h" when the second holds under
   5 % of stays), (b) the share of stays over 12 h ("38 % over 12 h"), (c) the weekend share of
   rule 1 ("56 % weekend"), (d) the second arrival band of rule 2 ("also mornings", or "only
   nights" under 5 %), (e) the busiest 2-hour arrival bin and its share ("62 % arriving 08-10 h")
   and (f) the share of stays under 1 h ("12 % under 1 h"): the feature giving the most different
   qualifiers wins, ties in this order. Clusters still sharing a name are told apart the same way by
   the next feature ("..., 6-12 h (38 % over 12 h; 49 % weekend)").
   Only clusters that no feature tells apart get a number in cluster order ("... #2").
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
# A second duration or arrival band is named ("also ...") from this share of stays; below it the first is "only ...".
_ALSO = 0.05


def _shares(distribution: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, dict[str, float]]:
    """Token shares ``(2, 12, 7)``, weekend share per day, duration shares, arrival-band shares."""
    f = np.asarray(distribution, dtype=np.float64).reshape(N_DAY_TYPES, N_TIME_BINS, N_DURATIONS)
    f = f / f.sum()
    per_day = f.sum(axis=(1, 2)) / np.array([5.0, 2.0])
    weekend = float(per_day[1] / per_day.sum())
    by_bin = f.sum(axis=(0, 2))
    bands = {b: 0.0 for b in BANDS}
    for i, band in enumerate(_BAND_OF_BIN):
        bands[band] += float(by_bin[i])
    return f, weekend, f.sum(axis=(0, 1)), bands


def pattern_parts(distribution: np.ndarray) -> tuple[str, str, int, int]:
    """Day word, arrival band, top and second duration class of a pooled 168-token distribution."""
    if np.asarray(distribution, dtype=np.float64).sum() <= 0:
        return "", "", -1, -1
    _, weekend, dur, bands = _shares(distribution)
    day = "weekday" if weekend < 0.35 else "weekend" if weekend > 0.60 else "all-week"
    band = max(BANDS, key=lambda b: bands[b])
    order = np.argsort(-dur, kind="stable")
    return day, band, int(order[0]), int(order[1])


def qualifiers(distribution: np.ndarray) -> tuple[str, ...]:
    """The qualifiers (a)-(f) of rule 5 for one pooled distribution, in that order."""
    f, weekend, dur, bands = _shares(distribution)
    top_dur, second_dur = (int(i) for i in np.argsort(-dur, kind="stable")[:2])
    top_band, second_band = sorted(BANDS, key=lambda b: -bands[b])[:2]
    by_bin = f.sum(axis=(0, 2))
    peak = int(by_bin.argmax())
    return (
        f"also {DURATIONS[second_dur]}" if dur[second_dur] >= _ALSO else f"only {DURATIONS[top_dur]}",
        f"{round(100 * float(dur[6]))} % over 12 h",
        f"{round(100 * weekend)} % weekend",
        f"also {_PLURAL[second_band]}" if bands[second_band] >= _ALSO else f"only {_PLURAL[top_band]}",
        f"{round(100 * float(by_bin[peak]))} % arriving {2 * peak:02d}-{2 * peak + 2:02d} h",
        f"{round(100 * float(dur[:2].sum()))} % under 1 h",
    )


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
    quals = {c: qualifiers(p) for c, p in enumerate(pooled) if p.sum() > 0}
    extra: dict[int, list[str]] = {c: [] for c in quals}
    _tell_apart([c for c in quals], names, quals, extra)
    names = [f"{n} ({'; '.join(extra[c])})" if extra.get(c) else n for c, n in enumerate(names)]
    counts = {n: names.count(n) for n in names}
    seen: dict[str, int] = {}
    for c, n in enumerate(names):
        if counts[n] > 1:
            seen[n] = seen.get(n, 0) + 1
            names[c] = f"{n} #{seen[n]}"
    return names


def _tell_apart(clusters: list[int], names: list[str], quals: dict[int, tuple[str, ...]], extra: dict[int, list[str]]) -> None:
    """Rule 5: give clusters of equal names (and equal qualifiers so far) the qualifier telling most of them apart."""
    groups: dict[tuple, list[int]] = {}
    for c in clusters:
        groups.setdefault((names[c], *extra[c]), []).append(c)
    for members in groups.values():
        if len(members) < 2:
            continue
        unused = [i for i in range(len(quals[members[0]])) if not any(quals[members[0]][i] == q for q in extra[members[0]])]
        best = max(unused, key=lambda i: len({quals[c][i] for c in members}), default=None)
        if best is None or len({quals[c][best] for c in members}) < 2:
            continue  # no feature tells them apart: numbered
        for c in members:
            extra[c].append(quals[c][best])
        _tell_apart(members, names, quals, extra)
