"""Truth-checked tasks for walker embeddings: commuters, next location, region types.

- Commuter identification: logistic regression on user embeddings, fit on the people the model
  trained on and scored on held-out people (never seen by the transformer nor the classifier).
- Next location: for held-out people, from a record in the last part of their trajectory, where
  are they 0.5 / 1 / 2.5 h later (the record covering that time)? Error in km against two
  baselines: "stay where you are" and "go to your most visited cell for this time slot" (learned
  from the person's earlier records).
- Region types: k-means (k = number of types) and a logistic-regression classifier (half of the
  meshes to fit, half to score) on region embeddings vs the known district types; the same on
  Area2Vec's embeddings of the same meshes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.walkers.model import WalkerModel
from core.walkers.trajectories import DAY_MINUTES, SLOT_MINUTES, Trajectories, covering_record

HORIZONS_MINUTES = (30, 60, 150)
SLOTS_PER_DAY = DAY_MINUTES // SLOT_MINUTES


def _logreg(seed: int) -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))


def classify(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Fit a logistic regression on ``train`` rows, score on ``test`` rows.

    Returns:
        accuracy, balanced accuracy, the majority-class accuracy on the test rows, and the counts.
    """
    from sklearn.metrics import balanced_accuracy_score

    if len(np.unique(y[train])) < 2:
        raise InputError("classifier", "the training people have one class only", expected="both classes")
    clf = _logreg(seed)
    clf.fit(x[train], y[train])  # type: ignore[attr-defined]
    pred = clf.predict(x[test])  # type: ignore[attr-defined]
    vals, counts = np.unique(y[train], return_counts=True)
    majority = vals[np.argmax(counts)]
    return {
        "accuracy": float((pred == y[test]).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y[test], pred)),
        "majority_accuracy": float((y[test] == majority).mean()),
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
    }


def mobility_features(traj: Trajectories, model: WalkerModel) -> np.ndarray:
    """A hand-made baseline per person: mean position, radius of gyration, farthest distance from the mean."""
    km = model.km(traj)
    n = np.bincount(traj.uid, minlength=traj.n_users).astype(np.float64)
    mean = np.stack([np.bincount(traj.uid, km[:, k], traj.n_users) for k in range(2)], axis=1) / np.maximum(n, 1)[:, None]
    d = np.linalg.norm(km - mean[traj.uid], axis=1)
    rg = np.sqrt(np.bincount(traj.uid, d**2, traj.n_users) / np.maximum(n, 1))
    far = np.zeros(traj.n_users)
    np.maximum.at(far, traj.uid, d)
    return np.column_stack([mean, rg, far])


def commuter_task(
    traj: Trajectories, model: WalkerModel, user_vectors: np.ndarray, commuter: np.ndarray, seed: int = 0
) -> dict[str, object]:
    """Commuter identification from user embeddings (held-out people), with a hand-feature baseline.

    Args:
        commuter: truth per person of ``traj`` (bool; NaN for unknown people, who are left out).
    """
    known = ~pd.isna(commuter)
    y = np.asarray(pd.Series(commuter).fillna(False).astype(bool))
    test = model.held_out(traj) & known
    train = ~model.held_out(traj) & known
    if not test.any() or not train.any():
        raise InputError(traj.source, "no held-out or no training people with a commuter flag", expected="truth for both")
    out: dict[str, object] = {"embeddings": classify(user_vectors, y, train, test, seed)}
    out["baseline_mobility_features"] = classify(mobility_features(traj, model), y, train, test, seed)
    out["commuter_share"] = float(y[known].mean())
    return out


