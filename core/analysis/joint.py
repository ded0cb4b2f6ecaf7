"""Joint clusters of a shared space: one k-means over every mesh of every dataset of the space.

Anchoring puts every city and period in one space, so that "a colour representing an area function
has the same meaning across different cities" (OpenUAS paper). That holds only when the clusters
are fitted jointly: k-means over the union of the space's meshes (a sample of them when the space
is large, then every mesh assigned to its nearest centre), numbered in the OpenUAS order (SPEC §7)
computed on the pooled patterns, and named by :mod:`core.analysis.naming`. A dataset added to the
space later is *assigned* to the stored centres (nearest centre), never re-clustered.

The clusters live in **pattern space** when every dataset has its decoder: each mesh is
represented by the square root of its predicted stay distribution, ``sqrt(softmax(e W^T))`` (so
that Euclidean distance is the Hellinger distance between stay patterns). That is what a mesh is
used for, and it is immune to the small shift anchoring leaves between independently trained
datasets. Measured on the demo (small build, k = 10): the same Nagoya meshes stay in their cluster
from 2019 to 2023 (no designed change) 96.5 % of the time in pattern space against 75.7 % in
embedding space, and Tokyo's cluster -> district map holds in other cities at 0.96-0.995. Without
decoders (a release without model files) the clusters fall back to embedding space.

Complemented meshes carry their parent's embedding, so they take their parent's label; they are
left out of the fit (they would count their parent several times).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.analysis.charts import stay_patterns
from core.analysis.clustering import order_scores
from core.analysis.naming import name_clusters
from core.analysis.similarity import sqrt_patterns
from core.area2vec.model import predict_distributions
from core.constants import KMEANS_SEED, N_TOKENS
from core.errors import ParameterError, ReleaseError

FIT_SAMPLE = 50_000  # meshes that fit the centres (drawn across datasets); every mesh is then assigned
FORMAT = 2
BASES = ("pattern", "embedding")


def represent(vectors: np.ndarray, decoder: np.ndarray | None, basis: str, chunk: int = 65_536) -> np.ndarray:
    """Meshes in the clustering's space: ``sqrt(softmax(e W^T))`` (pattern) or the embeddings themselves."""
    if basis == "embedding":
        return np.asarray(vectors, dtype=np.float32)
    if decoder is None:
        raise ParameterError("clusters in pattern space need the dataset's decoder (its model file)")
    return sqrt_patterns(vectors, decoder, chunk)


@dataclass(frozen=True)
class SpacePart:
    """One dataset of a space: its embeddings, decoder (for patterns) and complement flags."""

    vectors: np.ndarray
    decoder: np.ndarray | None = None
    complemented: np.ndarray | None = None
    labels: np.ndarray | None = None  # released labels at this k, when the space keeps them

    def fit_rows(self) -> np.ndarray:
        """Rows that take part in the fit (complemented meshes left out)."""
        n = len(self.vectors)
        return np.arange(n) if self.complemented is None else np.flatnonzero(~np.asarray(self.complemented, bool))


