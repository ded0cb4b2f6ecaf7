"""Cross-period diff of two datasets of the same city (meshes present in both).

Two measures per mesh: the Euclidean distance between its embeddings (meaningful in an anchored
space, but it also carries the small shift that anchoring leaves between independently trained
datasets), and the **pattern change**: the Jensen-Shannon divergence (natural log, 0..ln 2) between
the stay distributions each period's own model assigns to the mesh, ``softmax(e W^T)``. The
pattern change compares what the meshes are used for, so it is immune to that shift; a mesh is
flagged as changed when it exceeds ``threshold``.

The threshold is decided from the data, not fixed (:func:`change_threshold`): most meshes of a
city do not change between two periods, so the bulk of the pattern changes is the noise of two
independent trainings on finite stays, and real changes, when there are any, form a separate group
far above it. A three-component mixture on the log scale finds that group (or finds none).

The cluster transition matrix counts meshes going from cluster i in period A to cluster j in
period B; with joint clusters (one shared space) the diagonal is the meshes that kept their use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.area2vec.model import predict_distributions
from core.errors import ParameterError
from core.release.layout import ReleaseDataset

MIN_SEPARATION = 3.0  # a group of changes sits at least 3x the noise's typical change (see change_threshold)


@dataclass(frozen=True)
class PeriodDiff:
    """The diff of datasets A and B over their common (non-complemented) meshes."""

    codes: np.ndarray
    index_a: np.ndarray
    index_b: np.ndarray
    distance: np.ndarray
    pattern_change: np.ndarray
    changed: np.ndarray
    labels_a: np.ndarray | None
    labels_b: np.ndarray | None
    k: int
    threshold: float = float("nan")

    @property
    def stayed(self) -> float:
        """Share of meshes in the same cluster in both periods (the transition matrix's diagonal)."""
        if self.labels_a is None or self.labels_b is None or len(self.labels_a) == 0:
            return float("nan")
        return float(np.mean(self.labels_a == self.labels_b))

    def transitions(self) -> np.ndarray:
        """``k x k`` counts of meshes in cluster i in A and cluster j in B."""
        if self.labels_a is None or self.labels_b is None:
            raise ParameterError("no cluster labels at this k in one of the datasets")
        out = np.zeros((self.k, self.k), dtype=np.int64)
        np.add.at(out, (self.labels_a, self.labels_b), 1)
        return out


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence (natural log) of two distribution arrays."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log(a / b), 0.0)
        return t.sum(axis=1)

    return np.maximum(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0)


def change_threshold(pattern_change: np.ndarray, separation: float = MIN_SEPARATION, seed: int = 0) -> float:
    """The pattern change above which a mesh counts as changed, from the data itself.

    The log pattern changes are modelled as a mixture of three normal components (scikit-learn's
    GaussianMixture, seeded): the training noise of unchanged meshes takes the heavy, low ones; a
    real change, when there is one, forms the highest component. When that component's centre is
    less than ``separation`` times the heaviest component's (no distinct group of changes), no
    mesh is flagged. Otherwise the threshold is the smallest change the model more likely assigns
    to the changed component than to noise.
    """
    from sklearn.mixture import GaussianMixture

    x = np.asarray(pattern_change, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 30:
        return float("inf")
    lx = np.log(x)[:, None]
    gm = GaussianMixture(n_components=3, random_state=seed, n_init=3).fit(lx)
    means = gm.means_.ravel()
    top, bulk = int(np.argmax(means)), int(np.argmax(gm.weights_))
    if top == bulk or np.exp(means[top] - means[bulk]) < separation:
        return float("inf")
    changed = gm.predict_proba(lx)[:, top] > 0.5
    changed &= lx.ravel() > means[bulk]  # never below the noise's own centre
    return float(np.exp(lx[changed].min())) if changed.any() else float("inf")


def diff_datasets(
    a: ReleaseDataset,
    b: ReleaseDataset,
    k: int = 10,
    threshold: float | None = None,
    labels_a: np.ndarray | None = None,
    labels_b: np.ndarray | None = None,
) -> PeriodDiff:
    """Compare two datasets over the meshes both hold with their own embedding.

    Args:
        a, b: the two datasets (periods).
        k: the clustering whose transitions are counted.
        threshold: the pattern change above which a mesh counts as changed; ``None``: decided from
            the data (:func:`change_threshold`).
        labels_a, labels_b: each dataset's cluster labels at ``k`` (all meshes); default: the
            datasets' released labels at ``k``, where present.

    Raises:
        ParameterError: when a dataset has no decoder (no model file) or the two share no mesh.
    """
    if a.decoder is None or b.decoder is None:
        raise ParameterError("both datasets need their model (decoder) for the pattern change")
    own_a = np.flatnonzero(~a.complemented) if a.complemented is not None else np.arange(a.n_meshes)
    own_b = np.flatnonzero(~b.complemented) if b.complemented is not None else np.arange(b.n_meshes)
    # A mesh is identified by code and size (10-digit codes are 250 m here).
    key_a = a.codes[own_a] * 1000 + a.mesh_sizes[own_a]
    key_b = b.codes[own_b] * 1000 + b.mesh_sizes[own_b]
    _, ia, ib = np.intersect1d(key_a, key_b, return_indices=True)
    if len(ia) == 0:
        raise ParameterError(f"{a.name} and {b.name} share no mesh")
    ia, ib = own_a[ia], own_b[ib]
    distance = np.linalg.norm(a.vectors[ia].astype(np.float64) - b.vectors[ib], axis=1)
    change = js_divergence(predict_distributions(a.vectors[ia], a.decoder), predict_distributions(b.vectors[ib], b.decoder))
    la = a.labels.get(k) if labels_a is None else labels_a
    lb = b.labels.get(k) if labels_b is None else labels_b
    thr = change_threshold(change) if threshold is None else float(threshold)
    return PeriodDiff(
        a.codes[ia],
        ia,
        ib,
        distance,
        change,
        change > thr,
        None if la is None else np.asarray(la)[ia],
        None if lb is None else np.asarray(lb)[ib],
        k,
        thr,
    )
