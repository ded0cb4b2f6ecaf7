"""Methods that embed two or more cities' regions in one space, behind one function.

- ``core``: :class:`~core.regions.model.CoRE`, one stage.
- ``individual``: the same encoder trained on each city alone (no alignment: the paper's lower bound).
- ``procrustes`` / ``affine``: the individual embeddings, then every city mapped onto the first one's
  space on shared-rank anchors (Yabe et al. 2020's rank-based anchoring, "RP" / "RA" in the paper):
  regions sorted by their share of arrivals in each city and paired at equal quantiles.
- ``area2vec``: where stays exist (our cities), each region's stay-token counts embedded by Area2Vec
  anchored to one anchor set shared by the cities (:func:`fit_area2vec`); flows are not used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

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
    *,
    anchors: Any = None,
    area2vec: Any = None,
) -> list[np.ndarray]:
    """Embed the regions of every city with ``method``.

    Args:
        graphs: the cities (their OD flows, or for ``area2vec`` their stay counts; labels are never read).
        method: one of :data:`~core.regions.config.METHODS`.
        config: encoder hyper-parameters (seed included; ``area2vec`` reads the seed and the epochs only).
        progress: training progress callback.
        cancel: polled every epoch.
        anchors: ``area2vec`` only: the anchor set (an :class:`~core.area2vec.anchors.AnchorSet` or a folder).
        area2vec: ``area2vec`` only: Area2Vec's :class:`~core.area2vec.trainer.TrainConfig` (default:
            its defaults with at most ``config.epochs`` epochs of the decoder phase and the anchor-power
            schedule over the first half of them, at most 150); its seed is replaced by ``config.seed``.

    Returns:
        One ``(n_regions, dim)`` array per city, in one space (except for ``individual``).

    Raises:
        InputError: an unknown method; for ``area2vec``, a city without stays or no anchor set.
    """
    from core.regions.model import CoRE

    if method not in METHODS:
        raise InputError("method", f"unknown method '{method}'", expected=f"one of {', '.join(METHODS)}")
    config = config or CoreConfig()
    if method == "area2vec":
        from core.area2vec.trainer import TrainConfig

        if area2vec is None:  # the epochs knob bounds Area2Vec's decoder phase; its anchor schedule spans half of it
            area2vec = TrainConfig(
                max_epochs=config.epochs, schedule_epochs=min(TrainConfig.schedule_epochs, max(1, config.epochs // 2))
            )
        train = TrainConfig(**{**area2vec.to_dict(), "seed": config.seed})
        return fit_area2vec(graphs, anchors, train, progress, cancel)
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


def anchor_set_from_graphs(
    graphs: Sequence[RegionGraph], n_anchors: int = 64, records_per_anchor: int = 2000, seed: int = 0, config: Any = None
) -> Any:
    """An anchor set built from the cities' own stay counts, for cities that share none.

    Each region's token counts become stay records (one per stay, with the token's day type, the
    start of its 2-hour arrival bin and a duration inside its class: the tokens are exact), and
    :func:`core.area2vec.anchors.build_anchor_set` builds the set from them. Data holders who share
    an anchor set use that instead (the ``area2vec`` method's ``anchors``).

    Returns:
        An :class:`~core.area2vec.anchors.AnchorSet`.

    Raises:
        InputError: a city without stay counts.
    """
    from core.area2vec.anchors import build_anchor_set
    from core.area2vec.tokens import token_parts
    from core.area2vec.trainer import TrainConfig
    from core.constants import DURATION_BOUNDS, N_TOKENS
    from core.mobility.stays import StayRecords

    records = []
    for g in _with_stays(graphs):
        counts = np.rint(np.asarray(g.token_counts)).astype(np.int64).ravel()
        flat = np.repeat(np.arange(counts.size), counts)
        region, token = np.divmod(flat, N_TOKENS)
        day, time_bin, duration = token_parts(token)
        stay = np.asarray((0, *DURATION_BOUNDS))[duration] + 1
        records.append(
            StayRecords(
                g.name,
                "mesh_id",
                region.astype(np.int64),
                stay,
                (time_bin * 120).astype(np.int16),
                np.where(day == 1, 5, 0).astype(np.int8),
                np.zeros(len(token), dtype=bool),
            )
        )
    config = config or TrainConfig(seed=seed)
    return build_anchor_set(records, n_anchors=n_anchors, records_per_anchor=records_per_anchor, config=config, seed=seed)


def _with_stays(graphs: Sequence[RegionGraph]) -> Sequence[RegionGraph]:
    """The graphs, checked to carry stay counts (built from stays, not read from a LibCity folder)."""
    missing = [g.name for g in graphs if g.token_counts is None]
    if missing:
        raise InputError(
            ", ".join(missing),
            "no stays: the area2vec method embeds each region's stay counts (168 stay tokens)",
            expected=(
                "cities built from stay tables with their stay columns (stay_time, day_of_week, arrival_time, "
                "is_holiday), such as DATA/demo/stays/<dataset>.parquet; LibCity folders (*.geo, *.mob) carry flows only"
            ),
        )
    return graphs


def fit_area2vec(
    graphs: Sequence[RegionGraph],
    anchors: Any,
    config: Any = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[np.ndarray]:
    """Area2Vec with anchoring as a region method: every city anchored to one anchor set.

    Each region's 168-token stay counts (:attr:`~core.regions.graph.RegionGraph.token_counts`) are
    embedded by Area2Vec anchored to ``anchors`` (:func:`core.area2vec.embeddings.train_embeddings`'s
    trainer), city by city: the shared anchors fix one space, so the cities are aligned without any
    shared region. Flows are not used.

    Args:
        graphs: the cities, built from stays (:func:`~core.regions.graph.graph_from_stays`,
            :func:`~core.regions.graph.graph_from_clusters`).
        anchors: an :class:`~core.area2vec.anchors.AnchorSet` or an anchor folder (``anchor_df.csv``
            + ``anchor_embeddings.pth``, e.g. the demo's ``DATA/demo/anchor_data``).
        config: Area2Vec's :class:`~core.area2vec.trainer.TrainConfig` (its seed is used; the
            embedding size is the anchor set's).
        progress: the trainer's progress callback.
        cancel: polled by the trainer.

    Returns:
        One ``(n_regions, dim)`` array per city, rows in the graph's region order (a region without
        stays, which graphs from stays do not have, stays at zero).

    Raises:
        InputError: a city without stay counts, no anchor set, or an anchor folder that cannot be read.
    """
    from core.area2vec.anchors import AnchorSet, read_anchor_set
    from core.area2vec.trainer import Area2VecTrainer, TrainConfig

    _with_stays(graphs)
    if anchors is None:
        raise InputError(
            "anchors",
            "no anchor set: the area2vec method aligns cities by a shared anchor set",
            expected="--anchors DIR (anchor_df.csv + anchor_embeddings.pth), or stay tables inside a release with anchor_data/",
        )
    anchor_set = anchors if isinstance(anchors, AnchorSet) else read_anchor_set(anchors)
    config = config or TrainConfig()
    if config.dim != anchor_set.dim:
        config = TrainConfig(**{**config.to_dict(), "dim": anchor_set.dim})
    out = []
    for g in graphs:
        counts = np.asarray(g.token_counts, dtype=np.float32)
        has = counts.sum(axis=1) > 0
        result = Area2VecTrainer(config).fit(
            counts[has], anchors=(anchor_set.counts, anchor_set.embeddings), progress=progress, cancel=cancel
        )
        z = np.zeros((g.n, anchor_set.dim), dtype=np.float32)
        z[has] = result.embeddings
        out.append(z)
    return out
