"""Region graph loaders: the CoRE city folder format, tolerated variants, malformed files, and stays -> graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.regions.graph import graph_from_stays, read_city
from tests.regions.synthetic import write_city


@pytest.fixture
def city(tmp_path: Path) -> Path:
    write_city(tmp_path / "alpha", "alpha", 60, seed=3)
    return tmp_path / "alpha"


def test_reads_city_folder(city: Path) -> None:
    g = read_city(city)
    geo = pd.read_csv(city / "regionmap_alpha.geo")
    mob = pd.read_csv(city / "regionmap_alpha.mob")
    assert g.n == 60 and sorted(g.labels) == ["gdp", "population"]
    assert np.allclose(g.area_km2, geo["Shape_Area"] / 1e6)
    # Flows are counts here (not row-normalised); the OD matrix normalises each origin's row.
    assert mob["mobility_weight"].max() > 1
    od = g.od_matrix()
    rows = od.sum(axis=1)
    assert np.allclose(rows[rows > 0], 1.0)
    assert od[mob["origin_id"].iloc[0], mob["destination_id"].iloc[0]] > 0


def test_extra_index_column_and_area_from_wkt(city: Path) -> None:
    geo = pd.read_csv(city / "regionmap_alpha.geo")
    expected = geo["Shape_Area"].to_numpy() / 1e6
    geo.drop(columns=["Shape_Area", "m_lon", "m_lat"]).to_csv(city / "regionmap_alpha.geo")  # index written
    pd.read_csv(city / "regionmap_alpha.mob").to_csv(city / "regionmap_alpha.mob")
    g = read_city(city)
    # Areas from the WKT squares (side = sqrt(area) / 111 km in degrees) within a few percent.
    ratio = g.area_km2 / expected
    assert np.all((ratio > 0.75) & (ratio < 1.1)), ratio
    assert np.isfinite(g.lon).all() and (g.lat > 29).all()


def test_rejects_flow_to_unknown_region(city: Path) -> None:
    mob = pd.read_csv(city / "regionmap_alpha.mob")
    mob.loc[4, "destination_id"] = 60
    mob.to_csv(city / "regionmap_alpha.mob", index=False)
    with pytest.raises(InputError, match=r"destination_id.*not in the .geo file.*row 5 \(60\)"):
        read_city(city)


def test_rejects_label_of_wrong_length(city: Path) -> None:
    np.save(city / "gdp_alpha_sum.npy", np.ones(59))
    with pytest.raises(InputError, match="59 values for 60 regions"):
        read_city(city)


def test_rejects_missing_label_and_missing_files(city: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no file for label 'co2'"):
        read_city(city, labels=("co2",))
    (city / "regionmap_alpha.mob").unlink()
    with pytest.raises(InputError, match=r"0 flow \(.mob\) files"):
        read_city(city)
    with pytest.raises(InputError, match="not a folder"):
        read_city(tmp_path / "nowhere")


def test_rejects_negative_flow_and_text_ids(city: Path) -> None:
    mob = pd.read_csv(city / "regionmap_alpha.mob")
    mob.loc[2, "mobility_weight"] = -1
    mob.to_csv(city / "regionmap_alpha.mob", index=False)
    with pytest.raises(InputError, match="mobility_weight.*row 3"):
        read_city(city)
    geo = pd.read_csv(city / "regionmap_alpha.geo")
    geo["geo_id"] = geo["geo_id"].astype(str)
    geo.loc[1, "geo_id"] = "x1"
    geo.to_csv(city / "regionmap_alpha.geo", index=False)
    with pytest.raises(InputError, match="geo_id.*not an integer id.*row 2 \\('x1'\\)"):
        read_city(city)


def test_graph_from_consecutive_stays() -> None:
    # Two people; 1 km meshes around Nagoya. Person 1: A -> B -> A, person 2: B -> C; the last stay of
    # person 1 and the first of person 2 are not a move.
    a, b, c = (35.171, 136.881), (35.181, 136.901), (35.191, 136.921)
    stays = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2],
            "date": ["2024-04-01"] * 5,
            "arrival_time": ["08:00", "12:00", "18:00", "09:00", "10:00"],
            "lat": [a[0], b[0], a[0], b[0], c[0]],
            "lon": [a[1], b[1], a[1], b[1], c[1]],
        }
    ).sample(frac=1.0, random_state=0)  # order comes from the columns, not the rows
    g = graph_from_stays(stays, mesh_size=1000)
    assert g.n == 3
    assert all(len(str(code)) == 8 for code in g.region_ids)
    pos = {code: i for i, code in enumerate(g.region_ids)}
    from core.geo.meshcode import latlon_to_code

    ia, ib, ic = (pos[int(latlon_to_code(np.array([p[0]]), np.array([p[1]]), 1000)[0])] for p in (a, b, c))
    edges = {(int(o), int(d)): w for o, d, w in zip(g.origin, g.destination, g.weight)}
    assert edges == {(ia, ib): 1.0, (ib, ia): 1.0, (ib, ic): 1.0}
    assert g.labels["stays"][ib] == 2
    assert np.allclose(g.area_km2, 1.0, rtol=0.25)


def test_graph_from_stays_errors() -> None:
    with pytest.raises(InputError, match="missing columns"):
        graph_from_stays(pd.DataFrame({"lat": [35.0], "lon": [136.0]}))
    one_place = pd.DataFrame(
        {"user_id": [1, 1], "date": ["d", "d"], "arrival_time": ["08:00", "09:00"], "lat": [35.0, 35.0], "lon": [136.0, 136.0]}
    )
    with pytest.raises(InputError, match="no move between two meshes"):
        graph_from_stays(one_place)
    with pytest.raises(InputError, match="mesh_size 1000, 250 or 50"):
        graph_from_stays(one_place, mesh_size=500)
