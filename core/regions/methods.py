"""Methods that embed two or more cities' regions in one space, behind one function.

- ``core``: :class:`~core.regions.model.CoRE`, one stage.
- ``individual``: the same encoder trained on each city alone (no alignment: the paper's lower bound).
- ``procrustes`` / ``affine``: the individual embeddings, then every city mapped onto the first one's
  space on shared-rank anchors (Yabe et al. 2020's rank-based anchoring, "RP" / "RA" in the paper):
  regions sorted by their share of arrivals in each city and paired at equal quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InputError
from core.progress import Progress
from core.regions.config import METHODS, CoreConfig
from core.regions.graph import RegionGraph


def rank_anchors(a: RegionGraph, b: RegionGraph) -> tuple[np.ndarray, np.ndarray]:
    """Anchor pairs from ranks: ``min(n_a, n_b)`` regions of each city at equal arrival-share quantiles.

    Returns:
        Region positions in ``a`` and in ``b``, pair by pair.
    """
    k = min(a.n, b.n)
    order_a = np.argsort(-a.in_flow(), kind="stable")
    order_b = np.argsort(-b.in_flow(), kind="stable")
    pick_a = np.round(np.linspace(0, a.n - 1, k)).astype(np.int64)
    pick_b = np.round(np.linspace(0, b.n - 1, k)).astype(np.int64)
    return order_a[pick_a], order_b[pick_b]


def procrustes_map(z_ref: np.ndarray, z: np.ndarray, i_ref: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Map ``z`` onto ``z_ref``'s space by a rotation fitted on centred anchor pairs (orthogonal Procrustes)."""
    from scipy.linalg import orthogonal_procrustes

    mu_ref, mu = z_ref[i_ref].mean(axis=0), z[i].mean(axis=0)
    rot, _ = orthogonal_procrustes(z[i] - mu, z_ref[i_ref] - mu_ref)
    return ((z - mu) @ rot + mu_ref).astype(np.float32)


def affine_map(z_ref: np.ndarray, z: np.ndarray, i_ref: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Map ``z`` onto ``z_ref``'s space by a least-squares affine map fitted on the anchor pairs."""
    x = np.hstack([z[i], np.ones((len(i), 1))])
    coef, *_ = np.linalg.lstsq(x, z_ref[i_ref], rcond=None)
    return (np.hstack([z, np.ones((z.shape[0], 1))]) @ coef).astype(np.float32)


def fit_method(
    graphs: Sequence[RegionGraph],
    method: str,
    config: CoreConfig | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[np.ndarray]:
    """Embed the regions of every city with ``method``.

    Args:
        graphs: the cities (their OD flows; labels are never read).
        method: one of :data:`~core.regions.config.METHODS`.
        config: encoder hyper-parameters (seed included).
        progress: training progress callback.
        cancel: polled every epoch.

    Returns:
        One ``(n_regions, dim)`` array per city, in one space (except for ``individual``).

    Raises:
        InputError: an unknown method.
    """
    from core.regions.model import CoRE

    if method not in METHODS:
        raise InputError("method", f"unknown method '{method}'", expected=f"one of {', '.join(METHODS)}")
    config = config or CoreConfig()
    if method == "core":
        return CoRE(config).fit(graphs, progress, cancel).embeddings_
    alone = CoRE(replace(config, alpha=0.0, beta=0.0)).fit(graphs, progress, cancel).embeddings_
    if method == "individual":
        return alone
    mapper = procrustes_map if method == "procrustes" else affine_map
    out = [alone[0]]
    for g, z in zip(graphs[1:], alone[1:]):
        i_ref, i = rank_anchors(graphs[0], g)
        out.append(mapper(alone[0], z, i_ref, i))
    return out


def fit_area2vec(
    stays: Sequence[pd.DataFrame],
    graphs: Sequence[RegionGraph],
    mesh_size: int = 250,
    n_anchors: int = 64,
    records_per_anchor: int = 2000,
    seed: int = 0,
    config: Any = None,
) -> list[np.ndarray]:
    """Area2Vec with anchoring as a region method, where stays exist (our cities).

    Each city's stays are assigned to the graph's meshes (``mesh_size``), an anchor set is built from
    all cities' stays together (:func:`core.area2vec.anchors.build_anchor_set`), and each city is then
    trained anchored to it, so that the cities' embeddings share one space without shared regions.

    Args:
        stays: per city, a stay table with ``lat``/``lon`` and the stay columns (``stay_time``,
            ``day_of_week``, ``arrival_time``, ``is_holiday``).
        graphs: per city, its graph from :func:`~core.regions.graph.graph_from_stays` (same mesh size).
        mesh_size: the graphs' mesh size.
        n_anchors, records_per_anchor: size of the anchor set.
        seed: seed of the anchor set and of training.
        config: Area2Vec's :class:`~core.area2vec.trainer.TrainConfig` (default: its defaults with ``seed``).

    Returns:
        One ``(n_regions, dim)`` array per city, rows in the graph's region order (zero rows for
        regions without stays).
    """
    from core.area2vec.anchors import build_anchor_set
    from core.area2vec.embeddings import train_embeddings
    from core.area2vec.trainer import TrainConfig
    from core.geo.meshcode import cells_to_code, latlon_to_cells
    from core.mobility.stays import stays_from_frame

    if len(stays) != len(graphs):
        raise InputError("stays", f"{len(stays)} stay tables for {len(graphs)} cities", expected="one stay table per city")
    records = []
    for frame, g in zip(stays, graphs):
        i, j = latlon_to_cells(frame["lat"].to_numpy(np.float64), frame["lon"].to_numpy(np.float64))
        table = frame[["stay_time", "day_of_week", "arrival_time", "is_holiday"]].copy()
        table["code"] = cells_to_code(i, j, mesh_size)
        table["mesh_size"] = mesh_size
        records.append(stays_from_frame(table, g.name))
    config = config or TrainConfig(seed=seed)
    anchors = build_anchor_set(records, n_anchors=n_anchors, records_per_anchor=records_per_anchor, config=config, seed=seed)
    out = []
    for rec, g in zip(records, graphs):
        emb = train_embeddings(rec.to_counts(), anchors, config)
        vectors = pd.DataFrame(emb.vectors, index=emb.keys).reindex(g.region_ids).fillna(0.0)
        out.append(vectors.to_numpy(np.float32))
    return out
