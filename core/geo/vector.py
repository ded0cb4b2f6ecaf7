"""Meshes as vector data for GIS tools: GeoPackage, GeoParquet or GeoJSON files QGIS opens directly.

Polygons are the meshes' exact JIS bounds (WGS 84, EPSG:4326), built vectorised with
:func:`shapely.box` and handed to geopandas, which writes the file formats.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError
from core.geo.meshcode import code_bounds

if TYPE_CHECKING:
    import geopandas as gpd

FORMATS = {".gpkg": "GPKG", ".parquet": "parquet", ".geojson": "GeoJSON"}


def mesh_frame(codes: np.ndarray, sizes: np.ndarray, columns: Mapping[str, np.ndarray] | None = None) -> gpd.GeoDataFrame:
    """A GeoDataFrame with one polygon per mesh: ``code``, ``mesh_size``, the given columns, ``geometry``."""
    import geopandas as gpd
    import shapely

    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    s, w, n, e = code_bounds(codes, sizes)
    data: dict[str, np.ndarray] = {"code": codes, "mesh_size": sizes}
    for name, values in (columns or {}).items():
        data[name] = np.asarray(values)
    return gpd.GeoDataFrame(data, geometry=shapely.box(w, s, e, n), crs="EPSG:4326")


def write_vector(frame: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ``frame`` by the file's suffix (.gpkg, .parquet, .geojson), atomically (temporary name, then rename).

    Raises:
        InputError: an unknown suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(str(path), f"unknown vector format '{suffix}'", expected="a .gpkg, .parquet or .geojson file")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file keeps the suffix: GDAL's drivers check it.
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{suffix}")
    try:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_file(tmp, driver=FORMATS[suffix], layer="meshes" if suffix == ".gpkg" else None, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def vector_bytes(frame: gpd.GeoDataFrame, suffix: str) -> bytes:
    """The file a download gets (GeoPackage / GeoParquet), written to a temporary file and read back."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return write_vector(frame, Path(d) / f"meshes{suffix}").read_bytes()
