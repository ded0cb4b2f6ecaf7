"""OpenUAS release layout (SPEC §10): discover, read (with a fast cache) and write datasets.

A release is any folder holding ``japan_city/geojson/<dataset>.geojson`` (and usually
``japan_city/model/<dataset>.pth``, ``anchor_data/`` and ``util_file/``). Datasets are found by
listing folders, so a real OpenUAS archive unpacked anywhere under ``data/`` is found as it is.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.analysis.charts import stay_weight_matrix
from core.area2vec.model import load_state_dict, save_state_dict
from core.atomic import atomic_path
from core.constants import MESH_CODE, MESH_SIZE, RELEASED_KS
from core.errors import ReleaseError
from core.geo.meshcode import code_bounds, code_centers

CITY_DIR = "japan_city"
GEOJSON_DIR = "geojson"
MODEL_DIR = "model"
ANCHOR_DIR = "anchor_data"
UTIL_DIR = "util_file"
CACHE_VERSION = 1
_MAX_DEPTH = 4

CITIES = ("tokyo", "osaka", "nagoya", "sapporo", "fukuoka", "sendai", "hiroshima", "kyoto")


@dataclass
class ReleaseDataset:
    """One dataset of a release: one row per mesh.

    Attributes:
        name: the file stem (e.g. ``nagoya_2019_04``).
        release: the release folder's name.
        codes: mesh codes (int64); ``mesh_sizes``: 50 or 250.
        vectors: ``meshes x dim`` embeddings (float32).
        labels: released cluster labels per k (``{5: ..., 10: ..., 20: ...}``), where present.
        complemented: ``is_complemented`` flags.
        decoder: ``168 x dim`` from the model file, when there is one.
    """

    name: str
    release: str
    codes: np.ndarray
    mesh_sizes: np.ndarray
    vectors: np.ndarray
    labels: dict[int, np.ndarray] = field(default_factory=dict)
    complemented: np.ndarray | None = None
    decoder: np.ndarray | None = None

    @property
    def n_meshes(self) -> int:
        return int(self.codes.shape[0])

    @property
    def city(self) -> str:
        """The city: from the name when it names one, else from where the meshes are."""
        return city_in_name(self.name) or city_from_codes(self.codes, self.mesh_sizes)

    @property
    def period(self) -> str:
        return split_name(self.name)[1]


@dataclass(frozen=True)
class DatasetRef:
    """Where a dataset's files are."""

    release: str
    name: str
    geojson: Path
    model: Path | None


# City centres (lat, lon) of the OpenUAS release's cities, for datasets whose name does not say.
CITY_CENTRES = {
    "tokyo": (35.68, 139.77),
    "osaka": (34.69, 135.50),
    "nagoya": (35.17, 136.91),
    "sapporo": (43.06, 141.35),
    "fukuoka": (33.59, 130.40),
    "sendai": (38.27, 140.87),
    "hiroshima": (34.39, 132.46),
    "kyoto": (35.01, 135.77),
}
CITY_RADIUS_KM = 30.0


def city_in_name(name: str) -> str | None:
    """A known city named in a dataset name (``nagoya_2019_04`` -> ``nagoya``), else ``None``."""
    low = name.lower()
    return next((c for c in CITIES if c in low), None)


def city_from_codes(codes: np.ndarray, sizes: np.ndarray) -> str:
    """The known city nearest to the meshes' median centre (within 30 km), else that centre as text."""
    if len(codes) == 0:
        return "unknown place"
    pick = np.linspace(0, len(codes) - 1, min(len(codes), 2000)).astype(np.int64)
    lat, lon = code_centers(np.asarray(codes)[pick], np.asarray(sizes)[pick])
    y, x = float(np.median(lat)), float(np.median(lon))
    dist = {c: 111.0 * np.hypot(y - cy, (x - cx) * np.cos(np.radians(y))) for c, (cy, cx) in CITY_CENTRES.items()}
    best = min(dist, key=lambda c: dist[c])
    return best if dist[best] <= CITY_RADIUS_KM else f"{y:.2f}N {x:.2f}E"


def split_name(name: str) -> tuple[str, str]:
    """Best-effort ``(city, period)`` of a dataset name: ``nagoya_2019_04`` -> (``nagoya``, ``2019-04``)."""
    low = name.lower()
    city = city_in_name(name) or re.split(r"[_\-\s]", low)[0]
    m = re.search(r"(20\d\d)[_\-]?(0[1-9]|1[0-2])?", low)
    period = "" if not m else (m.group(1) + (f"-{m.group(2)}" if m.group(2) else ""))
    return city, period


