"""The 168 stay tokens (SPEC §2) and the meshes x 168 count matrix, all vectorised."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.constants import DURATION_BOUNDS, N_DURATIONS, N_TIME_BINS, N_TOKENS

_BOUNDS = np.asarray(DURATION_BOUNDS, dtype=np.float64)


_DURATION_LUT = np.searchsorted(_BOUNDS, np.arange(DURATION_BOUNDS[-1] + 2), side="left").astype(np.uint8)


def duration_class(stay_time: np.ndarray) -> np.ndarray:
    """Duration class 0..6 of stays given in minutes (inclusive upper bounds 30, 60, ... 720)."""
    stay_time = np.asarray(stay_time)
    if stay_time.dtype.kind in "iu":
        # Integer minutes: one table look-up (minutes > 720 all map to class 6).
        return np.take(_DURATION_LUT, np.minimum(stay_time, DURATION_BOUNDS[-1] + 1))
    return np.searchsorted(_BOUNDS, stay_time, side="left").astype(np.uint8)


def time_bin(arrival_minute: np.ndarray) -> np.ndarray:
    """Two-hour arrival bin 0..11 of arrival times given in minutes after midnight."""
    return (np.asarray(arrival_minute) // 120).astype(np.uint8)


def day_type(weekday: np.ndarray, is_holiday: np.ndarray) -> np.ndarray:
    """1 for Saturday, Sunday (weekday 5, 6 with Monday = 0) or a holiday, else 0."""
    return ((np.asarray(weekday) >= 5) | np.asarray(is_holiday, dtype=bool)).astype(np.uint8)


def make_tokens(stay_time: np.ndarray, arrival_minute: np.ndarray, weekday: np.ndarray, is_holiday: np.ndarray) -> np.ndarray:
    """Token ``84 * day_type + 7 * time_bin + duration_class`` of each stay (uint8, 0..167)."""
    tok = day_type(weekday, is_holiday) * np.uint8(N_TIME_BINS * N_DURATIONS)
    tok += time_bin(arrival_minute) * np.uint8(N_DURATIONS)
    tok += duration_class(stay_time)
    return tok


def token_parts(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split tokens into ``(day_type, time_bin, duration_class)``."""
    tokens = np.asarray(tokens, dtype=np.int64)
    d, rest = np.divmod(tokens, N_TIME_BINS * N_DURATIONS)
    b, c = np.divmod(rest, N_DURATIONS)
    return d, b, c


def count_matrix(area_index: np.ndarray, tokens: np.ndarray, n_areas: int) -> sp.csr_array:
    """Count stays per (area, token) into a sparse ``n_areas x 168`` matrix (float32 values)."""
    flat = np.asarray(area_index, dtype=np.int64) * N_TOKENS
    flat += np.asarray(tokens)
    dense = np.bincount(flat, minlength=n_areas * N_TOKENS)
    nz = np.flatnonzero(dense)
    row_counts = np.bincount(nz // N_TOKENS, minlength=n_areas)
    indptr = np.zeros(n_areas + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    return sp.csr_array((dense[nz].astype(np.float32), (nz % N_TOKENS).astype(np.int32), indptr), shape=(n_areas, N_TOKENS))
