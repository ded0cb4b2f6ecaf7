"""Region graphs: a city's regions (area, centre, outline), its OD flows between them and region labels.

Two sources:

- :func:`read_city` reads a LibCity-style city folder (the CoRE data): ``*.geo`` (CSV, one row per
  region: ``geo_id``, optionally ``Shape_Area`` in m^2, ``geometry`` as WKT, ``m_lon``/``m_lat``),
  ``*.mob`` (CSV ``origin_id, destination_id, mobility_weight``) and one ``<label>_*.npy`` vector per
  label, aligned to the ``.geo`` row order.
- :func:`graph_from_stays` builds the same kind of graph from a stay table with user ids: JIS meshes
  (1 km, 250 m or 50 m) as regions, and a flow from mesh ``a`` to mesh ``b`` for every two
  consecutive stays of one person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError

GEO_ID = "geo_id"
ORIGIN = "origin_id"
DESTINATION = "destination_id"
WEIGHT = "mobility_weight"
AREA_M2 = "Shape_Area"
GEOMETRY = "geometry"
CENTRE = ("m_lon", "m_lat")


@dataclass
class RegionGraph:
    """One city's regions and the flows between them.

    Attributes:
        name: the city's name (its folder's name by default).
        region_ids: the region ids as given (``geo_id`` or mesh code), one per region.
        area_km2: each region's area.
        lon, lat: each region's centre.
        origin, destination, weight: the OD flows as an edge list over region positions 0..n-1
            (weights as given; :meth:`od_matrix` normalises them per origin).
        labels: label name -> one value per region.
        geometry: each region's outline as WKT, where known (for maps).
    """

    name: str
    region_ids: np.ndarray
    area_km2: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    origin: np.ndarray
    destination: np.ndarray
    weight: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    geometry: np.ndarray | None = None

    @property
    def n(self) -> int:
        """The number of regions."""
        return int(self.region_ids.shape[0])

    def od_matrix(self) -> np.ndarray:
        """The dense ``n x n`` OD matrix, each origin's row summing to 1 (rows without flows stay 0)."""
        m = np.zeros((self.n, self.n), dtype=np.float64)
        np.add.at(m, (self.origin, self.destination), self.weight)
        s = m.sum(axis=1, keepdims=True)
        return np.divide(m, s, out=np.zeros_like(m), where=s > 0)

    def in_flow(self) -> np.ndarray:
        """Each region's share of arrivals: the column sums of :meth:`od_matrix` (a popularity rank)."""
        return self.od_matrix().sum(axis=0)

    def label(self, name: str) -> np.ndarray:
        """A label vector by name.

        Raises:
            InputError: when the city has no such label.
        """
        if name not in self.labels:
            raise InputError(self.name, f"no label '{name}'", expected=f"one of {sorted(self.labels) or 'none (no label files)'}")
        return self.labels[name]


