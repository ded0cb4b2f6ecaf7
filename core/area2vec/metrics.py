"""Evaluation metrics of area embeddings (SPEC §5)."""

from __future__ import annotations

import numpy as np

from core.area2vec.model import predict_distributions
from core.errors import ParameterError


def approximation_loss(
    counts: np.ndarray, embeddings: np.ndarray, decoder: np.ndarray, per_area: bool = False
) -> float | np.ndarray:
    """Mean over areas of ``1 - cos(f_hat_m, f_m)``.

    Args:
        counts: ``areas x 168`` stay counts (dense or scipy sparse); ``f_m`` is each row normalised
            (normalising does not change a cosine, so raw counts are used).
        embeddings: ``areas x dim``, rows aligned with ``counts``.
        decoder: ``168 x dim``.
        per_area: return the per-area values instead of their mean.
    """
    if hasattr(counts, "toarray"):
        counts = counts.toarray()
    f = np.asarray(counts, dtype=np.float64)
    f_hat = predict_distributions(embeddings, decoder)
    num = (f * f_hat).sum(axis=1)
    den = np.linalg.norm(f, axis=1) * np.linalg.norm(f_hat, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = 1.0 - num / den
    return loss if per_area else float(np.nanmean(loss))


def misalignment(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> float:
    """Mean over areas of the distance between two embeddings of the same areas.

    Args:
        a, b: ``areas x dim`` embeddings, rows aligned.
        metric: ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ParameterError(f"embeddings of shapes {a.shape} and {b.shape} cannot be compared row by row")
    if metric == "euclidean":
        return float(np.linalg.norm(a - b, axis=1).mean())
    if metric == "cosine":
        cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return float((1.0 - cos).mean())
    raise ParameterError(f"unknown metric {metric!r}: expected 'euclidean' or 'cosine'")
