"""Mesh polygons for GIS tools: exact bounds, columns and formats read back with geopandas."""

import geopandas as gpd
import numpy as np
import pytest

from core.cli import main
from core.errors import InputError
from core.geo.meshcode import code_bounds, latlon_to_code
from core.geo.vector import mesh_frame, write_vector
from core.release.layout import write_dataset


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".geojson"])
def test_polygons_round_trip_with_their_exact_bounds(tmp_path, suffix):
    codes = np.array([latlon_to_code(35.0, 135.0, 50)[()], latlon_to_code(35.01, 135.02, 250)[()]])
    sizes = np.array([50, 250])
    path = write_vector(mesh_frame(codes, sizes, {"cluster": np.array([3, 7])}), tmp_path / f"m{suffix}")
    back = gpd.read_file(path) if suffix != ".parquet" else gpd.read_parquet(path)
    assert back.crs.to_epsg() == 4326
    assert back["code"].tolist() == codes.tolist() and back["cluster"].tolist() == [3, 7]
    s, w, n, e = code_bounds(codes, sizes)
    assert np.allclose(back.geometry.bounds.to_numpy(), np.column_stack([w, s, e, n]), atol=1e-9)
    # a 50 m mesh is 2.25" of longitude by 1.5" of latitude
    assert np.isclose(n[0] - s[0], 1.5 / 3600) and np.isclose(e[0] - w[0], 2.25 / 3600)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown vector format"):
        write_vector(mesh_frame(np.array([523500000000]), np.array([50])), tmp_path / "m.shp")


def test_vector_command_writes_a_release_dataset_for_qgis(tmp_path, capsys):
    rng = np.random.default_rng(0)
    codes = np.unique(latlon_to_code(35.17 + rng.random(40) * 0.01, 136.9 + rng.random(40) * 0.01, 50))
    n = len(codes)
    labels = {5: np.arange(n) % 5, 10: np.arange(n) % 10}
    ref = write_dataset(
        tmp_path / "rel", "nagoya_2019_04", codes, np.full(n, 50), rng.normal(size=(n, 8)), rng.normal(size=(168, 8)), labels
    )
    out = tmp_path / "nagoya.gpkg"
    assert main(["vector", str(ref.geojson), "--out", str(out)]) == 0
    back = gpd.read_file(out, layer="meshes")
    assert len(back) == n and {"code", "mesh_size", "e0", "e7", "5cluster", "10cluster", "is_complemented"} <= set(back.columns)
    assert back["10cluster"].tolist() == labels[10].tolist()