def discover(data_dir: str | Path) -> list[DatasetRef]:
    """Every dataset of every release under ``data_dir`` (sorted by release, then name)."""
    data_dir = Path(data_dir)
    found: list[DatasetRef] = []
    if not data_dir.is_dir():
        return found
    base_depth = len(data_dir.resolve().parts)
    for root, dirs, _files in os.walk(data_dir):
        rp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__",))
        if len(rp.resolve().parts) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        if rp.name == GEOJSON_DIR and rp.parent.name == CITY_DIR:
            release_root = rp.parent.parent
            release = release_root.name if release_root.resolve() != data_dir.resolve() else data_dir.name
            for gj in sorted(rp.glob("*.geojson")):
                models = [rp.parent / MODEL_DIR / f"{gj.stem}{suffix}" for suffix in (".pth", ".pt")]
                model = next((m for m in models if m.is_file()), None)  # the code writes .pth, the paper .pt
                found.append(DatasetRef(release, gj.stem, gj, model))
            dirs[:] = []
    return found


def _cache_key(path: Path) -> str:
    st = path.stat()
    raw = f"{CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def read_dataset(ref: DatasetRef, cache_dir: str | Path | None = None) -> ReleaseDataset:
    """Read a dataset's GeoJSON (and decoder); with ``cache_dir``, later reads come from a .npz.

    Raises:
        ReleaseError: naming the file and the missing or malformed property.
    """
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{ref.name}-{_cache_key(ref.geojson)}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file, allow_pickle=False) as z:
                    labels = {int(k[1:]): z[k] for k in z.files if k.startswith("k")}
                    return ReleaseDataset(
                        ref.name,
                        ref.release,
                        z["codes"],
                        z["mesh_sizes"],
                        z["vectors"],
                        labels,
                        z["complemented"],
                        z["decoder"] if "decoder" in z.files else None,
                    )
            except (OSError, ValueError, KeyError):
                cache_file.unlink(missing_ok=True)
    ds = _parse_geojson(ref)
    if ref.model is not None:
        _, ds.decoder = load_state_dict(ref.model)
    if cache_file is not None:
        arrays: dict[str, np.ndarray] = {"codes": ds.codes, "mesh_sizes": ds.mesh_sizes, "vectors": ds.vectors}
        if ds.complemented is not None:
            arrays["complemented"] = ds.complemented
        arrays.update({f"k{k}": v for k, v in ds.labels.items()})
        if ds.decoder is not None:
            arrays["decoder"] = ds.decoder
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # the stub types **arrays as its allow_pickle flag
    return ds


def _parse_geojson(ref: DatasetRef) -> ReleaseDataset:
    # Parsing creates millions of small containers: with the cyclic GC paused it is 3x faster.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_features(ref, json.loads(ref.geojson.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{ref.geojson}: not readable as GeoJSON ({exc})") from exc
    finally:
        if was_enabled:
            gc.enable()


# Property names as the upstream README writes them, and as the paper does (both are in use).
CODE_NAMES = (MESH_CODE, "geocode", "mesh_code")
LABEL_NAMES = ("{k}cluster", "cluster{k}")


def _pick(first: dict, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in first), None)


def _parse_features(ref: DatasetRef, doc: object) -> ReleaseDataset:
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list) or not feats:
        raise ReleaseError(f"{ref.geojson}: no features (expected a FeatureCollection of meshes)")
    props = [f.get("properties") or {} for f in feats]
    first = props[0]
    code_key = _pick(first, CODE_NAMES)
    if code_key is None or "vector" not in first:
        missing = "a mesh code ('code' or 'geocode')" if code_key is None else "'vector'"
        raise ReleaseError(
            f"{ref.geojson}: feature 1 has no {missing} property (expected code or geocode, vector, 5cluster or cluster5, ...)"
        )
    label_keys = {k: _pick(first, tuple(n.format(k=k) for n in LABEL_NAMES)) for k in RELEASED_KS}
    try:
        codes = np.array([int(p[code_key]) for p in props], dtype=np.int64)
        vecs = [p["vector"] for p in props]
        vectors = np.array([json.loads(v) if isinstance(v, str) else v for v in vecs], dtype=np.float32)
        sizes = np.array([int(p.get(MESH_SIZE) or (50 if len(str(p[code_key])) == 12 else 250)) for p in props], dtype=np.int64)
        comp = np.array([bool(p.get("is_complemented", False)) for p in props], dtype=bool)
        labels = {k: np.array([int(p[name]) for p in props], dtype=np.int64) for k, name in label_keys.items() if name}
    except (KeyError, TypeError, ValueError) as exc:
        raise ReleaseError(f"{ref.geojson}: malformed feature properties ({exc!r})") from exc
    if vectors.ndim != 2:
        raise ReleaseError(f"{ref.geojson}: 'vector' properties differ in length")
    return ReleaseDataset(ref.name, ref.release, codes, sizes, vectors, labels, comp)


