"""Region embeddings from user embeddings: a region is who walks it (RAW).

A region's embedding is the **sum** of the embeddings of the distinct people who have at least one
record in it (RAW), or their mean (``pool="mean"``). Regions are mesh codes at any level (50 m,
250 m, 1 km, the table's own codes) or HuMob cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.walkers.trajectories import Trajectories

POOLS = ("sum", "mean")
USERS_CSV = "users.csv"
REGIONS_CSV = "regions.csv"
# The regions of mesh levels again, in Area2Vec's embeddings.csv form (code, mesh_size, e0..),
# so that `python -m core cluster / similar / export` read them unchanged.
REGION_EMBEDDINGS_CSV = "region_embeddings.csv"
PEOPLE_CSV = "people.csv"


@dataclass
class RegionEmbeddings:
    """Embeddings of regions pooled from their visitors.

    Attributes:
        keys: region keys (mesh codes or HuMob cells ``x * 1000 + y``), ascending.
        mesh_sizes: mesh size per region (metres), or None for HuMob cells.
        vectors: regions x dim (float32).
        n_visitors: distinct people per region.
        pool: ``sum`` or ``mean``.
    """

    keys: np.ndarray
    mesh_sizes: np.ndarray | None
    vectors: np.ndarray
    n_visitors: np.ndarray
    pool: str

    def frame(self) -> pd.DataFrame:
        """``key, [mesh_size,] n_visitors, e0, ...``."""
        df = pd.DataFrame(self.vectors, columns=[f"e{i}" for i in range(self.vectors.shape[1])])
        df.insert(0, "n_visitors", self.n_visitors)
        if self.mesh_sizes is not None:
            df.insert(0, "mesh_size", self.mesh_sizes)
        df.insert(0, "key", self.keys)
        return df

    def as_area_embeddings(self) -> object:
        """The regions as :class:`core.area2vec.embeddings.AreaEmbeddings` keyed by ``code`` (mesh levels only)."""
        from core.area2vec.embeddings import AreaEmbeddings

        if self.mesh_sizes is None:
            raise InputError("regions", "HuMob cells are not mesh codes", expected="a mesh level (50m, 250m, 1km, code)")
        dim = self.vectors.shape[1]
        return AreaEmbeddings(
            "code", self.keys, self.vectors, np.zeros((168, dim), np.float32), self.mesh_sizes, {"pool": self.pool}
        )


def region_embeddings(
    traj: Trajectories, user_vectors: np.ndarray, level: str | None = None, pool: str = "sum", min_visitors: int = 1
) -> RegionEmbeddings:
    """Pool user embeddings over each region's distinct visitors.

    Args:
        traj: the records (people ``traj.uid`` index the rows of ``user_vectors``).
        user_vectors: people x dim.
        level: region level (see :meth:`Trajectories.regions`).
        pool: ``sum`` (RAW) or ``mean``.
        min_visitors: keep regions with at least this many distinct people.
    """
    if pool not in POOLS:
        raise InputError("regions", f"unknown pool '{pool}'", expected=f"one of {', '.join(POOLS)}")
    if user_vectors.shape[0] != traj.n_users:
        raise InputError("regions", f"{user_vectors.shape[0]} user vectors for {traj.n_users} people", expected="one per person")
    import scipy.sparse as sp

    keys, sizes = traj.regions(level)
    rkeys, rix = np.unique(keys, return_inverse=True)
    visits = sp.csr_array((np.ones(len(rix)), (rix, traj.uid)), shape=(len(rkeys), traj.n_users))
    visits.sum_duplicates()
    visits.data[:] = 1.0  # distinct visitors: a person's many records in a region count once
    n_vis = np.asarray(visits.sum(axis=1)).ravel().astype(np.int64)
    vectors = np.asarray(visits @ user_vectors.astype(np.float64))
    if pool == "mean":
        vectors = vectors / np.maximum(n_vis, 1)[:, None]
    keep = n_vis >= min_visitors
    rsize = None
    if sizes is not None:
        first = np.zeros(len(rkeys), np.int64)
        first[rix[::-1]] = np.arange(len(rix))[::-1]
        rsize = np.asarray(sizes)[first][keep].astype(np.int64)
    return RegionEmbeddings(rkeys[keep], rsize, vectors[keep].astype(np.float32), n_vis[keep], pool)


def write_users_csv(path: Path, users: np.ndarray, vectors: np.ndarray) -> None:
    """``uid, e0, ...`` atomically."""
    from core.atomic import atomic_path

    df = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(vectors.shape[1])])
    df.insert(0, "uid", users)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def read_users_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``users.csv``: (uid labels, people x dim float32)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "no such file")
    df = pd.read_csv(p)
    if "uid" not in df.columns:
        raise InputError(p.name, "no 'uid' column", expected="uid, e0, e1, ...")
    cols = [c for c in df.columns if c.startswith("e") and c[1:].isdigit()]
    return df["uid"].to_numpy(), df[cols].to_numpy(np.float32)


def write_regions(out: Path, regions: RegionEmbeddings) -> None:
    """``regions.csv`` and, for mesh levels, ``region_embeddings.csv`` (Area2Vec's form), atomically."""
    from core.atomic import atomic_path

    with atomic_path(out / REGIONS_CSV) as tmp:
        regions.frame().to_csv(tmp, index=False, float_format="%.6g")
    if regions.mesh_sizes is not None:
        df = pd.DataFrame(regions.vectors, columns=[f"e{i}" for i in range(regions.vectors.shape[1])])
        df.insert(0, "mesh_size", regions.mesh_sizes)
        df.insert(0, "code", regions.keys)
        with atomic_path(out / REGION_EMBEDDINGS_CSV) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")


def read_regions_csv(path: str | Path) -> RegionEmbeddings:
    """Read ``regions.csv`` back."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "no such file")
    df = pd.read_csv(p)
    for c in ("key", "n_visitors"):
        if c not in df.columns:
            raise InputError(p.name, f"no '{c}' column", expected="key, [mesh_size,] n_visitors, e0, ...")
    cols = [c for c in df.columns if c.startswith("e") and c[1:].isdigit()]
    sizes = df["mesh_size"].to_numpy(np.int64) if "mesh_size" in df.columns else None
    return RegionEmbeddings(
        df["key"].to_numpy(np.int64), sizes, df[cols].to_numpy(np.float32), df["n_visitors"].to_numpy(np.int64), "?"
    )
