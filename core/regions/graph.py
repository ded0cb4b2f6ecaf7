"""Region graphs: a city's regions (area, centre, outline), its OD flows between them and region labels.

Two sources:

- :func:`read_city` reads a LibCity-style city folder (the CoRE data): ``*.geo`` (CSV, one row per
  region: ``geo_id``, optionally ``Shape_Area`` in m^2, ``geometry`` as WKT, ``m_lon``/``m_lat``),
  ``*.mob`` (CSV ``origin_id, destination_id, mobility_weight``) and one ``<label>_*.npy`` vector per
  label, aligned to the ``.geo`` row order.
- :func:`graph_from_stays` builds the same kind of graph from a stay table with user ids: JIS meshes
  (1 km, 250 m or 50 m) as regions, and a flow from mesh ``a`` to mesh ``b`` for every two
  consecutive stays of one person.
- :func:`graph_from_clusters` does the same with the joint clusters of a release dataset as regions
  (one region per cluster; :func:`core.regions.sources.release_clusters` reads a dataset's
  mesh -> cluster table from its release folder).

Graphs built from stays also carry each region's 168-token stay counts (:attr:`RegionGraph.token_counts`),
which the ``area2vec`` method embeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.constants import MESH_ID, N_TOKENS, STAY_COLUMNS
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
        token_counts: ``n x 168`` counts of the stays in each region by stay token (SPEC §2), for
            graphs built from stays with their stay columns; ``None`` otherwise (LibCity folders).
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
    token_counts: np.ndarray | None = None

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

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The graph as named arrays (for ``np.savez`` caches); :meth:`from_arrays` reads them back."""
        arrays = {k: getattr(self, k) for k in ("region_ids", "area_km2", "lon", "lat", "origin", "destination", "weight")}
        arrays["geometry"] = np.asarray(self.geometry if self.geometry is not None else [], dtype=str)
        if self.token_counts is not None:
            arrays["token_counts"] = self.token_counts
        for name, y in self.labels.items():
            arrays[f"label_{name}"] = y
        return arrays

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> RegionGraph:
        """A graph from what :meth:`to_arrays` wrote (an ``np.load`` result or a dict)."""
        geometry = arrays["geometry"]
        return cls(
            name=name,
            region_ids=arrays["region_ids"],
            area_km2=arrays["area_km2"],
            lon=arrays["lon"],
            lat=arrays["lat"],
            origin=arrays["origin"],
            destination=arrays["destination"],
            weight=arrays["weight"],
            labels={k[len("label_") :]: arrays[k] for k in arrays if k.startswith("label_")},
            geometry=geometry.astype(object) if geometry.size else None,
            token_counts=arrays.get("token_counts"),
        )


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


def _rows_error(source: str, problem: str, column: str, bad: np.ndarray, values: np.ndarray, expected: str) -> InputError:
    """The error for the rows where ``bad`` is true: the first five (1-based) with their values, and how many."""
    rows = np.flatnonzero(bad)[:5]
    return InputError(
        source,
        problem,
        column=column,
        rows=(rows + 1).tolist(),
        values=np.asarray(values)[rows].tolist(),
        n_bad=int(bad.sum()),
        expected=expected,
    )


