"""Joint clusters stored with a release: ``RELEASE/clusters/[<space>/]k<K>.json``, beside ``util_file/``.

A release's own space (its datasets, anchored to its anchor set) keeps ``clusters/k10.json``; a
dataset trained free is a space of its own, kept under ``clusters/free-<dataset>/``. Each file
holds the centres, the derived names and the names users gave (:class:`JointClusters`), and is
written atomically, so a reader sees the old file or the new one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from core.analysis.joint import JointClusters
from core.atomic import write_text_atomic
from core.constants import RELEASED_KS
from core.errors import InputError, ReleaseError

CLUSTERS_DIR = "clusters"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
NAME_MAX = 60


def release_root_of(geojson: Path) -> Path:
    """The release folder of a dataset's GeoJSON (``RELEASE/japan_city/geojson/X.geojson``)."""
    return Path(geojson).parent.parent.parent


def clusters_file(release_root: str | Path, k: int, space_dir: str | None = None) -> Path:
    """Where the clusters of a space at ``k`` live (``space_dir``: a free dataset's own space)."""
    root = Path(release_root) / CLUSTERS_DIR
    if space_dir:
        root = root / _SAFE.sub("_", space_dir)
    return root / f"k{int(k)}.json"


def save_joint(path: str | Path, clusters: JointClusters) -> Path:
    """Write ``clusters`` to ``path`` atomically."""
    path = Path(path)
    write_text_atomic(path, json.dumps(clusters.to_dict(), indent=1))
    return path


def load_joint(path: str | Path) -> JointClusters | None:
    """The clusters stored at ``path`` (``None`` when there is no such file).

    Raises:
        ReleaseError: the file exists but is not a clusters file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ReleaseError(f"{path}: not JSON") from None
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: not a clusters file")
    return JointClusters.from_dict(data, source=str(path))


def check_cluster_name(name: object) -> str:
    """A cluster name a user typed: 1-60 printable characters, trimmed.

    Raises:
        InputError: an empty, too long or non-printable name.
    """
    text = str(name if name is not None else "").strip()
    if not text:
        raise InputError("cluster name", "is empty", expected="1 to 60 characters")
    if len(text) > NAME_MAX:
        raise InputError("cluster name", f"has {len(text)} characters", expected=f"at most {NAME_MAX}")
    if not text.isprintable():
        raise InputError("cluster name", "has control characters", expected="printable text")
    return text


def rename_cluster(path: str | Path, cluster: int, name: object) -> JointClusters:
    """Give ``cluster`` of the stored clusters at ``path`` a user's name (empty name: back to the derived one).

    Raises:
        ReleaseError: no clusters file at ``path``.
        InputError: a bad cluster number or name.
    """
    current = load_joint(path)
    if current is None:
        raise ReleaseError(f"{path}: no clusters stored here")
    if not isinstance(cluster, int) or not 0 <= cluster < current.k:
        raise InputError("cluster", f"{cluster!r} is out of range", expected=f"an integer from 0 to {current.k - 1}")
    if name is None or not str(name).strip():
        current.renamed.pop(cluster, None)
    else:
        current.renamed[cluster] = check_cluster_name(name)
    save_joint(path, current)
    return current


def dataset_labels(
    vectors: np.ndarray, decoder: np.ndarray | None, space_root: Path | None = None, ks: tuple[int, ...] = RELEASED_KS
) -> dict[int, np.ndarray]:
    """The labels a new dataset is written with at the released ks (one rule for every writer).

    Anchored to a release that stores its joint clusters (``space_root/clusters/k<K>.json``), the
    dataset is assigned to them, so its labels mean what they mean in the release. Otherwise it is a
    space of its own: joint clusters of itself, k capped by its distinct embeddings.
    """
    from core.analysis.joint import SpacePart, fit_joint

    out: dict[int, np.ndarray] = {}
    distinct: int | None = None  # counted only when the dataset is clustered on its own
    for k in ks:
        stored = load_joint(clusters_file(space_root, k)) if space_root is not None else None
        usable = stored is not None and (
            (stored.basis == "pattern" and decoder is not None)
            or (stored.basis == "embedding" and stored.centroids.shape[1] == vectors.shape[1])
        )
        if stored is not None and usable:
            out[k] = stored.assign(vectors, decoder)
            continue
        if distinct is None:
            distinct = len(np.unique(np.round(np.asarray(vectors, dtype=np.float64), 6), axis=0))
        if distinct >= 2:
            out[k] = fit_joint({"self": SpacePart(vectors, decoder)}, min(k, distinct), space="own").assign(vectors, decoder)
        else:
            out[k] = np.zeros(len(vectors), dtype=np.int64)
    return out