def _covering(traj: Trajectories, anchor: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Index of the record of the anchor's person that covers time ``tau``, or -1."""
    return covering_record(traj.uid * 1e8 + traj.start, traj.uid, traj.start, traj.duration, anchor, tau)


def _slot_mode(traj: Trajectories, km: np.ndarray, history: np.ndarray) -> pd.DataFrame:
    """Per (person, half-hour slot of the day): the position of the cell where the person spent most time."""
    regions = traj.regions()[0]
    h = np.flatnonzero(history)
    first = np.floor(traj.start[h] / SLOT_MINUTES).astype(np.int64)
    last = np.floor((traj.start[h] + np.maximum(traj.duration[h], 1.0) - 1e-6) / SLOT_MINUTES).astype(np.int64)
    n = np.clip(last - first + 1, 1, SLOTS_PER_DAY)
    rec = np.repeat(h, n)
    slot = (np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) % SLOTS_PER_DAY
    occ = pd.DataFrame({"u": traj.uid[rec], "s": slot, "r": regions[rec]})
    counts = occ.groupby(["u", "s", "r"], sort=False).size().rename("n").reset_index()
    best = counts.sort_values(["u", "s", "n", "r"], ascending=[True, True, False, True]).drop_duplicates(["u", "s"])
    pos = pd.DataFrame({"u": traj.uid[h], "r": regions[h], "x": km[h, 0], "y": km[h, 1]}).groupby(["u", "r"])[["x", "y"]].mean()
    best = best.join(pos, on=["u", "r"])
    return best.set_index(["u", "s"])[["x", "y"]]


def next_location_task(
    traj: Trajectories,
    model: WalkerModel,
    horizons: tuple[int, ...] = HORIZONS_MINUTES,
    history_share: float = 0.7,
    max_anchors: int = 20000,
    seed: int = 0,
) -> dict[str, object]:
    """Next-location error (km) of the model vs stay-put and slot-mode baselines, held-out people only.

    For each held-out person, the first ``history_share`` of their records is history (the slot-mode
    baseline learns from it); anchors are the later records. Only anchors whose person has a record
    covering the query time are scored.
    """
    held = model.held_out(traj)
    off = traj.offsets()
    n_tok = np.diff(off)
    hist_end = off[:-1] + np.ceil(history_share * n_tok).astype(np.int64)
    pos_in = np.arange(len(traj)) - off[traj.uid]
    history = held[traj.uid] & (np.arange(len(traj)) < hist_end[traj.uid])
    eligible = np.flatnonzero(held[traj.uid] & (np.arange(len(traj)) >= hist_end[traj.uid]) & (pos_in >= 1))
    if len(eligible) == 0:
        raise InputError(traj.source, "no held-out records to predict from", expected="held-out people with several records")
    rng = np.random.default_rng(seed)
    if len(eligible) > max_anchors:
        eligible = np.sort(rng.choice(eligible, max_anchors, replace=False))
    km = model.km(traj)
    mode = _slot_mode(traj, km, history)
    out: dict[str, object] = {"n_people": int(held.sum()), "history_share": history_share}
    for h in horizons:
        tau = traj.start[eligible] + h
        j = _covering(traj, eligible, tau)
        ok = j >= 0
        a, t, jj = eligible[ok], tau[ok], j[ok]
        truth = km[jj]
        pred = model.predict_km(traj, a, t)
        stay = km[a]
        slot = (np.floor(t / SLOT_MINUTES).astype(np.int64)) % SLOTS_PER_DAY
        idx = pd.MultiIndex.from_arrays([traj.uid[a], slot])
        sm = mode.reindex(idx).to_numpy()
        sm = np.where(np.isnan(sm), stay, sm)  # no history for this slot: stay where you are
        err = {name: np.linalg.norm(p - truth, axis=1) for name, p in (("model", pred), ("stay_put", stay), ("slot_mode", sm))}
        out[f"{h}min"] = {
            "n": int(ok.sum()),
            **{f"{k}_mean_km": float(v.mean()) for k, v in err.items()},
            **{f"{k}_median_km": float(np.median(v)) for k, v in err.items()},
            "moved_share": float((jj != a).mean()),
        }
    return out


def kmeans_ari(x: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Adjusted Rand index of k-means (k = number of true types) against the true types."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    k = len(np.unique(labels))
    pred = KMeans(k, n_init=4, random_state=seed).fit_predict(x)
    return float(adjusted_rand_score(labels, pred))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def region_type_task(sets: dict[str, np.ndarray], types: np.ndarray, seed: int = 0) -> dict[str, dict[str, float]]:
    """ARI of k-means and a classifier's accuracy (half the meshes to fit, stratified) per embedding set.

    Args:
        sets: name -> meshes x dim, all rows of the same meshes in the same order.
        types: the true type of each mesh.
    """
    from sklearn.model_selection import train_test_split

    n = len(types)
    tr_idx, _ = train_test_split(np.arange(n), test_size=0.5, random_state=seed, stratify=types)
    train = np.zeros(n, bool)
    train[tr_idx] = True
    vals, counts = np.unique(types[train], return_counts=True)
    out: dict[str, dict[str, float]] = {}
    for name, x in sets.items():
        res = classify(x, types, train, ~train, seed)
        out[name] = {
            "ari_kmeans": kmeans_ari(x, types, seed),
            "ari_kmeans_unit": kmeans_ari(_unit(x), types, seed),
            "accuracy": res["accuracy"],
            "balanced_accuracy": res["balanced_accuracy"],
        }
    out["_meshes"] = {"n": float(n), "n_types": float(len(vals)), "majority_accuracy": float(counts.max() / counts.sum())}
    return out


def demo_region_types(traj: Trajectories, user_vectors: np.ndarray, stays_path: Path, seed: int = 0) -> dict[str, object] | None:
    """Region-type recovery on a demo dataset: walker region embeddings (sum, mean) vs the demo's Area2Vec.

    Uses the stays file's own meshes (``code`` level), the demo's ``truth/meshes.parquet`` and the
    release's GeoJSON of the same dataset (complemented meshes left out). None when they are missing.
    """
    from core.release.layout import CITY_DIR, GEOJSON_DIR, DatasetRef, read_dataset
    from core.walkers.regions import region_embeddings

    root, name = stays_path.parent.parent, stays_path.stem
    meshes = root / "truth" / "meshes.parquet"
    gj = root / CITY_DIR / GEOJSON_DIR / f"{name}.geojson"
    if stays_path.parent.name != "stays" or not meshes.is_file() or not gj.is_file() or traj.code is None:
        return None
    truth = pd.read_parquet(meshes)
    truth = truth[(truth["dataset"] == name) & (truth["district"] != "unknown")].drop_duplicates("code").set_index("code")
    ds = read_dataset(DatasetRef(root.name, name, gj, None))
    real = ~ds.complemented if ds.complemented is not None else np.ones(ds.n_meshes, bool)
    a2v = pd.DataFrame(ds.vectors[real], index=ds.codes[real])
    sums = region_embeddings(traj, user_vectors, "code", "sum")
    means = region_embeddings(traj, user_vectors, "code", "mean")
    common = np.intersect1d(np.intersect1d(sums.keys, truth.index.to_numpy()), a2v.index.to_numpy())
    if len(common) < 20:
        return None
    pos = np.searchsorted(sums.keys, common)
    types = truth["district"].reindex(common).to_numpy().astype(str)
    counts = pd.Series(types).value_counts()
    keep = np.isin(types, counts[counts >= 4].index.to_numpy())  # a stratified half needs a few meshes per type
    sets = {
        "walkers_sum": sums.vectors[pos][keep],
        "walkers_mean": means.vectors[pos][keep],
        "area2vec": a2v.reindex(common).to_numpy(np.float32)[keep],
    }
    out: dict[str, object] = dict(region_type_task(sets, types[keep], seed))
    out["types"] = {str(k): int(v) for k, v in pd.Series(types[keep]).value_counts().items()}
    out["median_visitors"] = float(np.median(sums.n_visitors[pos][keep]))
    return out


def evaluate_all(
    model: WalkerModel,
    traj: Trajectories,
    truth: Path | None = None,
    stays_path: Path | None = None,
    max_anchors: int = 20000,
    seed: int = 0,
) -> dict[str, object]:
    """Every task that the available truth allows, as plain data."""
    from core.walkers.trajectories import people_table

    users = model.embed_users(traj)
    report: dict[str, object] = {
        "people": traj.n_users,
        "held_out_people": int(model.held_out(traj).sum()),
        "records": len(traj),
        "parameters": model.n_params_,
        "train_seconds": model.seconds_,
    }
    if truth is not None:
        people = people_table(traj, truth)
        if "commuter" in people.columns:
            report["commuters"] = commuter_task(traj, model, users, people["commuter"].to_numpy(), seed)
    report["next_location"] = next_location_task(traj, model, max_anchors=max_anchors, seed=seed)
    if stays_path is not None:
        regions = demo_region_types(traj, users, stays_path, seed)
        if regions is not None:
            report["region_types"] = regions
    return report
