"""HuMob / YJMob100K / LYMob-4Cities-format files from the demo world (no public sample can be shipped).

The format (SPEC §11): rows ``uid,d,t,x,y``; a 200 x 200 grid of 500 m cells (x, y in 1..200),
``t`` = half-hour slot 0..47, ``d`` = day 0..74, and ``999`` in both x and y for masked records
(the last people's final 15 days). Here simulated people of one demo city live through
consecutive months; each stay becomes the slots it covers, a share of which is observed (pings
are sparse); the city centre sits at cell (100, 100). A people table with the truth (role,
commuter, home and work cells) is returned beside the records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd

from core.simulation.world import CITIES, KM_PER_DEG_LAT, ROLES, Period, Population, build_grid, make_population, simulate_month

GRID = 200
CELL_KM = 0.5
MASK = 999


def generate_humob(
    n_people: int = 2000,
    days: int = 75,
    city: str = "nagoya",
    seed: int = 0,
    observe: float = 0.5,
    keep_slot: float = 0.6,
    masked_share: float = 0.2,
    masked_days: int = 15,
    radius: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``n_people`` of ``city`` for ``days`` days and write them in the HuMob format.

    Args:
        n_people: people (drawn from the city's population).
        days: days (0..days-1), from 1 April 2021.
        city: a demo city.
        seed: everything is seeded.
        observe: share of days on which a person is observed.
        keep_slot: share of the covered half-hour slots recorded on an observed day.
        masked_share: the last share of people (by uid) whose final ``masked_days`` days are 999.
        masked_days: days masked at the end for those people.
        radius: city radius multiplier.

    Returns:
        (records ``uid,d,t,x,y`` sorted by uid, d, t; people ``uid, role, commuter, home_x, home_y, work_x, work_y``).
    """
    if city not in CITIES:
        raise ValueError(f"unknown city {city!r}: expected one of {', '.join(CITIES)}")
    spec = CITIES[city]
    spec = replace(spec, radius_km=spec.radius_km * radius)
    grid = build_grid(spec, seed)
    pop = make_population(grid, spec.residents_per_cell, seed + 1)
    rng = np.random.default_rng(seed + 2)
    pick = np.sort(rng.choice(len(pop), min(n_people, len(pop)), replace=False))
    people = Population(pop.home[pick], pop.work[pick], pop.role[pick], pop.commuter[pick])
    first = dt.date(2021, 4, 1)
    frames = []
    y, m = 2021, 4
    while True:
        month_start = dt.date(y, m, 1)
        if (month_start - first).days >= days:
            break
        st = simulate_month(grid, people, Period(y, m), seed=seed + 10 + m, observe=observe)
        st["day"] = (st["date"] - pd.Timestamp(first)).dt.days
        frames.append(st)
        y, m = (y, m + 1) if m < 12 else (y + 1, 1)
    stays = pd.concat(frames, ignore_index=True)
    stays = stays[stays["day"] < days]
    minute = stays["arrival_time"].cat.codes.to_numpy().astype(np.int64)
    slot0 = stays["day"].to_numpy(np.int64) * 48 + minute // 30
    slot1 = stays["day"].to_numpy(np.int64) * 48 + (minute + np.maximum(stays["stay_time"].to_numpy(np.int64), 1) - 1) // 30
    n = np.clip(slot1 - slot0 + 1, 1, 96)
    rec = np.repeat(np.arange(len(stays)), n)
    slot = np.repeat(slot0, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    keep = (rng.random(len(rec)) < keep_slot) & (slot < days * 48)
    rec, slot = rec[keep], slot[keep]
    coslat = np.cos(np.radians(spec.lat))
    xk = (stays["lon"].to_numpy() - spec.lon) * KM_PER_DEG_LAT * coslat
    yk = (stays["lat"].to_numpy() - spec.lat) * KM_PER_DEG_LAT
    cx = np.clip(np.floor(xk / CELL_KM).astype(np.int64) + GRID // 2, 1, GRID)
    cy = np.clip(np.floor(yk / CELL_KM).astype(np.int64) + GRID // 2, 1, GRID)
    uid = stays["user_id"].to_numpy(np.int64)[rec]
    out = pd.DataFrame({"uid": uid, "d": slot // 48, "t": slot % 48, "x": cx[rec], "y": cy[rec]})
    # A later stay wins a slot two stays share (the person moved on).
    out = out.iloc[np.lexsort((np.arange(len(out)), out["t"].to_numpy(), out["d"].to_numpy(), uid))]
    out = out.drop_duplicates(["uid", "d", "t"], keep="last").reset_index(drop=True)
    n_masked = int(round(len(people) * masked_share))
    masked = (out["uid"].to_numpy() >= len(people) - n_masked) & (out["d"].to_numpy() >= days - masked_days)
    out.loc[masked, ["x", "y"]] = MASK

    def cell(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = np.clip(np.floor(grid.x_km[idx] / CELL_KM).astype(np.int64) + GRID // 2, 1, GRID)
        gy = np.clip(np.floor(grid.y_km[idx] / CELL_KM).astype(np.int64) + GRID // 2, 1, GRID)
        return gx, gy

    hx, hy = cell(people.home)
    wx, wy = cell(np.maximum(people.work, 0))
    has_work = people.work >= 0
    truth = pd.DataFrame(
        {
            "uid": np.arange(len(people)),
            "role": np.asarray(ROLES)[people.role],
            "commuter": people.commuter,
            "home_x": hx,
            "home_y": hy,
            "work_x": np.where(has_work, wx, -1),
            "work_y": np.where(has_work, wy, -1),
        }
    )
    return out, truth
