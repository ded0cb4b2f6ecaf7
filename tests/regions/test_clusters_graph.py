"""Region graphs with a release's joint clusters as regions: a hand-computed example and the demo release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.geo.meshcode import code_bounds, latlon_to_code
from core.regions.graph import graph_from_clusters
from core.regions.sources import load_city, release_anchor_dir, release_clusters

# Five places near Nagoya, each in its own 250 m mesh.
P = {1: (35.1701, 136.9001), 2: (35.1801, 136.9101), 3: (35.1901, 136.9201), 4: (35.2001, 136.9301), 5: (35.3001, 137.0001)}


def _code(p: int, size: int) -> int:
    return int(latlon_to_code(np.array([P[p][0]]), np.array([P[p][1]]), size)[0])


def _area(code: int, size: int) -> float:
    s, w, n, e = (float(x[0]) for x in code_bounds(np.array([code]), size))
    return (n - s) * 111.32 * (e - w) * 111.32 * np.cos(np.radians((s + n) / 2))


@pytest.fixture
def meshes() -> pd.DataFrame:
    # The release dataset: place 1's and 2's 250 m meshes, place 3's and 4's 50 m meshes. Place 5 is not in it.
    return pd.DataFrame(
        {
            "code": [_code(1, 250), _code(2, 250), _code(3, 50), _code(4, 50)],
            "mesh_size": [250, 250, 50, 50],
            "cluster": [0, 1, 2, 1],
        }
    )


def _stays(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """Rows (person, day, place); every stay on Monday 08:00 for 45 minutes unless changed."""
    frame = pd.DataFrame(rows, columns=["user_id", "day", "place"])
    frame["date"] = pd.Timestamp("2024-04-01") + pd.to_timedelta(frame["day"], unit="D")
    frame["arrival_time"] = "08:00"
    frame["lat"] = [P[p][0] for p in frame["place"]]
    frame["lon"] = [P[p][1] for p in frame["place"]]
    frame["stay_time"] = 45
    frame["day_of_week"] = "Monday"
    frame["is_holiday"] = False
    return frame.drop(columns=["day"])


def test_clusters_graph_by_hand(meshes: pd.DataFrame) -> None:
    # Person 1: places 1 2 3 1 -> clusters 0 1 2 0: moves 0->1, 1->2, 2->0.
    # Person 2: places 2 4 3 5 1 -> clusters 1 1 2 - 0: 1->1 is no move, 1->2, place 5 is outside the
    #   dataset (left out, and it breaks the chain: no 2->0).
    # Person 3: places 4 1 -> clusters 1 0: 1->0.
    rows = [(1, 0, 1), (1, 1, 2), (1, 2, 3), (1, 3, 1)]
    rows += [(2, 0, 2), (2, 1, 4), (2, 2, 3), (2, 3, 5), (2, 4, 1)]
    rows += [(3, 0, 4), (3, 1, 1)]
    stays = _stays(rows).sample(frac=1.0, random_state=1)  # order comes from the columns, not the rows
    # Person 1's first stay: 20:00 for 10 hours (token 7 * 10 + 5 = 75); all others token 7 * 4 + 1 = 29.
    first = (stays["user_id"] == 1) & (stays["date"] == pd.Timestamp("2024-04-01"))
    stays.loc[first, ["arrival_time", "stay_time"]] = ["20:00", 600]
    homes = np.array([_code(1, 50), _code(1, 50), _code(4, 50), _code(5, 50)])  # place 5: outside every cluster

    g = graph_from_clusters(stays, meshes, name="tiny", code_labels={"residents": homes})

    assert g.region_ids.tolist() == [0, 1, 2]
    edges = {(int(o), int(d)): w for o, d, w in zip(g.origin, g.destination, g.weight)}
    assert edges == {(0, 1): 1.0, (1, 2): 2.0, (2, 0): 1.0, (1, 0): 1.0}
    assert g.labels["stays"].tolist() == [4.0, 4.0, 2.0]  # place 5's stay is in no cluster
    assert g.labels["residents"].tolist() == [2.0, 1.0, 0.0]  # place 1's 50 m mesh -> its 250 m parent
    # Areas: cluster 1 holds a 250 m and a 50 m mesh.
    expected = [_area(_code(1, 250), 250), _area(_code(2, 250), 250) + _area(_code(4, 50), 50), _area(_code(3, 50), 50)]
    assert np.allclose(g.area_km2, expected)
    assert g.token_counts is not None
    assert g.token_counts[0, 75] == 1 and g.token_counts[0, 29] == 3
    assert np.array_equal(g.token_counts.sum(axis=1), g.labels["stays"])
    # Codes instead of positions give the same graph (a 250 m code of a place in the dataset at 250 m).
    by_code = stays.drop(columns=["lat", "lon"]).assign(code=[_code(p, 50) for p in stays.pop("place")])
    g2 = graph_from_clusters(by_code, meshes)
    assert {(int(o), int(d)): w for o, d, w in zip(g2.origin, g2.destination, g2.weight)} == edges


def test_clusters_graph_errors(meshes: pd.DataFrame) -> None:
    stays = _stays([(1, 0, 1), (1, 1, 2)])
    with pytest.raises(InputError, match=r"missing columns \['cluster'\]"):
        graph_from_clusters(stays, meshes.drop(columns=["cluster"]))
    with pytest.raises(InputError, match="duplicate mesh codes"):
        graph_from_clusters(stays, pd.concat([meshes, meshes.iloc[:1]]))
    with pytest.raises(InputError, match="no stay in a mesh of the release dataset"):
        graph_from_clusters(_stays([(1, 0, 5), (1, 1, 5)]), meshes)
    with pytest.raises(InputError, match="no move between two clusters"):
        graph_from_clusters(_stays([(1, 0, 2), (1, 1, 4)]), meshes)  # both in cluster 1


def test_demo_release_clusters(tiny_release: Path) -> None:
    from core.release.layout import discover, read_dataset

    root = tiny_release / "demo"
    table = release_clusters(root, "osaka_2021_04", 10)
    ds = read_dataset(next(r for r in discover(tiny_release) if r.name == "osaka_2021_04"))
    # The demo writes its datasets with the stored joint clusters' labels: the two agree.
    assert np.array_equal(table["code"].to_numpy(), ds.codes)
    assert np.array_equal(table["cluster"].to_numpy(), ds.labels[10])
    with pytest.raises(InputError, match="no dataset 'kyoto_2021_04'"):
        release_clusters(root, "kyoto_2021_04", 10)
    with pytest.raises(InputError, match="no clusters at k = 7"):
        release_clusters(root, "osaka_2021_04", 7)

    stays_file = root / "stays" / "osaka_2021_04.parquet"
    g = load_city(stays_file, ("stays", "residents", "workers"), regions="clusters", k=10)
    assert 2 <= g.n <= 10 and set(g.region_ids) <= set(range(10))
    assert g.token_counts is not None and np.array_equal(g.token_counts.sum(axis=1), g.labels["stays"])
    stays = pd.read_parquet(stays_file, columns=["user_id"])
    assert g.labels["stays"].sum() == len(stays)  # every demo stay lies in a released mesh
    assert g.labels["residents"].sum() > 0 and g.labels["workers"].sum() > 0
    meshes = load_city(stays_file, mesh_size=250)
    assert meshes.n > g.n and meshes.labels["stays"].sum() == len(stays)
    assert release_anchor_dir(stays_file) == root / "anchor_data"
