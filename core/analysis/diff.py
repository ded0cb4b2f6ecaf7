"""Cross-period diff of two datasets of the same city (meshes present in both).

Two measures per mesh: the Euclidean distance between its embeddings (meaningful in an anchored
space, but it also carries the small shift that anchoring leaves between independently trained
datasets), and the **pattern change**: the Jensen-Shannon divergence (natural log, 0..ln 2) between
the stay distributions each period's own model assigns to the mesh, ``softmax(e W^T)``. The
pattern change compares what the meshes are used for, so it is immune to that shift; a mesh is
flagged as changed when it exceeds ``threshold``.

The threshold is decided from the data, not fixed (:func:`change_threshold`): the pattern changes
of unchanged meshes are the noise of two independent trainings on finite stays, the lowest group;
real changes, when there are any, form a separate group far above it (in a small city it can hold
most meshes). A mixture on the log scale, its size chosen by BIC, finds that group (or finds none).

The cluster transition matrix counts meshes going from cluster i in period A to cluster j in
period B; with joint clusters (one shared space) the diagonal is the meshes that kept their use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.area2vec.model import predict_distributions
from core.errors import ParameterError
from core.release.layout import ReleaseDataset

MIN_SEPARATION = 3.0  # a group of changes sits at least 3x the noise's typical change (see change_threshold)
MAX_GROUPS = 4  # change_threshold's mixture has 1 to 4 components (chosen by BIC)
MIN_MESHES = 30  # fewer compared meshes (with a change above 0): nothing is flagged from the data
FIT_SAMPLE = 20_000  # change_threshold fits its mixture on at most this many meshes (a seeded sample)
MIN_SUGGEST_SEPARATION = 2.0  # below a distinct group, larger changes this far above the noise get a split to offer
MIN_NOISE_SHARE = 0.2  # change_threshold's noise holds at least this share of the meshes (its lowest components)
# Embedding distances between the periods are shown in classes at these quantiles of the pair's own
# distances (the closest half, ..., the farthest 3 %): fixed distance classes saturate, since
# anchoring leaves every mesh of two independent trainings a similar small distance apart.
DISTANCE_QUANTILES = (0.5, 0.75, 0.9, 0.97)


@dataclass(frozen=True)
class ChangeRule:
    """What :func:`change_rule` found in a pair's pattern changes.

    Attributes:
        threshold: changed above this; infinite when nothing is flagged.
        reason: why nothing is flagged (``""`` when a group of changes was found).
        noise: the noise's typical change (centre of its components; NaN with too few meshes).
        group: the typical change of the components above the noise's lowest ones (NaN: one group).
        split: where the mixture separates those from the noise: the threshold, or (offered to set by
            hand) the one it would have been had the groups been ``separation`` apart, when they are at
            least :data:`MIN_SUGGEST_SEPARATION` apart (NaN: none).
    """

    threshold: float
    reason: str = ""
    noise: float = float("nan")
    group: float = float("nan")
    split: float = float("nan")


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
    sizes: np.ndarray | None = None  # mesh sizes (m) of ``codes``; a code is unique only with its size
    rule: ChangeRule | None = None  # what the data said about the threshold (None: not asked)

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

    def with_threshold(self, threshold: float) -> PeriodDiff:
        """The same diff with another threshold for "changed" (the measures are not recomputed)."""
        thr = float(threshold)
        return PeriodDiff(
            self.codes,
            self.index_a,
            self.index_b,
            self.distance,
            self.pattern_change,
            self.pattern_change > thr,
            self.labels_a,
            self.labels_b,
            self.k,
            thr,
            self.sizes,
            self.rule,
        )

    def in_cell(self, cell: tuple[int, int] | None) -> np.ndarray:
        """Mask of the meshes in transition-matrix cell ``(cluster in A, cluster in B)``; all when ``None``."""
        if cell is None:
            return np.ones(len(self.codes), dtype=bool)
        if self.labels_a is None or self.labels_b is None:
            raise ParameterError("no cluster labels at this k in one of the datasets")
        return (self.labels_a == int(cell[0])) & (self.labels_b == int(cell[1]))

    def distance_edges(self) -> np.ndarray:
        """Class edges of the embedding distance: :data:`DISTANCE_QUANTILES` of this pair's distances.

        Rounded to two significant digits and strictly increasing (ties dropped), so that a legend
        reads them as they are used.
        """
        return distance_edges(self.distance)

    def distance_classes(self) -> np.ndarray:
        """Each mesh's distance class: 0 (the closest, below the first edge) .. ``len(edges)``."""
        return np.searchsorted(self.distance_edges(), self.distance, side="right").astype(np.int64)

    def find(self, code: int, size: int) -> int | None:
        """The position of mesh ``(code, size)`` among the compared meshes, or ``None`` when it is not compared."""
        hit = self.codes == int(code)
        if self.sizes is not None:
            hit &= self.sizes == int(size)
        rows = np.flatnonzero(hit)
        return int(rows[0]) if rows.size else None


