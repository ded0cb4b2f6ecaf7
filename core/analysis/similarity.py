"""Similar areas: distances in pattern or embedding space, OpenUAS distance bins, thresholds, top-k (SPEC §7).

Two meanings of "similar", chosen by ``knobs.SIMILARITY_SPACE``:

- ``pattern`` (the default): the **Hellinger distance** between the stay distributions that the
  meshes' models predict, ``H(p, q) = sqrt(1 - sum_t sqrt(p_t q_t)) = ||sqrt p - sqrt q|| / sqrt 2``,
  from 0 (the same pattern) to 1 (no token in common). Each mesh is represented once by its
  sqrt-pattern ``sqrt(softmax(e W^T))`` (168 float32 numbers, :func:`sqrt_patterns`), the space the
  joint clusters live in (:mod:`core.analysis.joint`); it does not see the small shift anchoring
  leaves between independently trained datasets.
- ``embedding``: the Euclidean distance between embeddings (the OpenUAS definition; the fallback
  when a dataset has no decoder). The OpenUAS distance classes (:func:`distance_classes`) are
  always in embedding units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core import knobs
from core.constants import N_TOKENS, SIMILARITY_EDGES
from core.errors import ParameterError

SPACES: tuple[str, ...] = knobs.SIMILARITY_SPACE.choices or ()
# What a distance in each space is called where it is shown.
DISTANCE_NAMES = {"pattern": "pattern distance (Hellinger)", "embedding": "embedding distance (Euclidean)"}


def sqrt_patterns(vectors: np.ndarray, decoder: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Every mesh's sqrt-pattern ``sqrt(softmax(e W^T))`` ``(n, 168)`` float32, computed in chunks.

    Args:
        vectors: the meshes' embeddings ``(n, dim)``.
        decoder: the dataset's decoder ``W`` ``(168, dim)``.
        chunk: rows per step (bounds the temporary memory).
    """
    from core.area2vec.model import predict_distributions

    vectors = np.asarray(vectors, dtype=np.float32)
    out = np.empty((len(vectors), N_TOKENS), dtype=np.float32)
    for s in range(0, len(vectors), chunk):
        out[s : s + chunk] = np.sqrt(predict_distributions(vectors[s : s + chunk], decoder, dtype=np.float32))
    return out