@dataclass
class JointClusters:
    """The clusters of one space at one k.

    Attributes:
        space: the space's name (an anchor release, or ``free:<dataset>``).
        k: number of clusters.
        centroids: centres, row ``c`` = cluster ``c`` (OpenUAS order): ``k x 168`` in pattern space,
            ``k x dim`` in embedding space.
        names: the derived name of each cluster (:mod:`core.analysis.naming`).
        renamed: names given by users, by cluster; they win over the derived ones.
        datasets: the datasets the clusters were fitted on (or whose released labels they keep).
        sizes: meshes per cluster over those datasets (complemented meshes excluded).
        source: ``"kmeans"`` (fitted here) or ``"released"`` (centres of released labels).
        seed: the k-means seed.
        basis: ``"pattern"`` (sqrt of predicted stay distributions) or ``"embedding"``.
    """

    space: str
    k: int
    centroids: np.ndarray
    names: list[str]
    datasets: list[str]
    sizes: list[int]
    source: str = "kmeans"
    seed: int = KMEANS_SEED
    renamed: dict[int, str] = field(default_factory=dict)
    basis: str = "pattern"

    def name(self, cluster: int) -> str:
        """The name shown for ``cluster``: a user's rename, else the derived one."""
        return self.renamed.get(int(cluster), self.names[int(cluster)])

    def display_names(self) -> list[str]:
        """Every cluster's shown name, in cluster order."""
        return [self.name(c) for c in range(self.k)]

    def assign(self, vectors: np.ndarray, decoder: np.ndarray | None = None, chunk: int = 65_536) -> np.ndarray:
        """Nearest centre of each mesh, from its embedding (and, in pattern space, its dataset's decoder)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        out = np.empty(len(vectors), dtype=np.int64)
        for s in range(0, len(vectors), chunk):
            out[s : s + chunk] = self.nearest(represent(vectors[s : s + chunk], decoder, self.basis))
        return out

    def nearest(self, points: np.ndarray, chunk: int = 262_144) -> np.ndarray:
        """Nearest centre (Euclidean) of each row of ``points``, already in the clustering's space."""
        x = np.asarray(points, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.centroids.shape[1]:
            raise ParameterError(f"points of dimension {x.shape[-1]} cannot be assigned to {self.centroids.shape[1]}-d centres")
        c = self.centroids.astype(np.float32)
        cc = (c * c).sum(axis=1)
        out = np.empty(len(x), dtype=np.int64)
        for s in range(0, len(x), chunk):
            block = x[s : s + chunk]
            out[s : s + chunk] = np.argmin(cc[None, :] - 2.0 * block @ c.T, axis=1)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "format": FORMAT,
            "space": self.space,
            "k": self.k,
            "source": self.source,
            "seed": self.seed,
            "datasets": list(self.datasets),
            "sizes": [int(s) for s in self.sizes],
            "names": list(self.names),
            "renamed": {str(c): n for c, n in sorted(self.renamed.items())},
            "basis": self.basis,
            "centroids": np.round(self.centroids.astype(np.float64), 7).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "clusters file") -> JointClusters:
        """Read :meth:`to_dict`'s output back (validated).

        Raises:
            ReleaseError: naming what is wrong with the stored clusters.
        """
        try:
            k = int(data["k"])
            cent = np.asarray(data["centroids"], dtype=np.float64)
            names = [str(n) for n in data["names"]]
            renamed = {int(c): str(n) for c, n in dict(data.get("renamed") or {}).items()}
            out = cls(
                space=str(data["space"]),
                k=k,
                centroids=cent,
                names=names,
                datasets=[str(d) for d in data.get("datasets", [])],
                sizes=[int(s) for s in data.get("sizes", [0] * k)],
                source=str(data.get("source", "kmeans")),
                seed=int(data.get("seed", KMEANS_SEED)),
                renamed=renamed,
                basis=str(data.get("basis", "embedding")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReleaseError(f"{source}: not a clusters file ({type(exc).__name__}: {exc})") from None
        if cent.ndim != 2 or cent.shape[0] != k or len(names) != k or not np.isfinite(cent).all():
            raise ReleaseError(f"{source}: {k} clusters but centres of shape {cent.shape} and {len(names)} names")
        if out.basis not in BASES:
            raise ReleaseError(f"{source}: unknown basis {out.basis!r}")
        if any(not 0 <= c < k for c in renamed):
            raise ReleaseError(f"{source}: a renamed cluster is outside 0..{k - 1}")
        return out


def group_sum(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Row sums of ``values`` per label ``(k, columns)``: one sparse product, not a Python loop."""
    import scipy.sparse as sp

    n = len(labels)
    onehot = sp.csr_array((np.ones(n, dtype=np.float64), (np.asarray(labels), np.arange(n))), shape=(k, n))
    return np.asarray(onehot @ np.asarray(values, dtype=np.float64))


def pooled_distributions(vectors: np.ndarray, decoder: np.ndarray, labels: np.ndarray, k: int, chunk: int = 65_536) -> np.ndarray:
    """Sum of the predicted token distributions of each cluster's meshes ``(k, 168)``, in chunks."""
    out = np.zeros((k, N_TOKENS), dtype=np.float64)
    for s in range(0, len(vectors), chunk):
        dist = predict_distributions(vectors[s : s + chunk], decoder, dtype=np.float32)
        out += group_sum(dist, labels[s : s + chunk], k)
    return out


def label_and_pool(
    parts: Mapping[str, SpacePart], jc: JointClusters, chunk: int = 65_536
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every mesh's cluster and the clusters' pooled distributions (fit rows only), in one pass per chunk."""
    pooled = np.zeros((jc.k, N_TOKENS), dtype=np.float64)
    labels: dict[str, np.ndarray] = {}
    for name, part in parts.items():
        n = len(part.vectors)
        lab = np.empty(n, dtype=np.int64)
        fit = np.zeros(n, dtype=bool)
        fit[part.fit_rows()] = True
        for s in range(0, n, chunk):
            vec = np.asarray(part.vectors[s : s + chunk], dtype=np.float32)
            rep = represent(vec, part.decoder, jc.basis)
            lab[s : s + chunk] = jc.nearest(rep)
            if part.decoder is not None:
                dist = rep * rep if jc.basis == "pattern" else predict_distributions(vec, part.decoder, dtype=np.float32)
                keep = fit[s : s + chunk]
                pooled += group_sum(dist[keep], lab[s : s + chunk][keep], jc.k)
        labels[name] = lab
    return labels, pooled


def _check_k(k: int, n: int) -> None:
    if not 2 <= k <= n:
        raise ParameterError(f"number of clusters: {k} is out of range; expected an integer from 2 to the number of meshes ({n})")


def fit_joint(
    parts: Mapping[str, SpacePart], k: int, space: str, seed: int = KMEANS_SEED, sample: int = FIT_SAMPLE
) -> JointClusters:
    """k-means over the union of the space's meshes; centres numbered in the OpenUAS order and named.

    Args:
        parts: the space's datasets by name.
        k: number of clusters (2 .. meshes).
        space: the space's name (stored with the result).
        seed: k-means seed (OpenUAS: 20210401); also draws the fit sample.
        sample: most meshes that fit the centres (every mesh is assigned afterwards).

    Raises:
        ParameterError: a bad k, or datasets of different dimensions.
    """
    from sklearn.cluster import KMeans

    if not parts:
        raise ParameterError("a space needs at least one dataset to cluster")
    dims = {p.vectors.shape[1] for p in parts.values()}
    if len(dims) != 1:
        raise ParameterError(f"the datasets of space {space!r} have different embedding sizes {sorted(dims)}")
    basis = _basis(parts)
    n = sum(len(p.fit_rows()) for p in parts.values())
    _check_k(k, n)
    rng = np.random.default_rng(seed)
    # The fit sample is drawn per dataset in proportion to its size, then represented (bounded memory).
    take = {name: p.fit_rows() for name, p in parts.items()}
    if n > sample:
        take = {
            name: np.sort(rng.choice(rows, max(1, round(len(rows) * sample / n)), replace=False)) for name, rows in take.items()
        }
    fit = np.concatenate([represent(p.vectors[take[name]], p.decoder, basis) for name, p in parts.items()]).astype(np.float64)
    km = KMeans(n_clusters=min(k, len(fit)), random_state=seed, n_init=4 if len(fit) <= 20_000 else 1).fit(fit)
    provisional = JointClusters(space, k, km.cluster_centers_, [""] * k, list(parts), [0] * k, seed=seed, basis=basis)
    labels, pooled = label_and_pool(parts, provisional)
    return _finish(parts, labels, pooled, provisional, reorder=True)


def _basis(parts: Mapping[str, SpacePart]) -> str:
    """Pattern space when every dataset has its decoder, else embedding space."""
    return "pattern" if all(p.decoder is not None for p in parts.values()) else "embedding"


def from_released(parts: Mapping[str, SpacePart], k: int, space: str) -> JointClusters:
    """The clusters a release already defines by its labels at ``k`` (kept as released, in their order).

    Centres are the mean embedding of each label over the space's (non-complemented) meshes.

    Raises:
        ParameterError: a dataset without labels at this k.
    """
    missing = [n for n, p in parts.items() if p.labels is None]
    if missing or not parts:
        raise ParameterError(f"datasets without released labels at k = {k}: {', '.join(missing) or '(none given)'}")
    basis = _basis(parts)
    sums: np.ndarray | None = None
    counts = np.zeros(k)
    for p in parts.values():
        rows = p.fit_rows()
        lab = np.asarray(p.labels)[rows]
        if lab.size and (lab.min() < 0 or lab.max() >= k):
            raise ParameterError(f"released labels outside 0..{k - 1}")
        points = represent(p.vectors[rows], p.decoder, basis).astype(np.float64)
        if sums is None:
            sums = np.zeros((k, points.shape[1]))
        np.add.at(sums, lab, points)
        counts += np.bincount(lab, minlength=k)
    assert sums is not None
    cent = sums / np.maximum(counts, 1)[:, None]
    jc = JointClusters(space, k, cent, [""] * k, list(parts), [0] * k, source="released", basis=basis)
    labels = {name: np.asarray(p.labels, dtype=np.int64) for name, p in parts.items()}
    pooled = np.zeros((k, N_TOKENS), dtype=np.float64)
    for name, p in parts.items():
        if p.decoder is not None:
            rows = p.fit_rows()
            pooled += pooled_distributions(p.vectors[rows], p.decoder, labels[name][rows], k)
    return _finish(parts, labels, pooled, jc, reorder=False)


def _finish(
    parts: Mapping[str, SpacePart], labels: Mapping[str, np.ndarray], pooled: np.ndarray, jc: JointClusters, reorder: bool
) -> JointClusters:
    k = jc.k
    sizes = np.zeros(k, dtype=np.int64)
    for name, p in parts.items():
        sizes += np.bincount(labels[name][p.fit_rows()], minlength=k)
    if reorder:
        has = pooled.sum(axis=1) > 0
        charts = stay_patterns(np.where(has[:, None], pooled, 1.0))
        scores = np.where(has & (sizes > 0), order_scores(charts), np.inf)
        order = np.argsort(scores, kind="stable")
        jc.centroids = jc.centroids[order]
        pooled, sizes = pooled[order], sizes[order]
    jc.sizes = sizes.tolist()
    jc.names = name_clusters(pooled) if pooled.sum() > 0 else [f"cluster {c}" for c in range(k)]
    return jc
