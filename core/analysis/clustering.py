"""k-means of area embeddings with the OpenUAS cluster order (SPEC §7)."""

from __future__ import annotations

import numpy as np

from core.analysis.charts import cluster_charts
from core.area2vec.model import predict_distributions
from core.constants import KMEANS_SEED, N_TIME_BINS, ORDER_DAY_WEIGHTS, ORDER_DURATION_MINUTES
from core.errors import ParameterError


def order_weights() -> np.ndarray:
    """Weights ``w[day_type, time_bin, duration]`` of the ordering score (chart layout)."""
    day = np.asarray(ORDER_DAY_WEIGHTS)[:, None, None]
    dur = np.asarray(ORDER_DURATION_MINUTES, dtype=np.float64)[None, None, :]
    bins = ((np.arange(N_TIME_BINS) + 1) % N_TIME_BINS).astype(np.float64)[None, :, None]
    return day * bins * dur


def order_scores(charts: np.ndarray) -> np.ndarray:
    """Score of each chart ``(k, 2, 12, 7)``: ``sum(chart * w) / sum(chart)``; low = weekday, short, early."""
    charts = np.asarray(charts, dtype=np.float64)
    w = order_weights()
    return (charts * w).sum(axis=(1, 2, 3)) / charts.sum(axis=(1, 2, 3))


def order_clusters(labels: np.ndarray, distributions: np.ndarray, k: int) -> np.ndarray:
    """Renumber clusters so that their chart scores ascend; returns the new labels.

    Args:
        labels: cluster of each area.
        distributions: each area's token distribution (``f_hat``), ``areas x 168``.
        k: number of clusters.
    """
    charts = cluster_charts(distributions, labels, k, reduce="sum")
    sizes = np.bincount(labels, minlength=k)
    scores = np.where(sizes > 0, order_scores(np.where(sizes[:, None, None, None] > 0, charts, 1.0)), np.inf)
    order = np.argsort(scores, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]


def kmeans_labels(embeddings: np.ndarray, k: int, seed: int = KMEANS_SEED, n_init: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means (scikit-learn) labels and centres."""
    from sklearn.cluster import KMeans

    emb = np.asarray(embeddings, dtype=np.float64)
    if not 1 <= k <= len(emb):
        raise ParameterError(
            f"number of clusters: {k} is out of range; expected an integer from 1 to the number of areas ({len(emb)})"
        )
    km = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(emb)
    return km.labels_.astype(np.int64), km.cluster_centers_


def cluster_areas(
    embeddings: np.ndarray, decoder: np.ndarray, k: int, seed: int = KMEANS_SEED, distributions: np.ndarray | None = None
) -> np.ndarray:
    """k-means labels renumbered in the OpenUAS order (weekday / short / early stays first).

    Args:
        embeddings: ``areas x dim``.
        decoder: ``168 x dim`` (to compute the charts that define the order).
        k: number of clusters.
        seed: k-means seed (OpenUAS: 20210401).
        distributions: precomputed ``softmax(E W^T)`` (``areas x 168``), if at hand.
    """
    labels, _ = kmeans_labels(embeddings, k, seed)
    if distributions is None:
        distributions = predict_distributions(embeddings, decoder, dtype=np.float32)
    return order_clusters(labels, distributions, k)
