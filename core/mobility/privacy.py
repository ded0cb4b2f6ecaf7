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
import pyarrow as pa

from core import knobs
from core.errors import InputError
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


def missing_people(user: np.ndarray | pd.Series) -> np.ndarray:
    """Where a stay has no person: a missing value (None, NaN), a blank string, or a negative integer code.

    Negative integers are :func:`pandas.factorize`'s code for a missing value (see :func:`person_codes`).
    Such stays are never counted as a person: the privacy rule would otherwise count every
    anonymous stay of a mesh as one more person.
    """
    values = pd.Series(np.asarray(user)) if not isinstance(user, pd.Series) else user.reset_index(drop=True)
    if pd.api.types.is_integer_dtype(values.dtype):
        return (values < 0).to_numpy()
    missing = values.isna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
        return missing
    text = values.astype("string").str.strip()
    return missing | (text.fillna("") == "").to_numpy()


def person_codes(user: np.ndarray | pd.Series) -> np.ndarray:
    """Integer person codes (0..n-1) of each stay; -1 where the stay has no person (:func:`missing_people`)."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(user)) if not isinstance(user, pd.Series) else user)
    codes = codes.astype(np.int64)
    blank = np.flatnonzero(missing_people(np.asarray(uniques, dtype=object)))  # checked once per distinct id
    if blank.size:
        codes[np.isin(codes, blank)] = -1
    return codes


def _distinct_users(groups: np.ndarray, users: np.ndarray) -> pd.Series:
    """Distinct users per group (vectorised: unique (group, user) pairs, then counts)."""
    pairs = pd.DataFrame({"g": groups, "u": users}).drop_duplicates()
    return pairs["g"].value_counts(sort=False)


@dataclass(frozen=True)
class KeptMeshes:
    """The meshes that pass the privacy rule: sorted 50 m and 250 m codes and their distinct users.

    Attributes:
        codes50: kept 50 m codes (sorted int64).
        codes250: kept 250 m codes (sorted int64).
        users_per_mesh: distinct users of each kept mesh (``code -> users``).
    """

    codes50: np.ndarray
    codes250: np.ndarray
    users_per_mesh: pd.Series


def stay_cells(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 50 m and 250 m mesh codes of stay positions (a 50 m mesh lies in exactly one 250 m mesh)."""
    i, j = latlon_to_cells(lat, lon)
    return cells_to_code(i, j, 50), cells_to_code(i, j, 250)


def kept_meshes(c50: np.ndarray, c250: np.ndarray, user: np.ndarray, min_users: int = MIN_USERS) -> KeptMeshes:
    """Which meshes pass the rule, from each stay's (or each distinct stay pair's) 50 m and 250 m code and person.

    Only distinct ``(mesh, user)`` pairs matter, so the input may be every stay or any set of rows
    holding the same distinct pairs; the result is the same. All the stays of a 250 m mesh and of
    its 50 m children must be present (a cluster partitions them by 250 m code). Stays without a
    person (:func:`missing_people`) are not counted.

    Raises:
        InputError: when ``min_users`` is not an integer >= 1 (the one rule of :data:`core.knobs.MIN_USERS`).
    """
    min_users = knobs.MIN_USERS.check(min_users)
    user = np.asarray(user)
    present = ~missing_people(user)
    if not present.all():
        c50, c250, user = np.asarray(c50)[present], np.asarray(c250)[present], user[present]
    n50 = _distinct_users(c50, user)
    keep50 = n50.index[n50.to_numpy() > min_users].to_numpy()
    rest = ~np.isin(c50, keep50)
    n250 = _distinct_users(c250[rest], user[rest])
    keep250 = n250.index[n250.to_numpy() > min_users].to_numpy()
    users = pd.concat([n50[n50 > min_users], n250[n250 > min_users]])
    return KeptMeshes(np.sort(keep50.astype(np.int64)), np.sort(keep250.astype(np.int64)), users)


def assign_kept(c50: np.ndarray, c250: np.ndarray, kept: KeptMeshes) -> tuple[np.ndarray, np.ndarray]:
    """Each stay's mesh code and size under the rule (-1 and 0 where dropped)."""
    keep50 = np.isin(c50, kept.codes50)
    keep250 = ~keep50 & np.isin(c250, kept.codes250)
    code = np.where(keep50, c50, np.where(keep250, c250, -1))
    size = np.where(keep50, 50, np.where(keep250, 250, 0))
    return code.astype(np.int64), size.astype(np.int64)