def _text(values: np.ndarray):
    """Numbers as shortest round-trip text (Arrow's cast), vectorised."""
    import pyarrow as pa

    return pa.array(np.asarray(values)).cast(pa.string())


def geojson_text(
    codes: np.ndarray, sizes: np.ndarray, vectors: np.ndarray, labels: dict[int, np.ndarray], complemented: np.ndarray
) -> str:
    """A FeatureCollection of mesh polygons (SW, NW, NE, SE, SW) with the OpenUAS properties.

    One feature per line, built with Arrow's vectorised string kernels, not a Python loop over meshes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    s, w, n, e = code_bounds(codes, sizes)
    S, W, N, E = (_text(a) for a in (s, w, n, e))
    vec = np.asarray(vectors, dtype=np.float32)
    parts: list = ['{"type":"Feature","properties":{"code":', _text(np.asarray(codes, dtype=np.int64)), ',"vector":[']
    for d in range(vec.shape[1]):
        parts += ([","] if d else []) + [_text(vec[:, d])]
    parts.append("]")
    for k in sorted(labels):
        parts += [f',"{k}cluster":', _text(np.asarray(labels[k], dtype=np.int64))]
    parts += [',"mesh_size":', _text(np.asarray(sizes, dtype=np.int64))]
    parts += [',"is_complemented":', pa.array(np.where(complemented, "true", "false"))]
    parts.append('},"geometry":{"type":"Polygon","coordinates":[[[')
    for i, (lon, lat) in enumerate(((W, S), (W, N), (E, N), (E, S), (W, S))):
        parts += (["],["] if i else []) + [lon, ",", lat]
    parts.append("]]]}}")
    feats = pc.binary_join_element_wise(*[pa.scalar(p) if isinstance(p, str) else p for p in parts], pa.scalar(""))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(feats.to_pylist()) + "\n]}\n"


def write_dataset(
    release_root: str | Path,
    name: str,
    codes: np.ndarray,
    sizes: np.ndarray,
    vectors: np.ndarray,
    decoder: np.ndarray,
    labels: dict[int, np.ndarray],
    complemented: np.ndarray | None = None,
    overwrite: bool = True,
) -> DatasetRef:
    """Write ``japan_city/geojson/<name>.geojson`` and ``japan_city/model/<name>.pth`` as a whole.

    Both are written to temporary names first and renamed only once both are complete (model, then
    the GeoJSON that makes the dataset exist): a failure leaves the previous dataset, or none.

    Raises:
        ReleaseError: for a bad name, or a dataset of that name when not ``overwrite``.
    """
    gj, model = check_new_dataset(release_root, name, overwrite)
    root = Path(release_root)
    codes = np.asarray(codes, dtype=np.int64)
    comp = np.zeros(len(codes), dtype=bool) if complemented is None else np.asarray(complemented, dtype=bool)
    text = geojson_text(codes, np.asarray(sizes, dtype=np.int64), np.asarray(vectors), labels, comp)
    with atomic_path(gj) as tmp_gj, atomic_path(model) as tmp_model:
        save_state_dict(tmp_model, vectors, decoder)
        tmp_gj.write_text(text, encoding="utf-8")
    return DatasetRef(root.name, name, gj, model)


def check_new_dataset(release_root: str | Path, name: str, overwrite: bool = False) -> tuple[Path, Path]:
    """The GeoJSON and model paths of dataset ``name``; checked before any work.

    Raises:
        ReleaseError: for a name with path characters, or an existing dataset when not ``overwrite``.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", name) or ".." in name:
        raise ReleaseError(f"dataset name {name!r} is not allowed (letters, digits, '_', '-', '.'; no path characters)")
    root = Path(release_root)
    gj = root / CITY_DIR / GEOJSON_DIR / f"{name}.geojson"
    model = root / CITY_DIR / MODEL_DIR / f"{name}.pth"
    if not overwrite and (gj.exists() or model.exists()):
        raise ReleaseError(f"dataset {name!r} already exists in {root}; pass --overwrite to replace it")
    return gj, model


def write_util_files(release_root: str | Path) -> Path:
    """Write ``util_file/stay_weight_matrix.npy``."""
    target = Path(release_root) / UTIL_DIR / "stay_weight_matrix.npy"
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, stay_weight_matrix())
    return target
