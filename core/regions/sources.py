"""Where a city's region graph comes from: a LibCity folder, or a stay table of our own (meshes or clusters).

:func:`load_city` turns what a user names into a :class:`~core.regions.graph.RegionGraph`:

- a folder with ``*.geo`` / ``*.mob`` (the CoRE data's layout): :func:`~core.regions.graph.read_city`;
- a stay table (``.parquet`` / ``.csv`` with ``user_id``, ``date``, ``arrival_time``, the stay
  columns and ``code``/``mesh_size`` or ``lat``/``lon``), e.g. the demo's ``DATA/demo/stays/<dataset>.parquet``:
  JIS meshes as regions (:func:`~core.regions.graph.graph_from_stays`), or the joint clusters of the
  release the table belongs to (:func:`~core.regions.graph.graph_from_clusters` with
  :func:`release_clusters`). A stay table inside a release (``RELEASE/stays/<dataset>.parquet``)
  also finds that release's anchor set (:func:`release_anchor_dir`) and, where the release keeps
  the truth of its people (the demo's ``RELEASE/truth/people_<city>.parquet``), the count labels
  ``residents`` and ``workers`` per region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.regions.config import REGION_KINDS
from core.regions.graph import RegionGraph, graph_from_clusters, graph_from_stays, read_city

STAY_SUFFIXES = (".parquet", ".pq", ".csv")
TRUTH_DIR = "truth"


def release_of_stays(path: str | Path) -> Path | None:
    """The release folder of a stay table kept as ``RELEASE/stays/<dataset>.parquet`` (else ``None``)."""
    path = Path(path)
    return path.parent.parent if path.parent.name == "stays" else None


def release_anchor_dir(path: str | Path) -> Path | None:
    """The anchor set (``anchor_data/``) of the release a stay table belongs to, where it has one."""
    from core.area2vec.anchors import anchor_tensor_path
    from core.release.layout import ANCHOR_DIR

    root = release_of_stays(path)
    if root is None:
        return None
    folder = root / ANCHOR_DIR
    return folder if (folder / "anchor_df.csv").is_file() and anchor_tensor_path(folder) is not None else None


def release_clusters(release_root: str | Path, dataset: str, k: int) -> pd.DataFrame:
    """A release dataset's meshes and their joint cluster at ``k``: columns ``code``, ``mesh_size``, ``cluster``.

    The cluster of a mesh is the nearest centre of the joint clusters the release stores at ``k``
    (``RELEASE/clusters/k<K>.json``, :mod:`core.release.clusters`), from the dataset's embeddings and
    decoder; a release without them (the published OpenUAS one) gives the ``<k>cluster`` labels of its
    GeoJSON.

    Raises:
        InputError: no such dataset in the release, or no clusters at ``k``.
    """
    from core.release.clusters import clusters_file, load_joint
    from core.release.layout import CITY_DIR, GEOJSON_DIR, MODEL_DIR, DatasetRef, read_dataset

    root = Path(release_root)
    geojson = root / CITY_DIR / GEOJSON_DIR / f"{dataset}.geojson"
    if not geojson.is_file():
        found = sorted(p.stem for p in (root / CITY_DIR / GEOJSON_DIR).glob("*.geojson"))
        raise InputError(str(root), f"no dataset '{dataset}'", expected=f"one of {found or 'none (not a release folder)'}")
    model = next((m for m in (root / CITY_DIR / MODEL_DIR / f"{dataset}{s}" for s in (".pth", ".pt")) if m.is_file()), None)
    ds = read_dataset(DatasetRef(root.name, dataset, geojson, model))
    joint = load_joint(clusters_file(root, k))
    if joint is not None and joint.k == k:
        labels = joint.assign(ds.vectors, ds.decoder)
    elif k in ds.labels:
        labels = ds.labels[k]
    else:
        stored = sorted(int(p.stem[1:]) for p in (root / "clusters").glob("k*.json") if p.stem[1:].isdigit())
        raise InputError(
            str(root), f"no clusters at k = {k}", expected=f"k among the stored {sorted(set(stored) | set(ds.labels))}"
        )
    return pd.DataFrame({"code": ds.codes, "mesh_size": ds.mesh_sizes, "cluster": np.asarray(labels, dtype=np.int64)})


def people_labels(release_root: Path | None, dataset: str) -> dict[str, np.ndarray]:
    """Count labels from the truth of a release's people, where it keeps one (the demo's).

    ``residents``: each person's home mesh; ``workers``: each working person's work mesh
    (``RELEASE/truth/people_<city>.parquet``, columns ``home_code``, ``work_code``).
    """
    from core.release.layout import split_name

    if release_root is None:
        return {}
    path = release_root / TRUTH_DIR / f"people_{split_name(dataset)[0]}.parquet"
    if not path.is_file():
        return {}
    people = pd.read_parquet(path, columns=["home_code", "work_code"])
    work = people["work_code"].to_numpy(np.int64)
    return {"residents": people["home_code"].to_numpy(np.int64), "workers": work[work > 0]}


def read_stay_table(path: Path) -> pd.DataFrame:
    """A stay table from Parquet or CSV, as it is (the graph builders check the columns)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def load_city(
    path: str | Path,
    labels: tuple[str, ...] | None = None,
    *,
    mesh_size: int = 1000,
    regions: str = "meshes",
    k: int = 10,
    release: str | Path | None = None,
) -> RegionGraph:
    """The region graph of a city folder or of a stay table.

    Args:
        path: a LibCity-style city folder, or a stay table (``.parquet`` / ``.csv``).
        labels: for a folder, the labels to read (default: all); for a stay table, labels it must
            carry (``stays``, and ``residents`` / ``workers`` where the release keeps its people's truth).
        mesh_size: regions of a stay table when ``regions == "meshes"``: 1000, 250 or 50 m meshes.
        regions: ``meshes`` or ``clusters`` (the joint clusters of the release at ``k``).
        k: the number of joint clusters (``regions == "clusters"``).
        release: the release folder of the stay table (default: the folder that holds ``stays/``).

    Raises:
        InputError: a path that is neither, a missing label, or what the builders reject.
    """
    path = Path(path)
    if path.is_dir():
        return read_city(path, labels)
    if not path.is_file() or path.suffix.lower() not in STAY_SUFFIXES:
        raise InputError(str(path), "not a city", expected="a city folder (*.geo, *.mob, *.npy) or a stay table (.parquet, .csv)")
    if regions not in REGION_KINDS:
        raise InputError("regions", f"unknown kind '{regions}'", expected=f"one of {', '.join(REGION_KINDS)}")
    root = Path(release) if release is not None else release_of_stays(path)
    stays = read_stay_table(path)
    extra = people_labels(root, path.stem)
    if regions == "meshes":
        graph = graph_from_stays(stays, mesh_size, name=path.stem, source=path.name, code_labels=extra)
    else:
        if root is None:
            raise InputError(str(path), "no release folder", expected="a stay table in RELEASE/stays/, or --release DIR")
        meshes = release_clusters(root, path.stem, k)
        graph = graph_from_clusters(stays, meshes, name=path.stem, source=path.name, code_labels=extra)
    for label in labels or ():
        graph.label(label)
    return graph