def hellinger(patterns: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hellinger distance of every row of ``patterns`` to ``query``, both square roots of distributions.

    ``H = sqrt(1 - patterns @ query)`` (rows and query are unit vectors, since a distribution sums to
    1): one matrix-vector product, no ``(n, 168)`` temporary. In [0, 1].
    """
    p = np.asarray(patterns, dtype=np.float32)
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    return np.sqrt(np.clip(1.0 - (p @ q).astype(np.float64), 0.0, 1.0))


def has_decoder(decoder: np.ndarray | None) -> bool:
    """Whether a dataset has a decoder to predict stay patterns with (an embeddings CSV, or a release
    dataset exported from one, carries an all-zero decoder: every pattern would be uniform)."""
    return decoder is not None and bool(np.any(decoder))


def _unknown_space(space: str) -> ParameterError:
    return ParameterError(f"unknown similarity space {space!r}: expected one of {', '.join(SPACES)}")


def resolve_space(space: str, decoders: Sequence[np.ndarray | None]) -> str:
    """The space a search runs in: ``space``, except ``embedding`` when ``pattern`` was asked for and a
    dataset it reads has no decoder (:func:`has_decoder`; one list never mixes two kinds of distance).

    Raises:
        ParameterError: for an unknown space.
    """
    if space not in SPACES:
        raise _unknown_space(space)
    if space == "pattern" and not all(has_decoder(d) for d in decoders):
        return "embedding"
    return space


def points(vectors: np.ndarray, decoder: np.ndarray | None, space: str) -> np.ndarray:
    """The meshes as points of ``space``: sqrt-patterns (pattern) or the embeddings themselves.

    Raises:
        ParameterError: pattern space without a decoder, or an unknown space.
    """
    if space == "embedding":
        return np.asarray(vectors, dtype=np.float32)
    if space != "pattern":
        raise _unknown_space(space)
    if decoder is None:
        raise ParameterError("similarity by stay pattern needs the dataset's decoder (its model file)")
    return sqrt_patterns(vectors, decoder)


def space_distances(pts: np.ndarray, query: np.ndarray, space: str) -> np.ndarray:
    """Distance of every row of ``pts`` to ``query``, both points of ``space`` (:func:`points`)."""
    if space == "pattern":
        return hellinger(pts, query)
    if space == "embedding":
        return distances(pts, query)
    raise _unknown_space(space)


def distances(embeddings: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Euclidean distance of every row of ``embeddings`` to the ``query`` vector."""
    emb = np.asarray(embeddings, dtype=np.float32)
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    return np.sqrt(np.maximum(((emb - q) ** 2).sum(axis=1), 0.0))


def distance_classes(dist: np.ndarray, self_index: int | None = None) -> np.ndarray:
    """OpenUAS distance bins: 0 the area itself, 1 (<= 2), 2 (2, 4], 3 (4, 8], 4 (8, 16), 5 (>= 16)."""
    d = np.asarray(dist, dtype=np.float64)
    e1, e2, e3, e4 = SIMILARITY_EDGES
    cls = np.select([d <= e1, d <= e2, d <= e3, d < e4], [1, 2, 3, 4], default=5).astype(np.int8)
    if self_index is not None:
        cls[self_index] = 0
    return cls


def within(dist: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of areas within ``threshold`` (inclusive), nearest first."""
    d = np.asarray(dist)
    idx = np.flatnonzero(d <= threshold)
    return idx[np.argsort(d[idx], kind="stable")]


def top_k(dist: np.ndarray, k: int, exclude: int | None = None) -> np.ndarray:
    """Indices of the ``k`` nearest areas, nearest first (``exclude`` left out)."""
    d = np.asarray(dist, dtype=np.float64).copy()
    if exclude is not None:
        d[exclude] = np.inf
    k = min(k, int(np.isfinite(d).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(d, k - 1)[:k]
    return part[np.argsort(d[part], kind="stable")]


@dataclass(frozen=True)
class TopMatches:
    """The areas nearest to a query under a threshold (see :func:`top_matches`).

    Attributes:
        index: matching areas, nearest first.
        cutoff: the largest distance among them (``nan`` when none).
        candidates: how many areas could match.
    """

    index: np.ndarray
    cutoff: float
    candidates: int

    @property
    def count(self) -> int:
        return int(self.index.shape[0])


def top_matches(
    dist: np.ndarray, by: str, value: float, candidates: np.ndarray | None = None, exclude: int | None = None
) -> TopMatches:
    """The nearest areas by a percentile, a rank or a distance threshold.

    Args:
        dist: distance of every area to the query.
        by: ``percent`` (the nearest ``value`` % of the candidates, at least one), ``rank`` (the
            nearest ``value``) or ``distance`` (all within ``value``, inclusive).
        value: the threshold in the unit of ``by``.
        candidates: boolean mask of areas that may match (default: all); e.g. meshes with an
            embedding of their own, so that complemented copies are not counted twice.
        exclude: an area left out (the query itself).

    Raises:
        ValueError: for an unknown ``by`` or a negative ``value``.
    """
    d = np.asarray(dist, dtype=np.float64)
    ok = np.isfinite(d) if candidates is None else np.asarray(candidates, bool) & np.isfinite(d)
    if exclude is not None:
        ok = ok.copy()
        ok[exclude] = False
    pool = np.flatnonzero(ok)
    if not value >= 0:
        raise ValueError(f"threshold {value!r} is negative")
    if by == "distance":
        idx = pool[d[pool] <= value]
        idx = idx[np.argsort(d[idx], kind="stable")]
    elif by in ("percent", "rank"):
        n = max(1, int(np.ceil(len(pool) * min(value, 100.0) / 100.0))) if by == "percent" else int(value)
        n = min(n, len(pool))
        idx = top_k(np.where(ok, d, np.inf), n)
    else:
        raise ValueError(f"unknown threshold kind {by!r}: expected percent, rank or distance")
    cutoff = float(d[idx[-1]]) if len(idx) else float("nan")
    return TopMatches(idx, cutoff, len(pool))


@dataclass(frozen=True)
class Match:
    """One similar area found across datasets."""

    dataset: str
    index: int
    key: int
    distance: float


def similar_across(
    query: np.ndarray,
    datasets: dict[str, tuple[np.ndarray, np.ndarray]],
    k: int = 10,
    exclude: tuple[str, int] | None = None,
    per_dataset: int | None = None,
    dists: dict[str, np.ndarray] | None = None,
    space: str = "embedding",
) -> list[Match]:
    """The ``k`` areas nearest to ``query`` over several datasets of one anchored space.

    Args:
        query: the point to match (an embedding, or a sqrt-pattern in pattern space).
        datasets: name -> ``(keys, points)``, points of ``space`` (:func:`points`).
        k: how many matches in all.
        exclude: ``(dataset, index)`` of the query area itself, left out.
        per_dataset: at most this many matches from one dataset (``None``: no limit).
        dists: name -> distances of its points to ``query``, where the caller has them already
            (``inf`` for rows that must not match).
        space: ``embedding`` (Euclidean distance) or ``pattern`` (Hellinger distance).
    """
    found: list[Match] = []
    for name, (keys, pts) in datasets.items():
        d = dists[name] if dists is not None and name in dists else space_distances(pts, query, space)
        skip = exclude[1] if exclude is not None and exclude[0] == name else None
        take = per_dataset if per_dataset is not None else k
        for i in top_k(d, take, exclude=skip):
            found.append(Match(name, int(i), int(keys[i]), float(d[i])))
    found.sort(key=lambda m: (m.distance, m.dataset, m.index))
    return found[:k]
