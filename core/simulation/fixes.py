"""Synthetic raw GPS fixes of people who share places (tests and benchmarks of the GPS -> counts path).

Each person alternates stays at places of their own (a few of a shared list, popular places chosen
more often, 15 m of jitter, a fix every 40-80 s) and trips of fixes scattered hundreds of metres
apart. Shared places give meshes with many distinct people, so the privacy rule keeps some of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def shared_places(
    n_places: int, seed: int = 0, centre: tuple[float, float] = (35.68, 139.76), spread_m: float = 5000.0
) -> np.ndarray:
    """``n_places x 2`` (lat, lon) scattered around ``centre``."""
    rng = np.random.default_rng(seed)
    north = rng.uniform(-spread_m, spread_m, n_places)
    east = rng.uniform(-spread_m, spread_m, n_places)
    lat = centre[0] + north / 111_195.0
    lon = centre[1] + east / (111_195.0 * np.cos(np.radians(centre[0])))
    return np.column_stack([lat, lon])


def person_fixes(
    people: np.ndarray, per_person: int, places: np.ndarray, seed: int = 0, t0: int = 1_617_202_800, own_places: int = 5
) -> pd.DataFrame:
    """Fixes of the given people (ids), ``per_person`` each, sorted by person then time.

    Columns: ``user_id`` (text ``p<id>``), ``timestamp`` (epoch seconds, int64), ``lat``, ``lon``.
    A person's fixes depend only on ``seed`` and the person's id, so any split of people or of time
    into files gives the same fixes.
    """
    people = np.asarray(people, dtype=np.int64)
    n = len(people)
    out_t = np.empty((n, per_person), np.int64)
    out_lat = np.empty((n, per_person))
    out_lon = np.empty((n, per_person))
    weights = 1.0 / np.arange(1, len(places) + 1)
    weights /= weights.sum()
    for k, pid in enumerate(people):  # one vectorised draw per person (a few thousand fixes each)
        rng = np.random.default_rng([seed, int(pid)])
        mine = rng.choice(len(places), own_places, replace=False, p=weights)
        n_seg = per_person // 10 + 2
        is_stay = np.arange(n_seg) % 2 == 0
        seg_len = np.where(is_stay, rng.integers(8, 90, n_seg), rng.integers(2, 8, n_seg))
        seg = np.repeat(np.arange(n_seg), seg_len)[:per_person]
        stay = is_stay[seg]
        where = places[mine[rng.integers(0, own_places, n_seg)]][seg]
        scatter = rng.uniform(-1500, 1500, (per_person, 2))
        jitter = rng.normal(0, 15, (per_person, 2))
        off = np.where(stay[:, None], jitter, scatter)
        out_lat[k] = where[:, 0] + off[:, 0] / 111_195.0
        out_lon[k] = where[:, 1] + off[:, 1] / (111_195.0 * np.cos(np.radians(where[:, 0])))
        out_t[k] = t0 + int(rng.integers(0, 3600)) + np.cumsum(rng.integers(40, 81, per_person))
    return pd.DataFrame(
        {
            "user_id": np.char.add("p", np.repeat(people, per_person).astype(str)),
            "timestamp": out_t.ravel(),
            "lat": out_lat.ravel(),
            "lon": out_lon.ravel(),
        }
    )
