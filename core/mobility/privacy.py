"""Mesh assignment with the privacy rule and the complement flag (SPEC §8).

Stays are assigned to 50 m meshes; a 50 m mesh is kept when more than ``min_users`` distinct users
stayed in it. The remaining stays move to their 250 m mesh (stays kept at 50 m are not counted
there), which is kept under the same rule; everything else is dropped. A kept 250 m mesh's other
50 m children are shown with the 250 m mesh's embedding and flagged ``is_complemented``: which
children are complemented depends only on kept meshes, so it reveals nothing about the children.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import knobs
from core.geo.meshcode import cells_to_code, code_to_cells, latlon_to_cells

MIN_USERS = knobs.MIN_USERS.default  # a mesh is kept with MORE than this many distinct users


@dataclass(frozen=True)
class MeshAssignment:
    """Per-stay mesh codes after the privacy rule.

    Attributes:
        code: mesh code of each stay (-1 where the stay was dropped).
        mesh_size: 50 or 250 (0 where dropped).
        users_per_mesh: distinct users of each kept mesh (``code -> users``), for audits.
    """

    code: np.ndarray
    mesh_size: np.ndarray
    users_per_mesh: pd.Series

    @property
    def kept(self) -> np.ndarray:
        return self.code >= 0


def _distinct_users(groups: np.ndarray, users: np.ndarray) -> pd.Series:
    """Distinct users per group (vectorised: unique (group, user) pairs, then counts)."""
    pairs = pd.DataFrame({"g": groups, "u": users}).drop_duplicates()
    return pairs["g"].value_counts(sort=False)


def assign_meshes(user: np.ndarray, lat: np.ndarray, lon: np.ndarray, min_users: int = MIN_USERS) -> MeshAssignment:
    """Assign stays to 50 m or 250 m meshes under the privacy rule (more than ``min_users`` users)."""
    user = np.asarray(user)
    i, j = latlon_to_cells(lat, lon)
    c50 = cells_to_code(i, j, 50)
    n50 = _distinct_users(c50, user)
    keep50 = np.isin(c50, n50.index[n50.to_numpy() > min_users].to_numpy())
    c250 = cells_to_code(i, j, 250)
    rest = ~keep50
    n250 = _distinct_users(c250[rest], user[rest])
    keep250 = rest & np.isin(c250, n250.index[n250.to_numpy() > min_users].to_numpy())
    code = np.where(keep50, c50, np.where(keep250, c250, -1))
    size = np.where(keep50, 50, np.where(keep250, 250, 0))
    users = pd.concat([n50[n50 > min_users], n250[n250 > min_users]])
    return MeshAssignment(code.astype(np.int64), size.astype(np.int64), users)


def complemented_children(codes: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 50 m meshes shown with their parent's embedding.

    For every kept 250 m mesh, its 25 children of 50 m that are not kept meshes themselves.

    Returns:
        ``(child_codes, parent_row)``: the 50 m codes and, for each, the row of its parent in
        ``codes``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    rows = np.flatnonzero(sizes == 250)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cells = code_to_cells(codes[rows], 250)
    di, dj = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    ci = (cells.i[:, None] + di.ravel()[None, :]).ravel()
    cj = (cells.j[:, None] + dj.ravel()[None, :]).ravel()
    child = cells_to_code(ci, cj, 50)
    parent = np.repeat(rows, 25)
    free = ~np.isin(child, codes[sizes == 50])
    return child[free], parent[free]


def with_complemented(
    codes: np.ndarray, sizes: np.ndarray, vectors: np.ndarray, labels: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """Kept meshes plus their complemented 50 m children (parent's vector and labels), as a release holds them.

    Returns:
        ``(codes, sizes, vectors, labels, is_complemented)`` with the children appended after the kept meshes.
    """
    child, parent_row = complemented_children(codes, sizes)
    return (
        np.concatenate([np.asarray(codes, np.int64), child]),
        np.concatenate([np.asarray(sizes, np.int64), np.full(len(child), 50)]),
        np.vstack([vectors, vectors[parent_row]]),
        {k: np.concatenate([v, v[parent_row]]) for k, v in labels.items()},
        np.r_[np.zeros(len(codes), bool), np.ones(len(child), bool)],
    )


def apply_privacy(stays: pd.DataFrame, min_users: int = MIN_USERS, source: str = "<stays>") -> tuple[pd.DataFrame, dict]:
    """Stays with a person and a position -> the training table: SPEC §1 columns plus ``code`` and ``mesh_size``.

    The position is ``lat``/``lon`` (or a ``code_50m`` column). Stays whose mesh has ``min_users``
    or fewer distinct people are dropped, and so are the person and position columns: nothing
    finer than a kept mesh leaves this step.

    Returns:
        The table and a report (plain data): stays in and out, meshes kept per size.

    Raises:
        InputError: when the person or position columns are missing.
    """
    from core.constants import STAY_COLUMNS
    from core.errors import InputError
    from core.geo.meshcode import code_centers

    cols = list(stays.columns)
    user_col = next((c for c in ("user_id", "user", "uid") if c in cols), None)
    if user_col is None:
        raise InputError(
            source, "missing column 'user_id'", expected="a person id per stay: the privacy rule counts distinct people per mesh"
        )
    missing = [c for c in STAY_COLUMNS if c not in cols]
    if missing:
        raise InputError(
            source,
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}",
            expected=f"columns {', '.join(STAY_COLUMNS)}",
        )
    if "lat" in cols and "lon" in cols:
        lat, lon = stays["lat"].to_numpy(np.float64), stays["lon"].to_numpy(np.float64)
    elif "code_50m" in cols:
        lat, lon = code_centers(stays["code_50m"].to_numpy(np.int64), 50)
    else:
        raise InputError(source, "missing columns 'lat' and 'lon' (or 'code_50m')", expected="the position of each stay")
    users = pd.factorize(stays[user_col])[0]
    a = assign_meshes(users, lat, lon, min_users)
    keep = a.kept
    out = stays.loc[keep, list(STAY_COLUMNS)].reset_index(drop=True)
    out["code"] = a.code[keep]
    out["mesh_size"] = a.mesh_size[keep]
    report = {
        "stays_in": int(len(stays)),
        "stays_out": int(keep.sum()),
        "min_users": int(min_users),
        "meshes_50m": int(np.unique(a.code[a.mesh_size == 50]).size),
        "meshes_250m": int(np.unique(a.code[a.mesh_size == 250]).size),
        "stays_dropped": int((~keep).sum()),
    }
    return out, report