def distance_edges(distance: np.ndarray, quantiles: Sequence[float] = DISTANCE_QUANTILES) -> np.ndarray:
    """Class edges at ``quantiles`` of ``distance``, two significant digits, strictly increasing."""
    d = np.asarray(distance, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return np.zeros(0)
    q = np.quantile(d, quantiles)
    with np.errstate(divide="ignore"):
        digits = np.where(q > 0, 1 - np.floor(np.log10(np.where(q > 0, q, 1.0))), 0).astype(int)
    rounded = np.array([round(float(v), int(n)) for v, n in zip(q, digits)])  # 4 values
    return np.unique(rounded[rounded > 0])


def change_table(
    diff: PeriodDiff, names: Sequence[str] | None = None, cell: tuple[int, int] | None = None, limit: int | None = None
) -> pd.DataFrame:
    """The compared meshes ranked by pattern change, the most changed first (ties: by code).

    Args:
        diff: the diff of periods A and B.
        names: the shown name of every cluster at ``diff.k`` (one shared space: the same in A and B).
        cell: only the meshes of this transition-matrix cell ``(cluster in A, cluster in B)``.
        limit: only the first ``limit`` (>= 1) rows: ``.head(limit)`` of the whole table, without
            ranking every mesh (the dashboard shows the top of the list).

    Returns:
        One row per mesh: ``rank`` (1 = the most changed), ``code``, ``mesh_size``, ``cluster_a``,
        ``name_a``, ``cluster_b``, ``name_b``, ``pattern_change``, ``distance``, ``changed``.
    """
    rows = np.flatnonzero(diff.in_cell(cell))
    if limit is not None and 1 <= limit < len(rows):
        # Every row of the first ``limit`` has a key no larger than the limit-th smallest: rank only those
        # (ties and NaN included, so the order below picks exactly the rows of the full ranking).
        key = -diff.pattern_change[rows]
        kth = np.partition(key, limit - 1)[limit - 1]
        rows = rows[~(key > kth)]
    order = rows[np.lexsort((diff.codes[rows], -diff.pattern_change[rows]))][:limit]
    n = len(order)
    no_labels = np.full(n, -1, dtype=np.int64)
    la = diff.labels_a[order].astype(np.int64) if diff.labels_a is not None else no_labels
    lb = diff.labels_b[order].astype(np.int64) if diff.labels_b is not None else no_labels
    named = np.asarray(list(names) + [""], dtype=object) if names is not None else np.full(1, "", dtype=object)
    return pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "code": diff.codes[order].astype(np.int64),
            "mesh_size": (diff.sizes[order] if diff.sizes is not None else np.zeros(n)).astype(np.int64),
            "cluster_a": la,
            "name_a": named[np.where((la >= 0) & (la < len(named) - 1), la, -1)],
            "cluster_b": lb,
            "name_b": named[np.where((lb >= 0) & (lb < len(named) - 1), lb, -1)],
            "pattern_change": diff.pattern_change[order],
            "distance": diff.distance[order],
            "changed": diff.changed[order],
        }
    )


def change_csv(table: pd.DataFrame) -> str:
    """:func:`change_table` as CSV text (measures to 6 decimals, ``changed`` as true / false)."""
    out = table.copy()
    out["pattern_change"] = out["pattern_change"].round(6)
    out["distance"] = out["distance"].round(6)
    out["changed"] = np.where(out["changed"].to_numpy(bool), "true", "false")
    return str(out.to_csv(index=False, lineterminator="\n"))


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
    """The pattern change above which a mesh counts as changed, from the data itself (:func:`change_rule`)."""
    return change_rule(pattern_change, separation, seed).threshold