def _one_file(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise InputError(
            str(folder), f"{len(found)} {what} files ({pattern})", expected=f"exactly one {what} file in the city folder"
        )
    return found[0]


def _drop_index_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop a leading unnamed column (a pandas index written with the data)."""
    first = str(frame.columns[0])
    if first == "" or first.startswith("Unnamed"):
        return frame.drop(columns=frame.columns[0])
    return frame


def _integers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(source, f"missing column '{column}'", expected=f"columns {list(frame.columns)} to include '{column}'")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            source,
            "not an integer id",
            column=column,
            rows=(rows + 1).tolist(),
            values=frame[column].to_numpy()[rows].tolist(),
            n_bad=int(bad.sum()),
            expected="integer ids",
        )
    return values.astype(np.int64)


def _areas_and_centres(geo: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Area (km^2), centre lon/lat and WKT outlines from the ``.geo`` table."""
    wkt = geo[GEOMETRY].astype(str).to_numpy() if GEOMETRY in geo.columns else None
    shapes = None
    if wkt is not None and (AREA_M2 not in geo.columns or not set(CENTRE) <= set(geo.columns)):
        import geopandas as gpd

        try:
            shapes = gpd.GeoSeries.from_wkt(wkt, crs="EPSG:4326")
        except Exception as exc:  # shapely's parse errors have no common base class
            raise InputError(source, f"geometry is not WKT ({exc})", column=GEOMETRY, expected="WKT polygons in lon/lat") from exc
    if AREA_M2 in geo.columns:
        area = pd.to_numeric(geo[AREA_M2], errors="coerce").to_numpy(dtype=np.float64) / 1e6
    elif shapes is not None:
        area = shapes.to_crs(shapes.estimate_utm_crs()).area.to_numpy() / 1e6
    else:
        raise InputError(source, "no region areas", expected=f"a '{AREA_M2}' column (m^2) or a '{GEOMETRY}' column (WKT)")
    bad = ~np.isfinite(area) | (area <= 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            source,
            "area not positive",
            column=AREA_M2,
            rows=(rows + 1).tolist(),
            values=area[rows].tolist(),
            n_bad=int(bad.sum()),
            expected="areas > 0",
        )
    if set(CENTRE) <= set(geo.columns):
        lon = pd.to_numeric(geo[CENTRE[0]], errors="coerce").to_numpy(dtype=np.float64)
        lat = pd.to_numeric(geo[CENTRE[1]], errors="coerce").to_numpy(dtype=np.float64)
    elif shapes is not None:
        c = shapes.to_crs(shapes.estimate_utm_crs()).centroid.to_crs("EPSG:4326")
        lon, lat = c.x.to_numpy(), c.y.to_numpy()
    else:
        lon = lat = np.full(len(geo), np.nan)
    return area, lon, lat, wkt


def read_city(folder: str | Path, labels: tuple[str, ...] | None = None, name: str | None = None) -> RegionGraph:
    """Read a LibCity-style city folder (``*.geo``, ``*.mob``, ``<label>_*.npy``).

    Args:
        folder: the city folder.
        labels: the labels to read (``gdp`` reads ``gdp_*.npy`` or ``gdp.npy``); default: every
            ``.npy`` file in the folder, named by the part of its file name before the first ``_``.
        name: the city's name; default: the folder's name.

    Returns:
        The city's region graph; flows are kept as given (not necessarily row-normalised).

    Raises:
        InputError: a missing or ambiguous file, a missing column, ids that are not integers, flows
            between unknown regions, negative flows, labels of the wrong length.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(str(folder), "not a folder", expected="a city folder with *.geo, *.mob and label .npy files")
    geo_path, mob_path = _one_file(folder, "*.geo", "region (.geo)"), _one_file(folder, "*.mob", "flow (.mob)")
    geo = _drop_index_column(pd.read_csv(geo_path))
    ids = _integers(geo, GEO_ID, geo_path.name)
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:5]
        raise InputError(
            geo_path.name,
            "duplicate region id",
            column=GEO_ID,
            rows=(rows + 1).tolist(),
            values=ids[rows].tolist(),
            n_bad=int(dup.sum()),
            expected="unique ids",
        )
    area, lon, lat, wkt = _areas_and_centres(geo, geo_path.name)

    mob = _drop_index_column(pd.read_csv(mob_path))
    position = pd.Series(np.arange(len(ids)), index=ids)
    ends = []
    for column in (ORIGIN, DESTINATION):
        raw = _integers(mob, column, mob_path.name)
        pos = position.reindex(raw).to_numpy()
        unknown = np.isnan(pos)
        if unknown.any():
            rows = np.flatnonzero(unknown)[:5]
            raise InputError(
                mob_path.name,
                "region id not in the .geo file",
                column=column,
                rows=(rows + 1).tolist(),
                values=raw[rows].tolist(),
                n_bad=int(unknown.sum()),
                expected=f"ids among the {len(ids)} geo_id values of {geo_path.name} ({ids.min()}..{ids.max()})",
            )
        ends.append(pos.astype(np.int64))
    if WEIGHT not in mob.columns:
        raise InputError(mob_path.name, f"missing column '{WEIGHT}'", expected=f"columns {ORIGIN}, {DESTINATION}, {WEIGHT}")
    weight = pd.to_numeric(mob[WEIGHT], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            mob_path.name,
            "flow not a number >= 0",
            column=WEIGHT,
            rows=(rows + 1).tolist(),
            values=mob[WEIGHT].to_numpy()[rows].tolist(),
            n_bad=int(bad.sum()),
            expected="flows >= 0",
        )

    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.npy")):
        found.setdefault(path.stem.split("_")[0], path)
    wanted = tuple(found) if labels is None else labels
    values: dict[str, np.ndarray] = {}
    for label in wanted:
        if label not in found:
            raise InputError(
                str(folder),
                f"no file for label '{label}'",
                expected=f"{label}_*.npy or {label}.npy; found {sorted(found) or 'no .npy files'}",
            )
        y = np.asarray(np.load(found[label], allow_pickle=False), dtype=np.float64).ravel()
        if y.shape[0] != len(ids):
            raise InputError(
                found[label].name, f"{y.shape[0]} values for {len(ids)} regions", expected=f"one value per row of {geo_path.name}"
            )
        if not np.isfinite(y).all():
            raise InputError(
                found[label].name,
                "values that are not finite",
                rows=(np.flatnonzero(~np.isfinite(y))[:5] + 1).tolist(),
                expected="finite numbers",
            )
        values[label] = y
    return RegionGraph(
        name=name or folder.name,
        region_ids=ids,
        area_km2=area,
        lon=lon,
        lat=lat,
        origin=ends[0],
        destination=ends[1],
        weight=weight,
        labels=values,
        geometry=wkt,
    )


def graph_from_stays(
    stays: pd.DataFrame,
    mesh_size: int = 1000,
    *,
    name: str = "city",
    user: str = "user_id",
    order: tuple[str, ...] = ("date", "arrival_time"),
    min_flow: int = 1,
    source: str = "<stays>",
) -> RegionGraph:
    """A region graph from one person's consecutive stays: JIS meshes as regions, moves as flows.

    Args:
        stays: one row per stay with ``user`` and either ``lat``/``lon`` or a mesh ``code``
            (with ``mesh_size`` when sizes are mixed); the columns in ``order`` sort each person's stays.
        mesh_size: 1000, 250 or 50: meshes of this size are the regions (coarser meshes are computed
            from positions; with codes only, codes of a finer size are mapped to their parent).
        name: the city's name.
        user: the person column.
        order: the columns that order one person's stays in time.
        min_flow: moves between two meshes seen fewer times are dropped.
        source: how to name the table in errors.

    Returns:
        The graph; ``weight`` counts the moves, the label ``stays`` counts the stays per mesh.

    Raises:
        InputError: missing columns, an unknown mesh size, no move between two meshes.
    """
    from core.geo.meshcode import cells_to_code, code_bounds, code_centers, infer_sizes, latlon_to_cells, parent_code

    if mesh_size not in (1000, 250, 50):
        raise InputError(source, f"mesh size {mesh_size}", expected="mesh_size 1000, 250 or 50")
    missing = [c for c in (user, *order) if c not in stays.columns]
    if missing:
        raise InputError(
            source, f"missing columns {missing}", expected=f"a person column '{user}' and the order columns {list(order)}"
        )
    frame = stays.sort_values([user, *order], kind="stable")
    if {"lat", "lon"} <= set(frame.columns):
        i, j = latlon_to_cells(frame["lat"].to_numpy(np.float64), frame["lon"].to_numpy(np.float64))
        code = cells_to_code(i, j, mesh_size)
    elif "code" in frame.columns:
        raw = frame["code"].to_numpy(np.int64)
        sizes = frame["mesh_size"].to_numpy(np.int64) if "mesh_size" in frame.columns else infer_sizes(raw)
        if (sizes > mesh_size).any():
            raise InputError(
                source, f"meshes coarser than {mesh_size} m", column="code", expected=f"codes of {mesh_size} m or finer"
            )
        code = np.where(sizes == mesh_size, raw, parent_code(raw, sizes, mesh_size))
    else:
        raise InputError(source, "no position", expected="columns lat and lon, or a mesh code column 'code'")
    people = frame[user].to_numpy()
    codes, region = np.unique(code, return_inverse=True)
    same = people[1:] == people[:-1]
    moves = pd.DataFrame({"o": region[:-1][same], "d": region[1:][same]})
    moves = moves[moves["o"] != moves["d"]]
    flows = moves.groupby(["o", "d"]).size()
    flows = flows[flows >= min_flow]
    if flows.empty:
        raise InputError(source, "no move between two meshes", expected="people with consecutive stays in different meshes")
    o, d = (flows.index.get_level_values(k).to_numpy(np.int64) for k in (0, 1))
    lat, lon = code_centers(codes, mesh_size)
    south, west, north, east = code_bounds(codes, mesh_size)
    km_lat = 111.32
    area = (north - south) * km_lat * (east - west) * km_lat * np.cos(np.radians(lat))
    wkt = np.array(
        [f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))" for s, w, n, e in zip(south, west, north, east)],
        dtype=object,
    )
    return RegionGraph(
        name=name,
        region_ids=codes,
        area_km2=area,
        lon=lon,
        lat=lat,
        origin=o,
        destination=d,
        weight=flows.to_numpy(np.float64),
        labels={"stays": np.bincount(region, minlength=len(codes)).astype(np.float64)},
        geometry=wkt,
    )
