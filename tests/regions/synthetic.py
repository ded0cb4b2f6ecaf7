"""Two small synthetic cities with planted region types and a known type correspondence.

Regions of type ``t`` send their trips to regions of type ``u`` with probability ``P[t, u]``, the same
block matrix in both cities, so regions of one type play the same role in each city. The cities have
different sizes and the types different shares, flows are counts (not row-normalised), and every
region's labels depend on its type and its area.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Trips between 4 region types (home, work, shop, leisure): each row sums to 1, rows differ.
BLOCKS = np.array(
    [
        [0.70, 0.20, 0.05, 0.05],
        [0.20, 0.60, 0.15, 0.05],
        [0.05, 0.15, 0.60, 0.20],
        [0.05, 0.05, 0.30, 0.60],
    ]
)
SHARES = np.array([0.4, 0.3, 0.2, 0.1])


def synthetic_city(
    n: int, seed: int, trips_per_region: int = 30
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """One city: its ``.geo`` table, its ``.mob`` table, the planted types and two labels."""
    rng = np.random.default_rng(seed)
    types = rng.choice(len(SHARES), size=n, p=SHARES)
    # Each trip picks a destination type from the origin's row, then a region of that type at random.
    origin = np.repeat(np.arange(n), trips_per_region)
    dest_type = (rng.random(origin.size)[:, None] > np.cumsum(BLOCKS[types[origin]], axis=1)).sum(axis=1)
    by_type = np.argsort(types, kind="stable")
    counts = np.bincount(types, minlength=len(SHARES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dest = by_type[starts[dest_type] + (rng.random(origin.size) * counts[dest_type]).astype(np.int64)]
    flows = pd.DataFrame({"origin_id": origin, "destination_id": dest}).value_counts().rename("mobility_weight").reset_index()
    flows.insert(0, "type", "mob")
    flows.insert(0, "rel_id", np.arange(len(flows)))
    area_m2 = rng.lognormal(mean=np.log(2e5), sigma=0.8, size=n)
    side = np.sqrt(area_m2) / 111_000
    lon0, lat0 = 100 + rng.uniform(0, 0.5, n), 30 + rng.uniform(0, 0.5, n)
    wkt = [f"POLYGON (({x} {y}, {x + s} {y}, {x + s} {y + s}, {x} {y + s}, {x} {y}))" for x, y, s in zip(lon0, lat0, side)]
    geo = pd.DataFrame(
        {
            "geo_id": np.arange(n),
            "type": "Polygon",
            "Shape_Area": area_m2,
            "geometry": wkt,
            "m_lon": lon0 + side / 2,
            "m_lat": lat0 + side / 2,
        }
    )
    density = np.array([50.0, 400.0, 250.0, 20.0])[types] * rng.lognormal(0, 0.1, n)
    labels = {"gdp": density * area_m2 / 1e6, "population": np.array([900.0, 60.0, 40.0, 10.0])[types] * area_m2 / 1e6}
    return geo, flows, types, labels


def write_city(folder: Path, name: str, n: int, seed: int) -> np.ndarray:
    """Write a synthetic city folder (``regionmap_<name>.geo``, ``.mob``, ``<label>_<name>_sum.npy``); return its types."""
    folder.mkdir(parents=True, exist_ok=True)
    geo, flows, types, labels = synthetic_city(n, seed)
    geo.to_csv(folder / f"regionmap_{name}.geo", index=False)
    flows.to_csv(folder / f"regionmap_{name}.mob", index=False)
    for label, y in labels.items():
        np.save(folder / f"{label}_{name}_sum.npy", y)
    return types


def stay_city(n_meshes: int, seed: int, n_people: int = 60, mean_stays: float = 60.0) -> tuple[pd.DataFrame, pd.Series]:
    """A city as a stay table with user ids: 1 km meshes of four planted types (stay patterns).

    The stays come from :func:`core.simulation.synthetic.synthetic_city` (each mesh's token pattern
    drawn around its type's), put on a grid of 1 km meshes near Nagoya and spread over ``n_people``
    people and 30 days at random, so consecutive stays give flows between meshes.

    Returns:
        The stay table (``user_id``, ``date``, ``lat``, ``lon`` and the stay columns) and each mesh's
        type, indexed by its 1 km mesh code.
    """
    from core.geo.meshcode import latlon_to_code
    from core.simulation.synthetic import synthetic_city

    city = synthetic_city(n_meshes, mean_stays, seed=seed, n_types=4)
    rng = np.random.default_rng(seed + 100)
    # Mesh m at the centre of the 1 km mesh in row m // 40, column m % 40 of a grid (30" x 45" meshes).
    centre_lat = 35.0 + (np.arange(n_meshes) // 40 + 0.5) / 120
    centre_lon = 136.5 + (np.arange(n_meshes) % 40 + 0.5) / 80
    mesh = city.stays.pop("mesh_id").to_numpy()
    stays = city.stays.assign(
        user_id=rng.integers(0, n_people, len(mesh)),
        date=pd.Timestamp("2019-04-01") + pd.to_timedelta(rng.integers(0, 30, len(mesh)), unit="D"),
        lat=centre_lat[mesh],
        lon=centre_lon[mesh],
    )
    return stays, pd.Series(city.area_type, index=latlon_to_code(centre_lat, centre_lon, 1000))
