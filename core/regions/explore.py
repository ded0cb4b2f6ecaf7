"""The logic of a two-city view, without Dash: joint projection, nearest regions across cities, predictions.

A dashboard view picks two cities and a label, then shows (1) the target's map coloured by predicted,
true and error, (2) both cities' embeddings projected together, coloured by city, and (3) for a
clicked region, its nearest regions in the other city. Each piece is one function here returning
plain frames; the view only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError
from core.regions.config import TransferConfig
from core.regions.evaluate import baseline_prediction, ridge_transfer, scaled_label
from core.regions.graph import RegionGraph


def joint_projection(embeddings: dict[str, np.ndarray], method: str = "pca", seed: int = 0) -> pd.DataFrame:
    """Project several cities' embeddings together to 2-D.

    Args:
        embeddings: city name -> ``(n_regions, dim)`` embeddings in one space.
        method: ``"pca"`` (always available) or ``"umap"`` (needs umap-learn).
        seed: seed of UMAP.

    Returns:
        One row per region: ``city``, ``region`` (row position in its city), ``x``, ``y``.

    Raises:
        InputError: embeddings of different widths, an unknown method, or umap-learn missing.
    """
    if not embeddings:
        raise InputError("embeddings", "no city", expected="at least one city's embeddings")
    widths = {z.shape[1] for z in embeddings.values()}
    if len(widths) != 1:
        raise InputError("embeddings", f"widths {sorted(widths)}", expected="embeddings of one width (one space)")
    stacked = np.vstack([np.asarray(z, dtype=np.float64) for z in embeddings.values()])
    if method == "pca":
        centred = stacked - stacked.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        if xy.shape[1] < 2:
            xy = np.hstack([xy, np.zeros((xy.shape[0], 2 - xy.shape[1]))])
    elif method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise InputError("method", "umap-learn is not installed", expected="method 'pca', or pip install umap-learn") from exc
        xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(stacked)
    else:
        raise InputError("method", f"unknown projection '{method}'", expected="'pca' or 'umap'")
    return pd.DataFrame(
        {
            "city": np.repeat(list(embeddings), [z.shape[0] for z in embeddings.values()]),
            "region": np.concatenate([np.arange(z.shape[0]) for z in embeddings.values()]),
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )


def nearest_regions(z_from: np.ndarray, region: int, z_to: np.ndarray, k: int = 5) -> pd.DataFrame:
    """The ``k`` regions of another city nearest (cosine) to one region.

    Returns:
        Rows ``region`` (position in the other city), ``similarity`` (cosine), best first.
    """
    if not 0 <= region < z_from.shape[0]:
        raise InputError("region", f"region {region} out of range", expected=f"0..{z_from.shape[0] - 1}")
    q = z_from[region] / max(float(np.linalg.norm(z_from[region])), 1e-12)
    norms = np.linalg.norm(z_to, axis=1)
    sim = (z_to @ q) / np.maximum(norms, 1e-12)
    k = min(k, z_to.shape[0])
    top = np.argpartition(-sim, k - 1)[:k]
    top = top[np.argsort(-sim[top], kind="stable")]
    return pd.DataFrame({"region": top, "similarity": sim[top]})


def predicted_vs_true(
    source: RegionGraph,
    target: RegionGraph,
    z_source: np.ndarray,
    z_target: np.ndarray,
    label: str,
    scale: str = "sum",
    config: TransferConfig | None = None,
) -> pd.DataFrame:
    """Per target region: the transferred prediction, the truth, the error and the baselines' predictions.

    Returns:
        One row per target region: ``region_id``, ``true``, ``predicted``, ``error`` (predicted -
        true), ``mean`` and ``area`` (the baselines' predictions).
    """
    config = config or TransferConfig()
    y_s, y_t = scaled_label(source, label, scale), scaled_label(target, label, scale)
    pred = ridge_transfer(z_source, y_s, z_target, config.ridge_alpha)
    return pd.DataFrame(
        {
            "region_id": target.region_ids,
            "true": y_t,
            "predicted": pred,
            "error": pred - y_t,
            "mean": baseline_prediction(source, target, y_s, "mean", config.ridge_alpha),
            "area": baseline_prediction(source, target, y_s, "area", config.ridge_alpha),
        }
    )
