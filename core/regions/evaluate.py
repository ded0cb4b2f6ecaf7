"""Cross-city label transfer, evaluated honestly.

The paper's protocol (section 4.2.3): a ridge (alpha 1) is fitted on every source region's embedding
and label and applied to every target region; negative predictions are clipped to 0. Its labels are
sums over regions of very different sizes, so a constant or a size proxy already scores well on MAE.
Every result therefore comes with two baselines computed in the same run:

- ``mean``: the source city's mean label for every target region;
- ``area``: a ridge on ``log(area)`` alone, fitted on the source city;

and on three scales of the label: ``sum`` (as given), ``density`` (per km^2) and ``log``
(``log(1 + sum)``), with a rank metric (Spearman) that a constant cannot game (it is undefined, NaN,
for a constant prediction). Nothing here looks at the target's labels except to score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from core.errors import InputError
from core.progress import Progress
from core.regions.config import BASELINES, SCALES, CoreConfig, TransferConfig
from core.regions.graph import RegionGraph

METRICS = ("mae", "rmse", "mape", "spearman", "r2")


def scaled_label(graph: RegionGraph, label: str, scale: str) -> np.ndarray:
    """A label on one scale: ``sum`` (as given), ``density`` (per km^2) or ``log`` (``log(1 + sum)``)."""
    y = graph.label(label)
    if scale == "sum":
        return y
    if scale == "density":
        return y / graph.area_km2
    if scale == "log":
        return np.log1p(np.clip(y, 0, None))
    raise InputError("scale", f"unknown scale '{scale}'", expected=f"one of {', '.join(SCALES)}")


def ridge_transfer(x_source: np.ndarray, y_source: np.ndarray, x_target: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Fit a ridge on the source, predict the target, clip negatives to 0."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(np.asarray(x_source, dtype=np.float64), y_source)
    return np.clip(model.predict(np.asarray(x_target, dtype=np.float64)), 0.0, None)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE (a ratio, over regions with a non-zero label), Spearman and R^2."""
    from scipy.stats import spearmanr

    err = pred - y
    nz = y != 0
    constant = np.ptp(pred) == 0
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "mape": float(np.abs(err[nz] / y[nz]).mean()) if nz.any() else float("nan"),
        "spearman": float("nan") if constant else float(spearmanr(y, pred).statistic),
        "r2": float(1.0 - (err**2).sum() / ((y - y.mean()) ** 2).sum()),
    }


def baseline_prediction(
    source: RegionGraph, target: RegionGraph, y_source: np.ndarray, baseline: str, alpha: float = 1.0
) -> np.ndarray:
    """The ``mean`` or ``area`` baseline's prediction for every target region."""
    if baseline == "mean":
        return np.full(target.n, float(y_source.mean()))
    if baseline == "area":
        return ridge_transfer(np.log(source.area_km2)[:, None], y_source, np.log(target.area_km2)[:, None], alpha)
    raise InputError("baseline", f"unknown baseline '{baseline}'", expected=f"one of {', '.join(BASELINES)}")


def _summarise(method: str, label: str, scale: str, runs: list[dict[str, float]]) -> dict[str, object]:
    row: dict[str, object] = {"method": method, "label": label, "scale": scale}
    for m in METRICS:
        values = np.array([r[m] for r in runs], dtype=np.float64)
        finite = values[np.isfinite(values)]
        row[m] = float(finite.mean()) if finite.size else float("nan")
        row[f"{m}_sd"] = float(finite.std()) if finite.size else float("nan")
    row["runs"] = len(runs)
    return row


def evaluate_embeddings(
    source: RegionGraph,
    target: RegionGraph,
    runs: Sequence[tuple[np.ndarray, np.ndarray]],
    method: str,
    labels: Sequence[str],
    scales: Sequence[str] = SCALES,
    config: TransferConfig | None = None,
    baselines: bool = True,
) -> list[dict[str, object]]:
    """Score embeddings (one ``(source, target)`` pair per run/seed) and the baselines.

    Args:
        source: the source city (its labels train the ridge).
        target: the target city (its labels only score).
        runs: per seed, the source's and the target's embeddings (rows = regions).
        method: the name the rows carry.
        labels: label names present in both cities.
        scales: label scales (:data:`~core.regions.config.SCALES`).
        config: the ridge's alpha.
        baselines: add the ``mean`` and ``area`` rows.

    Returns:
        Rows ``{"method", "label", "scale", "mae", "rmse", "mape", "spearman", "r2"}`` (means over
        runs) with ``*_sd`` beside each and ``runs``.
    """
    config = config or TransferConfig()
    for z_s, z_t in runs:
        if z_s.shape[0] != source.n or z_t.shape[0] != target.n:
            raise InputError(
                method,
                f"embeddings of {z_s.shape[0]} and {z_t.shape[0]} regions",
                expected=f"{source.n} (source) and {target.n} (target) rows",
            )
    rows: list[dict[str, object]] = []
    for label in labels:
        for scale in scales:
            y_s, y_t = scaled_label(source, label, scale), scaled_label(target, label, scale)
            scored = [scores(y_t, ridge_transfer(z_s, y_s, z_t, config.ridge_alpha)) for z_s, z_t in runs]
            rows.append(_summarise(method, label, scale, scored))
            if baselines:
                for b in BASELINES:
                    rows.append(
                        _summarise(
                            b, label, scale, [scores(y_t, baseline_prediction(source, target, y_s, b, config.ridge_alpha))]
                        )
                    )
    return rows


def transfer(
    source: RegionGraph,
    target: RegionGraph,
    method: str,
    labels: Sequence[str],
    seeds: int = TransferConfig.seeds,
    config: CoreConfig | None = None,
    scales: Sequence[str] = SCALES,
    progress: Callable[[Progress], None] | None = None,
    *,
    anchors: Any = None,
    area2vec: Any = None,
) -> tuple[list[dict[str, object]], list[float]]:
    """Train ``method`` on the two cities once per seed and score the source -> target transfer.

    Seeds are ``config.seed, config.seed + 1, ...``; the model of every seed is its last epoch (no
    selection on any label). ``anchors`` and ``area2vec`` are passed to
    :func:`~core.regions.methods.fit_method` (the ``area2vec`` method's anchor set and training).

    Returns:
        The rows of :func:`evaluate_embeddings` and the training seconds of each seed.
    """
    import time

    from core.regions.methods import fit_method

    if seeds < 1:
        raise InputError("seeds", f"{seeds} seeds", expected="at least 1")
    for label in labels:
        source.label(label), target.label(label)
    config = config or CoreConfig()
    runs, seconds = [], []
    for s in range(seeds):
        start = time.perf_counter()
        z = fit_method(
            [source, target], method, replace(config, seed=config.seed + s), progress, anchors=anchors, area2vec=area2vec
        )
        seconds.append(time.perf_counter() - start)
        runs.append((z[0], z[1]))
    return evaluate_embeddings(source, target, runs, method, labels, scales), seconds
