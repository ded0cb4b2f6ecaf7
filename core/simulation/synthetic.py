"""Synthetic stay tables with a known truth, for tests and benchmarks (vectorised, seeded).

Each area has a latent type (office, residential, station, nightlife, ...) whose stay pattern is
a distribution over the 168 tokens; an area's own distribution is a Dirichlet draw around its
type's, and its number of stays is log-normal. Stays are then drawn token by token and given
concrete arrival times, durations and weekdays consistent with their token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.constants import (
    ARRIVAL_TIME,
    DAY_OF_WEEK,
    DURATION_BOUNDS,
    IS_HOLIDAY,
    MESH_ID,
    N_DURATIONS,
    N_TIME_BINS,
    N_TOKENS,
    STAY_TIME,
    WEEKDAYS,
)

TIMES_OF_DAY = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))

# (name, weekday share, arrival-bin centre (2 h bins), spread, mean duration class)
AREA_TYPES: tuple[tuple[str, float, float, float, float], ...] = (
    ("office", 0.92, 4.3, 0.9, 5.0),
    ("residential", 0.62, 9.5, 1.6, 6.0),
    ("station", 0.72, 6.0, 3.5, 0.3),
    ("nightlife", 0.40, 9.8, 1.0, 2.4),
    ("shopping", 0.45, 6.5, 1.5, 1.6),
    ("park", 0.30, 5.5, 1.4, 1.8),
    ("school", 0.97, 4.0, 0.6, 5.2),
    ("industrial", 0.88, 3.6, 0.8, 5.6),
)


def type_patterns(n_types: int | None = None) -> np.ndarray:
    """Token distributions (``n_types x 168``) of the built-in area types."""
    types = AREA_TYPES[: n_types or len(AREA_TYPES)]
    bins = np.arange(N_TIME_BINS)
    durs = np.arange(N_DURATIONS)
    out = np.zeros((len(types), N_TOKENS))
    for k, (_, weekday_share, centre, spread, dur_mean) in enumerate(types):
        circ = np.minimum(np.abs(bins - centre), N_TIME_BINS - np.abs(bins - centre))
        time_p = np.exp(-0.5 * (circ / spread) ** 2) + 0.02
        dur_p = np.exp(-0.5 * ((durs - dur_mean) / 1.2) ** 2) + 0.02
        for d, share in ((0, weekday_share), (1, 1 - weekday_share)):
            # Holidays shift arrivals later by one bin.
            tp = np.roll(time_p, d)
            block = share * np.outer(tp / tp.sum(), dur_p / dur_p.sum())
            out[k, d * 84 : (d + 1) * 84] = block.ravel()
    return out / out.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class SyntheticCity:
    """A synthetic stay table and its truth.

    Attributes:
        stays: the stay table (SPEC §1 columns, ``mesh_id`` keys).
        area_type: latent type index of each mesh id (``mesh_id`` = position).
        distributions: each mesh's true token distribution (``meshes x 168``).
    """

    stays: pd.DataFrame
    area_type: np.ndarray
    distributions: np.ndarray


def sample_distributions(
    n_meshes: int, seed: int, n_types: int | None = None, concentration: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw each mesh's type and token distribution."""
    rng = np.random.default_rng(seed)
    patterns = type_patterns(n_types)
    area_type = rng.integers(0, len(patterns), n_meshes)
    alpha = patterns[area_type] * concentration + 1e-3
    g = rng.gamma(alpha)
    return area_type, g / g.sum(axis=1, keepdims=True)


def stays_from_tokens(mesh: np.ndarray, tokens: np.ndarray, seed: int) -> pd.DataFrame:
    """Concrete stays (arrival, duration, weekday, holiday) consistent with the given tokens."""
    rng = np.random.default_rng(seed)
    n = len(tokens)
    d, rest = np.divmod(tokens.astype(np.int64), 84)
    b, c = np.divmod(rest, N_DURATIONS)
    minute = b * 120 + rng.integers(0, 120, n)
    lo = np.asarray((0, *DURATION_BOUNDS))[c] + np.where(c > 0, 1, 0)
    hi = np.asarray((*DURATION_BOUNDS, 1440))[c]
    stay = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    stay = np.minimum(stay, hi)
    weekday = np.where(d == 0, rng.integers(0, 5, n), 0)
    # Holiday-type stays: mostly weekends, some national holidays on weekdays.
    on_holiday = (d == 1) & (rng.random(n) < 0.15)
    weekday = np.where((d == 1) & ~on_holiday, rng.integers(5, 7, n), weekday)
    weekday = np.where(on_holiday, rng.integers(0, 5, n), weekday)
    return pd.DataFrame(
        {
            STAY_TIME: stay.astype(np.int64),
            DAY_OF_WEEK: pd.Categorical.from_codes(weekday.astype(np.int8), categories=pd.Index(list(WEEKDAYS))),
            ARRIVAL_TIME: pd.Categorical.from_codes(minute.astype(np.int16), categories=pd.Index(list(TIMES_OF_DAY))),
            IS_HOLIDAY: on_holiday,
            MESH_ID: mesh.astype(np.int64),
        }
    )


def synthetic_city(
    n_meshes: int = 2000,
    mean_stays: float = 200.0,
    seed: int = 0,
    n_types: int | None = None,
    concentration: float = 60.0,
    distributions: np.ndarray | None = None,
    area_type: np.ndarray | None = None,
) -> SyntheticCity:
    """Generate a city of ``n_meshes`` meshes with about ``mean_stays`` stays each.

    Args:
        n_meshes: number of meshes (ids 0..n_meshes-1).
        mean_stays: mean stays per mesh (log-normal, sigma 1, at least 5 per mesh).
        seed: random seed; the same seed gives the same table.
        n_types: use only the first ``n_types`` area types.
        concentration: Dirichlet concentration around the type pattern (larger = purer types).
        distributions, area_type: reuse a city's truth (to draw a second sample of the same city).
    """
    rng = np.random.default_rng(seed + 1)
    if distributions is None or area_type is None:
        area_type, distributions = sample_distributions(n_meshes, seed, n_types, concentration)
    n_meshes = len(distributions)
    sizes = np.maximum(5, rng.lognormal(np.log(mean_stays) - 0.5, 1.0, n_meshes)).astype(np.int64)
    counts = rng.multinomial(sizes, distributions)
    flat = counts.ravel()
    idx = np.repeat(np.arange(flat.size), flat)
    mesh, tokens = np.divmod(idx, N_TOKENS)
    order = rng.permutation(len(mesh))
    stays = stays_from_tokens(mesh[order], tokens[order], seed + 2)
    return SyntheticCity(stays, area_type, distributions)
