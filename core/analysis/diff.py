"""Cross-period diff of two datasets of the same city (meshes present in both).

Two measures per mesh: the Euclidean distance between its embeddings (meaningful in an anchored
space, but it also carries the small shift that anchoring leaves between independently trained
datasets), and the **pattern change**: the Jensen-Shannon divergence (natural log, 0..ln 2) between
the stay distributions each period's own model assigns to the mesh, ``softmax(e W^T)``. The
pattern change compares what the meshes are used for, so it is immune to that shift; a mesh is
flagged as changed when it exceeds ``threshold``. The cluster transition matrix counts meshes
going from cluster i in period A to cluster j in period B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.area2vec.model import predict_distributions
from core.errors import ParameterError
from core.release.layout import ReleaseDataset

DEFAULT_THRESHOLD = 0.04  # JS divergence; measured on the demo (see README)


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


def diff_datasets(a: ReleaseDataset, b: ReleaseDataset, k: int = 10, threshold: float = DEFAULT_THRESHOLD) -> PeriodDiff:
    """Compare two datasets over the meshes both hold with their own embedding.

    Raises:
        ValueError: when a dataset has no decoder (no model file) or the two share no mesh.
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
    la = a.labels.get(k)
    lb = b.labels.get(k)
    return PeriodDiff(
        a.codes[ia],
        ia,
        ib,
        distance,
        change,
        change > threshold,
        None if la is None else la[ia],
        None if lb is None else lb[ib],
        k,
    )