def assign_meshes(user: np.ndarray, lat: np.ndarray, lon: np.ndarray, min_users: int = MIN_USERS) -> MeshAssignment:
    """Assign stays to 50 m or 250 m meshes under the privacy rule (more than ``min_users`` users).

    Stays without a person (:func:`missing_people`) are neither counted nor assigned (code -1).
    """
    c50, c250 = stay_cells(lat, lon)
    kept = kept_meshes(c50, c250, np.asarray(user), min_users)
    code, size = assign_kept(c50, c250, kept)
    nobody = missing_people(np.asarray(user))
    code[nobody], size[nobody] = -1, 0
    return MeshAssignment(code, size, kept.users_per_mesh)


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


def privacy_inputs(stays: pd.DataFrame, source: str = "<stays>") -> tuple[str, np.ndarray, np.ndarray]:
    """Check a stay table for the privacy rule and return ``(user column, lat, lon)``.

    The position is ``lat``/``lon`` (or the centre of a ``code_50m``).

    Raises:
        InputError: when the person, stay or position columns are missing.
    """
    from core.constants import STAY_COLUMNS
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
    check_stay_columns(stays, source)
    if "lat" in cols and "lon" in cols:
        lat, lon = stays["lat"].to_numpy(np.float64), stays["lon"].to_numpy(np.float64)
    elif "code_50m" in cols:
        lat, lon = code_centers(stays["code_50m"].to_numpy(np.int64), 50)
    else:
        raise InputError(source, "missing columns 'lat' and 'lon' (or 'code_50m')", expected="the position of each stay")
    return user_col, lat, lon


def check_stay_columns(stays: pd.DataFrame, source: str = "<stays>") -> None:
    """Validate the SPEC §1 stay columns as ``train`` does (durations, weekdays, times of day, holidays).

    Rows are named as in the input (row 1 = the first stay). An empty table (or partition) passes.

    Raises:
        InputError: for any invalid value, with the column and the first rows.
    """
    from core.constants import MESH_ID, STAY_COLUMNS
    from core.mobility.stays import stays_from_frame

    if len(stays) == 0:
        return
    frame = stays[list(STAY_COLUMNS)].copy()
    frame[MESH_ID] = 0  # the area key is checked after the rule; only the stay columns here
    try:
        stays_from_frame(frame, source)
    except (pa.ArrowException, TypeError):
        # A column mixing types (text among numbers): check it as text, so the message names the rows.
        for c in STAY_COLUMNS:
            if frame[c].dtype == object:
                frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        stays_from_frame(frame, source)


def training_rows(stays: pd.DataFrame, code: np.ndarray, size: np.ndarray) -> pd.DataFrame:
    """The kept stays as the training table: SPEC §1 columns plus ``code`` and ``mesh_size`` (no person, no position)."""
    from core.constants import STAY_COLUMNS

    keep = code >= 0
    out = stays.loc[keep, list(STAY_COLUMNS)].reset_index(drop=True)
    out["code"] = code[keep]
    out["mesh_size"] = size[keep]
    return out


def apply_privacy(stays: pd.DataFrame, min_users: int = MIN_USERS, source: str = "<stays>") -> tuple[pd.DataFrame, dict]:
    """Stays with a person and a position -> the training table: SPEC §1 columns plus ``code`` and ``mesh_size``.

    The position is ``lat``/``lon`` (or a ``code_50m`` column). Stays whose mesh has ``min_users``
    or fewer distinct people are dropped, and so are the person and position columns: nothing
    finer than a kept mesh leaves this step. Stays without a person id (missing or blank) are
    dropped and never counted as a person; the report counts them (``stays_without_person``).

    Returns:
        The table and a report (plain data): stays in and out, meshes kept per size.

    Raises:
        InputError: when the person or position columns are missing.
    """
    user_col, lat, lon = privacy_inputs(stays, source)
    users = person_codes(stays[user_col])
    a = assign_meshes(users, lat, lon, min_users)
    out = training_rows(stays, a.code, a.mesh_size)
    return out, privacy_report(len(stays), a.code, a.mesh_size, min_users, int((users < 0).sum()))


def privacy_report(n_in: int, code: np.ndarray, size: np.ndarray, min_users: int, no_person: int = 0) -> dict:
    """Stays in and out, meshes kept per size, and stays dropped for want of a person id (plain data)."""
    keep = code >= 0
    return {
        "stays_without_person": int(no_person),
        "stays_in": int(n_in),
        "stays_out": int(keep.sum()),
        "min_users": int(min_users),
        "meshes_50m": int(np.unique(code[size == 50]).size),
        "meshes_250m": int(np.unique(code[size == 250]).size),
        "stays_dropped": int(n_in - keep.sum()),
    }
