"""Approximate stay-pattern charts (SPEC §6, paper Fig. 4)."""

from __future__ import annotations

import numpy as np

from core.area2vec.model import predict_distributions
from core.constants import DAY_TYPE_WEIGHTS, N_DAY_TYPES, N_DURATIONS, N_TIME_BINS, N_TOKENS, STAY_SPANS
from core.errors import ParameterError


def stay_weight_matrix(spans: tuple[int, ...] = STAY_SPANS, day_weights: tuple[float, float] = DAY_TYPE_WEIGHTS) -> np.ndarray:
    """The 168 x 168 stay weight matrix: row = token, column = (day type, 2-hour bin, duration).

    A token of duration class ``c`` arriving in bin ``b`` counts in bins ``b .. b + spans[c] - 1``
    (wrapping around midnight within its day type) with weight ``day_weights[day_type]``.
    """
    gd, gb, gc = np.meshgrid(np.arange(N_DAY_TYPES), np.arange(N_TIME_BINS), np.arange(N_DURATIONS), indexing="ij")
    d, b, c = gd.ravel(), gb.ravel(), gc.ravel()
    src = d * 84 + b * N_DURATIONS + c
    span = np.asarray(spans)[c]
    offsets = np.arange(max(spans))
    valid = offsets[None, :] < span[:, None]
    rows = np.broadcast_to(src[:, None], valid.shape)[valid]
    dst_bin = ((b[:, None] + offsets[None, :]) % N_TIME_BINS)[valid]
    cols = (
        np.broadcast_to(d[:, None] * 84, valid.shape)[valid]
        + dst_bin * N_DURATIONS
        + np.broadcast_to(c[:, None], valid.shape)[valid]
    )
    weights = np.asarray(day_weights)[np.broadcast_to(d[:, None], valid.shape)[valid]]
    out = np.zeros((N_TOKENS, N_TOKENS), dtype=np.float64)
    np.add.at(out, (rows, cols), weights)
    return out


def stay_patterns(distributions: np.ndarray, weight_matrix: np.ndarray | None = None) -> np.ndarray:
    """Charts of areas: ``(areas, 2 day types, 12 time bins, 7 duration classes)``.

    Args:
        distributions: ``areas x 168`` token distributions (``f_hat`` or observed histograms).
        weight_matrix: the stay weight matrix (built when omitted).
    """
    w = stay_weight_matrix() if weight_matrix is None else weight_matrix
    return (np.asarray(distributions, dtype=np.float64) @ w).reshape(-1, N_DAY_TYPES, N_TIME_BINS, N_DURATIONS)


def area_patterns(embeddings: np.ndarray, decoder: np.ndarray) -> np.ndarray:
    """Approximate charts of areas from their embeddings and the decoder."""
    return stay_patterns(predict_distributions(embeddings, decoder))


def group_sums(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Row sums per label (``k x columns``), by a sparse one-hot product (no Python loop)."""
    import scipy.sparse as sp

    labels = np.asarray(labels, dtype=np.int64)
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    onehot = sp.csr_matrix((np.ones(len(labels), dtype=values.dtype), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    return np.asarray(onehot @ values, dtype=np.float64)


def cluster_charts(distributions: np.ndarray, labels: np.ndarray, k: int, reduce: str = "sum") -> np.ndarray:
    """Charts per cluster ``(k, 2, 12, 7)`` from per-area distributions.

    The stay weight matrix is linear, so a cluster's chart is the chart of the sum (or mean) of its
    areas' distributions: the same as summing per-area charts, at a fraction of the cost.
    """
    sums = group_sums(distributions, labels, k)
    if reduce == "mean":
        sums /= np.maximum(np.bincount(np.asarray(labels), minlength=k), 1)[:, None]
    elif reduce != "sum":
        raise ParameterError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return stay_patterns(sums)


def cluster_patterns(patterns: np.ndarray, labels: np.ndarray, k: int, reduce: str = "sum") -> np.ndarray:
    """Charts per cluster ``(k, 2, 12, 7)``: the sum (as the public notebooks) or per-area mean."""
    labels = np.asarray(labels)
    out = group_sums(patterns.reshape(len(patterns), -1), labels, k)
    if reduce == "mean":
        sizes = np.bincount(labels, minlength=k).astype(np.float64)
        out /= np.maximum(sizes, 1)[:, None]
    elif reduce != "sum":
        raise ParameterError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return out.reshape(k, *patterns.shape[1:])


_DURATION_WORDS = ("very short", "short", "1-2 h", "2-4 h", "4-6 h", "6-12 h", "over 12 h")
_TIME_WORDS = (
    "late night",
    "late night",
    "early morning",
    "early morning",
    "morning",
    "midday",
    "afternoon",
    "afternoon",
    "evening",
    "evening",
    "night",
    "night",
)


def describe_pattern(chart: np.ndarray) -> str:
    """A short description of a chart ``(2, 12, 7)``: e.g. "weekday morning, 6-12 h stays".

    Uses the arrival-weighted share of holiday stays, the peak time of day and the typical
    duration class (by stay counts, before the stay weight spreads long stays over time).
    """
    chart = np.asarray(chart, dtype=np.float64)
    total = chart.sum()
    if total <= 0:
        return "no stays"
    # Undo the day weights (2/7, 5/7) to compare days as counted.
    per_day = chart.sum(axis=(1, 2)) / np.asarray(DAY_TYPE_WEIGHTS)
    holiday_share = per_day[1] / per_day.sum()
    day = "holiday" if holiday_share > 0.55 else "weekday" if holiday_share < 0.3 else "all-week"
    spans = np.asarray(STAY_SPANS, dtype=np.float64)
    dur = chart.sum(axis=(0, 1)) / spans
    peak_bin = int(chart.sum(axis=(0, 2)).argmax())
    return f"{day} {_TIME_WORDS[peak_bin]}, {_DURATION_WORDS[int(dur.argmax())]} stays"