def too_few_reason(pattern_change: np.ndarray) -> str | None:
    """Why no rule can be fitted, when there are fewer than :data:`MIN_MESHES` usable (finite, > 0) changes."""
    x = np.asarray(pattern_change, dtype=np.float64)
    usable = int((np.isfinite(x) & (x > 0)).sum())
    if usable >= MIN_MESHES:
        return None
    return f"too few compared meshes ({usable:,}; the rule needs {MIN_MESHES}) to tell changes from noise"


def change_rule(pattern_change: np.ndarray, separation: float = MIN_SEPARATION, seed: int = 0) -> ChangeRule:
    """The threshold from the data, and why there is none when nothing is flagged.

    The log pattern changes (over their median: the rule is scale-free) are modelled as a mixture of
    normal components (scikit-learn's GaussianMixture, seeded), their number (1 to :data:`MAX_GROUPS`)
    chosen by BIC: one component = no distinct group of changes. The noise of two trainings is the
    lowest components holding at least :data:`MIN_NOISE_SHARE` of the meshes (a thin low tail of
    near-identical patterns may get a component of its own), joined by every next one whose centre
    is less than ``separation`` times the noise's (a noise split in two is still noise); the
    components above are the changes, however many meshes they hold (in a small city most meshes
    may have changed: the heaviest group is not necessarily the noise). The threshold is the smallest change the model more likely assigns to
    the changes than to the noise, and never below the noise's centre; infinite (nothing flagged)
    without a group of changes or with fewer than :data:`MIN_MESHES` meshes. Above
    :data:`FIT_SAMPLE` meshes the mixture is fitted on a seeded sample (bounded time).
    """
    from sklearn.mixture import GaussianMixture

    x = np.asarray(pattern_change, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    few = too_few_reason(x)
    if few is not None:
        return ChangeRule(float("inf"), few)
    scale = float(np.median(x))
    z = np.log(x / scale)[:, None]
    fit_on = z if len(z) <= FIT_SAMPLE else np.random.default_rng(seed).choice(z, FIT_SAMPLE, replace=False)
    fits = [GaussianMixture(n, random_state=seed, n_init=3).fit(fit_on) for n in range(1, MAX_GROUPS + 1)]
    gm = min(fits, key=lambda g: g.bic(fit_on))
    means, weights = gm.means_.ravel(), gm.weights_

    def centre(group: list[int]) -> float:
        return float(np.exp(np.average(means[group], weights=weights[group])) * scale)

    def split(low: list[int], high: list[int]) -> float:
        hit = (gm.predict_proba(z)[:, high].sum(axis=1) > 0.5) & (x > centre(low))
        return float(x[hit].min()) if hit.any() else float("inf")

    order = [int(c) for c in np.argsort(means)]
    # The noise: the lowest components up to a share of MIN_NOISE_SHARE of the meshes (a thin low tail
    # of near-identical patterns alone is not the noise), then every next one less than ``separation`` above.
    n_low = int(np.searchsorted(np.cumsum(weights[order]), MIN_NOISE_SHARE)) + 1
    noise = order[:n_low]
    for c in order[n_low:]:
        if np.exp(means[c]) * scale >= separation * centre(noise):
            break
        noise.append(c)
    changes = order[len(noise) :]
    if changes:
        thr = split(noise, changes)
        return ChangeRule(
            thr, "" if np.isfinite(thr) else "no mesh is more likely a change than noise", centre(noise), centre(changes), thr
        )
    low, high = order[:n_low], order[n_low:]
    if not high:
        return ChangeRule(float("inf"), "no distinct group of changes (the pattern changes form one group)", centre(noise))
    exact = centre(high) / centre(low)
    ratio = math.floor(exact * 10) / 10  # 2.99x reads 2.9x, not 3.0x
    return ChangeRule(
        float("inf"),
        f"no distinct group of changes (the larger ones, typically {centre(high):.3g}, are {ratio:.1f}x the noise's "
        f"{centre(low):.3g}; a distinct group sits {separation:g}x above it)",
        centre(low),
        centre(high),
        split(low, high) if exact >= MIN_SUGGEST_SEPARATION else float("nan"),
    )


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
    rule = change_rule(change) if threshold is None else None
    thr = rule.threshold if rule is not None else float(threshold)  # type: ignore[arg-type]
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
        a.mesh_sizes[ia],
        rule,
    )