def _integers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(source, f"missing column '{column}'", expected=f"columns {list(frame.columns)} to include '{column}'")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        raise _rows_error(source, "not an integer id", column, bad, frame[column].to_numpy(), "integer ids")
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
        raise _rows_error(source, "area not positive", AREA_M2, bad, area, "areas > 0")
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
        raise _rows_error(geo_path.name, "duplicate region id", GEO_ID, dup, ids, "unique ids")
    area, lon, lat, wkt = _areas_and_centres(geo, geo_path.name)

    mob = _drop_index_column(pd.read_csv(mob_path))
    position = pd.Series(np.arange(len(ids)), index=ids)
    ends = []
    for column in (ORIGIN, DESTINATION):
        raw = _integers(mob, column, mob_path.name)
        pos = position.reindex(raw).to_numpy()
        unknown = np.isnan(pos)
        if unknown.any():
            raise _rows_error(
                mob_path.name,
                "region id not in the .geo file",
                column,
                unknown,
                raw,
                f"ids among the {len(ids)} geo_id values of {geo_path.name} ({ids.min()}..{ids.max()})",
            )
        ends.append(pos.astype(np.int64))
    if WEIGHT not in mob.columns:
        raise InputError(mob_path.name, f"missing column '{WEIGHT}'", expected=f"columns {ORIGIN}, {DESTINATION}, {WEIGHT}")
    weight = pd.to_numeric(mob[WEIGHT], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        raise _rows_error(mob_path.name, "flow not a number >= 0", WEIGHT, bad, mob[WEIGHT].to_numpy(), "flows >= 0")

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


def _sorted_stays(stays: pd.DataFrame, user: str, order: tuple[str, ...], source: str) -> pd.DataFrame:
    missing = [c for c in (user, *order) if c not in stays.columns]
    if missing:
        raise InputError(
            source, f"missing columns {missing}", expected=f"a person column '{user}' and the order columns {list(order)}"
        )
    return stays.sort_values([user, *order], kind="stable")


def stay_tokens(frame: pd.DataFrame, source: str = "<stays>") -> np.ndarray | None:
    """The stay token (0..167, SPEC §2) of each row, or ``None`` when the table lacks a stay column.

    Raises:
        InputError: a stay column with a malformed value (from the stay table's own validation).
    """
    if not set(STAY_COLUMNS) <= set(frame.columns):
        return None
    from core.mobility.stays import stays_from_frame

    table = frame[list(STAY_COLUMNS)].assign(**{MESH_ID: 0})
    return stays_from_frame(table, source).tokens()


def _flows(people: np.ndarray, region: np.ndarray, min_flow: int, source: str, what: str) -> tuple[np.ndarray, ...]:
    """Moves between consecutive stays of one person (``region`` -1: not in any region, breaks the chain)."""
    same = (people[1:] == people[:-1]) & (region[1:] >= 0) & (region[:-1] >= 0)
    o, d = region[:-1][same], region[1:][same]
    keep = o != d
    flows = pd.DataFrame({"o": o[keep], "d": d[keep]}).groupby(["o", "d"]).size()
    flows = flows[flows >= min_flow]
    if flows.empty:
        raise InputError(source, f"no move between two {what}", expected=f"people with consecutive stays in different {what}")
    o, d = (flows.index.get_level_values(k).to_numpy(np.int64) for k in (0, 1))
    return o, d, flows.to_numpy(np.float64)


def _per_region(region: np.ndarray, tokens: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Stays per region and, with tokens, the ``n x 168`` token counts (stays outside every region skipped)."""
    inside = region >= 0
    stays = np.bincount(region[inside], minlength=n).astype(np.float64)
    if tokens is None:
        return stays, None
    flat = np.bincount(region[inside] * N_TOKENS + tokens[inside].astype(np.int64), minlength=n * N_TOKENS)
    return stays, flat.reshape(n, N_TOKENS).astype(np.float32)


def _code_labels(
    code_labels: Mapping[str, np.ndarray] | None, region_of: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int
) -> dict[str, np.ndarray]:
    """Count labels: how many of each label's mesh codes fall in each region."""
    from core.geo.meshcode import infer_sizes

    out: dict[str, np.ndarray] = {}
    for label, raw in (code_labels or {}).items():
        codes = np.asarray(raw, dtype=np.int64)
        codes = codes[codes > 0]
        sizes = infer_sizes(codes)
        if (sizes < 0).any():
            bad = codes[sizes < 0][:5]
            raise InputError(f"label '{label}'", "not a JIS mesh code", values=bad.tolist(), expected="JIS mesh codes")
        pos = region_of(codes, sizes)
        out[label] = np.bincount(pos[pos >= 0], minlength=n).astype(np.float64)
    return out


def _mesh_geometry(codes: np.ndarray, sizes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre lat/lon, area (km^2) and WKT outline of meshes."""
    from core.geo.meshcode import code_bounds

    south, west, north, east = code_bounds(codes, sizes)
    lat, lon = (south + north) / 2, (west + east) / 2
    km_lat = 111.32
    area = (north - south) * km_lat * (east - west) * km_lat * np.cos(np.radians(lat))
    wkt = np.array(
        [f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))" for s, w, n, e in zip(south, west, north, east)],
        dtype=object,
    )
    return lat, lon, area, wkt


def graph_from_stays(
    stays: pd.DataFrame,
    mesh_size: int = 1000,
    *,
    name: str = "city",
    user: str = "user_id",
    order: tuple[str, ...] = ("date", "arrival_time"),
    min_flow: int = 1,
    source: str = "<stays>",
    code_labels: Mapping[str, np.ndarray] | None = None,
) -> RegionGraph:
    """A region graph from one person's consecutive stays: JIS meshes as regions, moves as flows.

    Args:
        stays: one row per stay with ``user`` and either ``lat``/``lon`` or a mesh ``code``
            (with ``mesh_size`` when sizes are mixed); the columns in ``order`` sort each person's stays.
            With the stay columns (``stay_time``, ``day_of_week``, ``arrival_time``, ``is_holiday``)
            the graph also carries each mesh's token counts.
        mesh_size: 1000, 250 or 50: meshes of this size are the regions (coarser meshes are computed
            from positions; with codes only, codes of a finer size are mapped to their parent).
        name: the city's name.
        user: the person column.
        order: the columns that order one person's stays in time.
        min_flow: moves between two meshes seen fewer times are dropped.
        source: how to name the table in errors.
        code_labels: extra count labels: label name -> mesh codes (any size up to ``mesh_size``,
            e.g. people's home meshes), each counted in the region that holds it.

    Returns:
        The graph; ``weight`` counts the moves, the label ``stays`` counts the stays per mesh.

    Raises:
        InputError: missing columns, an unknown mesh size, no move between two meshes.
    """
    from core.geo.meshcode import cells_to_code, infer_sizes, latlon_to_cells, parent_code

    if mesh_size not in (1000, 250, 50):
        raise InputError(source, f"mesh size {mesh_size}", expected="mesh_size 1000, 250 or 50")
    frame = _sorted_stays(stays, user, order, source)
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
    codes, region = np.unique(code, return_inverse=True)
    o, d, w = _flows(frame[user].to_numpy(), region, min_flow, source, "meshes")
    stays_per, tokens = _per_region(region, stay_tokens(frame, source), len(codes))

    def region_of(c: np.ndarray, s: np.ndarray) -> np.ndarray:
        fine = s <= mesh_size
        up = np.full(len(c), -1, dtype=np.int64)
        up[fine] = parent_code(c[fine], s[fine], mesh_size) if fine.any() else up[fine]
        pos = np.minimum(np.searchsorted(codes, up), len(codes) - 1)
        return np.where(codes[pos] == up, pos, -1)

    lat, lon, area, wkt = _mesh_geometry(codes, mesh_size)
    return RegionGraph(
        name=name,
        region_ids=codes,
        area_km2=area,
        lon=lon,
        lat=lat,
        origin=o,
        destination=d,
        weight=w,
        labels={"stays": stays_per, **_code_labels(code_labels, region_of, len(codes))},
        geometry=wkt,
        token_counts=tokens,
    )


MESH_CLUSTER_COLUMNS = ("code", "mesh_size", "cluster")


def graph_from_clusters(
    stays: pd.DataFrame,
    meshes: pd.DataFrame,
    *,
    name: str = "city",
    user: str = "user_id",
    order: tuple[str, ...] = ("date", "arrival_time"),
    min_flow: int = 1,
    source: str = "<stays>",
    code_labels: Mapping[str, np.ndarray] | None = None,
) -> RegionGraph:
    """A region graph with the clusters of a release as regions: one region per cluster, moves as flows.

    Each stay is put in its mesh of the release dataset (its own 50 m or 250 m mesh code; a 50 m
    mesh the dataset does not hold falls back to its 250 m parent; from ``lat``/``lon`` the same
    way), hence in that mesh's cluster. A move is two consecutive stays of one person in different
    clusters; a stay outside the dataset's meshes is left out and breaks its person's chain.

    Args:
        stays: one row per stay with ``user``, the ``order`` columns and a mesh ``code`` (with
            ``mesh_size``, else sizes from the code length) or ``lat``/``lon``; with the stay columns
            the graph also carries each cluster's token counts.
        meshes: the dataset's meshes: ``code``, ``mesh_size``, ``cluster`` (:func:`release_clusters`).
        name, user, order, min_flow, source, code_labels: as in :func:`graph_from_stays` (code labels
            are counted in the cluster of their mesh).

    Returns:
        The graph: ``region_ids`` are the cluster numbers that hold stays (ascending); a region's area
        is the sum of its meshes' areas in the dataset, its centre their area-weighted mean; the label
        ``stays`` counts the stays per cluster. No outlines (``geometry`` is ``None``).

    Raises:
        InputError: a missing column, duplicate mesh codes, no stay in the dataset's meshes, no move
            between two clusters.
    """
    from core.geo.meshcode import cells_to_code, infer_sizes, latlon_to_cells, parent_code

    missing = [c for c in MESH_CLUSTER_COLUMNS if c not in meshes.columns]
    if missing:
        raise InputError("meshes", f"missing columns {missing}", expected=f"columns {list(MESH_CLUSTER_COLUMNS)}")
    mesh_code = meshes["code"].to_numpy(np.int64)
    if pd.Series(mesh_code).duplicated().any():
        raise InputError("meshes", "duplicate mesh codes", column="code", expected="one row per mesh")
    mesh_size = meshes["mesh_size"].to_numpy(np.int64)
    mesh_cluster = meshes["cluster"].to_numpy(np.int64)
    row_of = pd.Series(np.arange(len(mesh_code)), index=mesh_code)

    def mesh_of(c: np.ndarray, s: np.ndarray) -> np.ndarray:
        row = row_of.reindex(c).to_numpy(np.float64, copy=True)
        miss = np.isnan(row) & (s == 50)
        if miss.any():
            row[miss] = row_of.reindex(parent_code(c[miss], 50, 250)).to_numpy(np.float64)
        return np.where(np.isnan(row), -1, row).astype(np.int64)

    frame = _sorted_stays(stays, user, order, source)
    if "code" in frame.columns:
        raw = frame["code"].to_numpy(np.int64)
        sizes = frame["mesh_size"].to_numpy(np.int64) if "mesh_size" in frame.columns else infer_sizes(raw)
    elif {"lat", "lon"} <= set(frame.columns):
        i, j = latlon_to_cells(frame["lat"].to_numpy(np.float64), frame["lon"].to_numpy(np.float64))
        raw, sizes = cells_to_code(i, j, 50), np.full(len(frame), 50, dtype=np.int64)
    else:
        raise InputError(source, "no position", expected="a mesh code column 'code', or columns lat and lon")
    row = mesh_of(raw, sizes)
    cluster = np.where(row >= 0, mesh_cluster[np.maximum(row, 0)], -1)
    clusters = np.unique(cluster[cluster >= 0])
    if clusters.size == 0:
        raise InputError(source, "no stay in a mesh of the release dataset", expected="stays in the dataset's meshes")
    region = np.where(cluster >= 0, np.searchsorted(clusters, cluster), -1)
    o, d, w = _flows(frame[user].to_numpy(), region, min_flow, source, "clusters")
    stays_per, tokens = _per_region(region, stay_tokens(frame, source), len(clusters))

    def region_of(c: np.ndarray, s: np.ndarray) -> np.ndarray:
        r = mesh_of(c, s)
        cl = np.where(r >= 0, mesh_cluster[np.maximum(r, 0)], -1)
        pos = np.minimum(np.searchsorted(clusters, cl), len(clusters) - 1)
        return np.where((cl >= 0) & (clusters[pos] == cl), pos, -1)

    lat, lon, area, _ = _mesh_geometry(mesh_code, mesh_size)
    in_graph = np.isin(mesh_cluster, clusters)
    at = np.searchsorted(clusters, mesh_cluster[in_graph])
    total = np.bincount(at, weights=area[in_graph], minlength=len(clusters))
    return RegionGraph(
        name=name,
        region_ids=clusters.astype(np.int64),
        area_km2=total,
        lon=np.bincount(at, weights=(area * lon)[in_graph], minlength=len(clusters)) / total,
        lat=np.bincount(at, weights=(area * lat)[in_graph], minlength=len(clusters)) / total,
        origin=o,
        destination=d,
        weight=w,
        labels={"stays": stays_per, **_code_labels(code_labels, region_of, len(clusters))},
        geometry=None,
        token_counts=tokens,
    )
