"""Per-person, time-ordered trajectories: read from stay tables or HuMob files, split by user.

Two coordinate spaces exist. ``latlon``: stay tables (the output of ``python -m core stays``, the
demo's ``stays/*.parquet``) give each record a latitude and longitude. ``humob``: HuMob /
YJMob100K / LYMob-4Cities files give a cell of a 200 x 200 grid of 500 m cells (SPEC §11); cities
and dates are withheld, so no weekday is assumed and nothing is georeferenced.

One record is one token of the trajectory model: a stay (stay tables) or a run of consecutive
half-hour slots in the same cell (HuMob, ``merge_runs=True``) or one slot (``merge_runs=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError

LATLON = "latlon"
HUMOB = "humob"
SPACES = (LATLON, HUMOB)

USER_COLUMNS = ("user_id", "uid", "user", "userid", "device_id")
HUMOB_COLUMNS = ("uid", "d", "t", "x", "y")
HUMOB_GRID = 200  # cells per side
HUMOB_CELL_KM = 0.5
HUMOB_SLOTS = 48  # half-hour slots per day
HUMOB_MASK = 999  # an unknown cell (both x and y)
SLOT_MINUTES = 30
DAY_MINUTES = 1440

# Region levels: JIS mesh sizes from lat/lon, the table's own code/mesh_size, or the HuMob cell.
LEVELS = {"50m": 50, "250m": 250, "1km": 1000}
CODE_LEVEL = "code"
CELL_LEVEL = "cell"


@dataclass
class Trajectories:
    """Records of many people, sorted by person then time.

    Attributes:
        source: where they came from (for messages).
        space: ``latlon`` or ``humob``.
        users: the person labels as given (``users[uid[k]]`` is record k's person).
        uid: person index of each record (int64, 0..n_users-1, ascending).
        start: start of each record in minutes from day 0, 00:00 (float64).
        duration: minutes the record covers (stay time, or 30 per HuMob slot).
        u: latitude (latlon) or HuMob x (1..200).
        v: longitude (latlon) or HuMob y (1..200).
        weekday: Monday = 0 .. Sunday = 6, or -1 when unknown (HuMob).
        code: the table's own mesh code per record, when it has one (else None).
        mesh_size: the mesh size of ``code`` (metres), when known.
        day0: the calendar date of day 0 as a day number (days since 1970-01-01), or None when the
            source has no calendar dates (HuMob: anonymised day indices).
    """

    source: str
    space: str
    users: np.ndarray
    uid: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    u: np.ndarray
    v: np.ndarray
    weekday: np.ndarray
    code: np.ndarray | None = None
    mesh_size: np.ndarray | None = None
    day0: int | None = None

    def __len__(self) -> int:
        return int(self.uid.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.users.shape[0])

    def offsets(self) -> np.ndarray:
        """Start of each person's records, plus the end: ``n_users + 1`` values."""
        return np.searchsorted(self.uid, np.arange(self.n_users + 1)).astype(np.int64)

    def km(self, origin: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions in km: east and north of ``origin`` (lat, lon) for latlon; the grid for HuMob."""
        if self.space == HUMOB:
            return (self.u - 0.5) * HUMOB_CELL_KM, (self.v - 0.5) * HUMOB_CELL_KM
        lat0, lon0 = origin if origin is not None else self.default_origin()
        x = (self.v - lon0) * 111.32 * np.cos(np.radians(lat0))
        y = (self.u - lat0) * 111.32
        return x, y

    def default_origin(self) -> tuple[float, float]:
        """The median position (latlon), the projection origin of a model trained on these records."""
        if self.space == HUMOB or len(self) == 0:
            return (0.0, 0.0)
        return float(np.median(self.u)), float(np.median(self.v))

    def regions(self, level: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Region key of each record and its mesh size (None for HuMob cells).

        Args:
            level: ``50m``, ``250m``, ``1km`` (JIS codes from lat/lon), ``code`` (the table's own
                code and mesh_size columns) or ``cell`` (HuMob: ``x * 1000 + y``). Default: ``code``
                when the table has codes, ``50m`` for other latlon tables, ``cell`` for HuMob.
        """
        level = level or self.default_level()
        if self.space == HUMOB:
            if level != CELL_LEVEL:
                raise InputError(self.source, f"region level '{level}' needs latitude and longitude", expected="level 'cell'")
            return (self.u.astype(np.int64) * 1000 + self.v.astype(np.int64)), None
        if level == CODE_LEVEL:
            if self.code is None:
                raise InputError(self.source, "region level 'code' needs a 'code' column", expected=f"one of {', '.join(LEVELS)}")
            sizes = self.mesh_size if self.mesh_size is not None else np.full(len(self), 50, np.int64)
            return self.code, sizes
        if level not in LEVELS:
            raise InputError(
                self.source, f"unknown region level '{level}'", expected=f"one of {', '.join([*LEVELS, CODE_LEVEL])}"
            )
        from core.geo.meshcode import latlon_to_code

        return latlon_to_code(self.u, self.v, LEVELS[level]), np.full(len(self), LEVELS[level], np.int64)

    def default_level(self) -> str:
        if self.space == HUMOB:
            return CELL_LEVEL
        return CODE_LEVEL if self.code is not None else "50m"

    def take(self, mask: np.ndarray) -> Trajectories:
        """The records where ``mask`` holds, people renumbered (labels kept)."""
        keep_users = np.unique(self.uid[mask])
        new = np.full(self.n_users, -1, np.int64)
        new[keep_users] = np.arange(len(keep_users))
        return replace(
            self,
            users=self.users[keep_users],
            uid=new[self.uid[mask]],
            start=self.start[mask],
            duration=self.duration[mask],
            u=self.u[mask],
            v=self.v[mask],
            weekday=self.weekday[mask],
            code=None if self.code is None else self.code[mask],
            mesh_size=None if self.mesh_size is None else self.mesh_size[mask],
        )

    def select_users(self, users: np.ndarray) -> Trajectories:
        """The records of the people whose indices are in ``users``."""
        keep = np.zeros(self.n_users, bool)
        keep[np.asarray(users, np.int64)] = True
        return self.take(keep[self.uid])


def _build(
    source: str,
    space: str,
    labels: np.ndarray,
    start: np.ndarray,
    duration: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    weekday: np.ndarray,
    code: np.ndarray | None = None,
    mesh_size: np.ndarray | None = None,
    day0: int | None = None,
) -> Trajectories:
    """Factorise the person labels, sort by person then time and check there are people to model."""
    if len(labels) == 0:
        raise InputError(source, "no usable records", expected="at least one record with a known position")
    users, uid = np.unique(labels, return_inverse=True)
    if len(users) < 2:
        raise InputError(source, f"only one person ({users[0]})", expected="records of at least two people")
    order = np.lexsort((start, uid))
    pick = lambda a: None if a is None else np.asarray(a)[order]  # noqa: E731
    return Trajectories(
        source,
        space,
        users,
        uid[order].astype(np.int64),
        np.asarray(start, np.float64)[order],
        np.asarray(duration, np.float64)[order],
        np.asarray(u, np.float64)[order],
        np.asarray(v, np.float64)[order],
        np.asarray(weekday, np.int8)[order],
        pick(code),
        pick(mesh_size),
        day0,
    )


# ---------------------------------------------------------------- reading


def read_trajectories(path: str | Path, merge_runs: bool = True) -> Trajectories:
    """Read a stay table with user ids or a HuMob file (CSV, ``.csv.gz`` or Parquet), by its columns.

    A HuMob file has ``uid, d, t, x, y``; a stay table has a user column (``user_id``, ``uid``,
    ...), ``lat``, ``lon`` and a time (``arrival`` timestamps, or ``date`` with ``arrival_time``).
    Extra columns are ignored.

    Args:
        path: the file.
        merge_runs: HuMob only: one record per run of consecutive slots in the same cell.

    Raises:
        InputError: naming the file, the column, the first bad rows and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    name = path.name
    if path.stat().st_size == 0:
        raise InputError(name, "the file is empty", expected="a header line and records")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(name, f"cannot be read as CSV or Parquet: {exc}") from exc
    return trajectories_from_frame(frame, name, merge_runs=merge_runs)


def trajectories_from_frame(frame: pd.DataFrame, source: str = "<DataFrame>", merge_runs: bool = True) -> Trajectories:
    """Validate a DataFrame holding HuMob records or a stay table with user ids (see :func:`read_trajectories`)."""
    cols = [str(c).strip() for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    if all(c in cols for c in HUMOB_COLUMNS):
        return humob_from_frame(frame, source, merge_runs=merge_runs)
    return stays_to_trajectories(frame, source)


def _bad_rows(source: str, column: str, bad: np.ndarray, values: pd.Series, problem: str, expected: str) -> None:
    """Raise an InputError naming the first bad rows (1-based data rows) when ``bad`` has any."""
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            source,
            problem,
            column=column,
            rows=(rows[:5] + 1).tolist(),
            values=values.iloc[rows[:5]].tolist(),
            n_bad=len(rows),
            expected=expected,
        )


def _integers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce")
    arr = num.to_numpy(np.float64, na_value=np.nan)
    _bad_rows(source, column, ~np.isfinite(arr) | (arr != np.round(arr)), raw, "not an integer", "whole numbers")
    return arr.astype(np.int64)


def humob_from_frame(frame: pd.DataFrame, source: str, merge_runs: bool = True) -> Trajectories:
    """HuMob records (``uid, d, t, x, y``) -> trajectories; masked records (999) are dropped.

    Raises:
        InputError: a value that is not an integer, a slot outside 0..47, a negative day, a cell
            outside 1..200 that is not the 999 mask, a half-masked cell, or nothing left after masking.
    """
    uid = _integers(frame, "uid", source)
    d = _integers(frame, "d", source)
    t = _integers(frame, "t", source)
    x = _integers(frame, "x", source)
    y = _integers(frame, "y", source)
    _bad_rows(source, "d", d < 0, frame["d"], "negative day", "days 0, 1, 2, ...")
    _bad_rows(source, "t", (t < 0) | (t >= HUMOB_SLOTS), frame["t"], "slot out of range", "half-hour slots 0..47")
    masked = (x == HUMOB_MASK) & (y == HUMOB_MASK)
    for col, val in (("x", x), ("y", y)):
        bad = ~masked & ((val < 1) | (val > HUMOB_GRID))
        _bad_rows(source, col, bad, frame[col], "cell out of range", f"1..{HUMOB_GRID}, or {HUMOB_MASK} in both x and y (masked)")
    keep = ~masked
    if not keep.any():
        raise InputError(source, f"all {len(frame)} records are masked ({HUMOB_MASK})", expected="records with known cells")
    uid, d, t, x, y = uid[keep], d[keep], t[keep], x[keep], y[keep]
    slot = d * HUMOB_SLOTS + t
    order = np.lexsort((slot, uid))
    uid, slot, x, y = uid[order], slot[order], x[order], y[order]
    dup = np.r_[False, (uid[1:] == uid[:-1]) & (slot[1:] == slot[:-1])]
    uid, slot, x, y = uid[~dup], slot[~dup], x[~dup], y[~dup]
    n_slots = np.ones(len(uid), np.int64)
    if merge_runs:
        # A run: consecutive slots of one person in one cell.
        new = np.r_[True, (uid[1:] != uid[:-1]) | (slot[1:] != slot[:-1] + 1) | (x[1:] != x[:-1]) | (y[1:] != y[:-1])]
        first = np.flatnonzero(new)
        n_slots = np.diff(np.r_[first, len(uid)])
        uid, slot, x, y = uid[first], slot[first], x[first], y[first]
    return _build(
        source,
        HUMOB,
        uid,
        slot * float(SLOT_MINUTES),
        n_slots * float(SLOT_MINUTES),
        x,
        y,
        np.full(len(uid), -1, np.int8),
    )


def _find_user_column(cols: list[str], source: str) -> str:
    for c in USER_COLUMNS:
        if c in cols:
            return c
    raise InputError(
        source,
        "no user column",
        expected=f"a person column ({', '.join(USER_COLUMNS)}) for a stay table, or uid,d,t,x,y for HuMob; found {', '.join(cols)}",
    )


def _start_minutes(frame: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Start of each stay in minutes from the first day's midnight, its weekday, and that first day (days since 1970-01-01)."""
    cols = list(frame.columns)
    if "arrival" in cols:
        raw = frame["arrival"]
        try:
            ts = pd.to_datetime(raw, errors="coerce", utc=False, format="mixed")
        except ValueError:
            # Offsets that differ between rows (a trip across time zones, a daylight-saving change):
            # each stay keeps its own local wall time, as with one offset, so the offset is dropped.
            local = raw.astype("string").str.replace(r"(?:Z|[+-]\d{2}:?\d{2})\s*$", "", regex=True)
            ts = pd.to_datetime(local, errors="coerce", format="mixed")
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_localize(None)  # local wall time, as the stays' own day_of_week
        _bad_rows(source, "arrival", ts.isna().to_numpy(), raw, "not a time", "ISO 8601 timestamps")
    elif "date" in cols and "arrival_time" in cols:
        date = pd.to_datetime(frame["date"], errors="coerce")
        _bad_rows(source, "date", date.isna().to_numpy(), frame["date"], "not a date", "YYYY-MM-DD")
        hm = frame["arrival_time"].astype(str).str.extract(r"^\s*(\d{1,2}):(\d{2})")
        h = pd.to_numeric(hm[0], errors="coerce").to_numpy(np.float64)
        m = pd.to_numeric(hm[1], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(h) | ~np.isfinite(m) | (h > 23) | (m > 59)
        _bad_rows(source, "arrival_time", bad, frame["arrival_time"], "not a time of day", "HH:MM")
        ts = date + pd.to_timedelta(h * 60 + m, unit="min")
    else:
        raise InputError(
            source,
            "no time column",
            expected="'arrival' timestamps, or 'date' with 'arrival_time' (HH:MM), to order each person's stays",
        )
    day0 = ts.min().normalize()
    minutes = (ts - day0).dt.total_seconds().to_numpy(np.float64) / 60.0
    day_number = int((day0 - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1))
    return minutes, ts.dt.day_of_week.to_numpy(np.int8), day_number


def stays_to_trajectories(frame: pd.DataFrame, source: str) -> Trajectories:
    """A stay table with user ids (``python -m core stays`` output, the demo's stays) -> trajectories."""
    cols = list(frame.columns)
    ucol = _find_user_column(cols, source)
    for c in ("lat", "lon"):
        if c not in cols:
            raise InputError(source, f"missing column '{c}'", expected="lat and lon per stay (or HuMob uid,d,t,x,y)")
    users = frame[ucol]
    _bad_rows(source, ucol, users.isna().to_numpy(), users, "empty user id", "a user id")
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    _bad_rows(source, "lat", ~(np.abs(lat) <= 90), frame["lat"], "not a latitude", "-90..90")
    _bad_rows(source, "lon", ~(np.abs(lon) <= 180), frame["lon"], "not a longitude", "-180..180")
    start, weekday, day0 = _start_minutes(frame, source)
    if "stay_time" in cols:
        dur = pd.to_numeric(frame["stay_time"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        _bad_rows(source, "stay_time", ~(dur >= 0), frame["stay_time"], "not a duration", "minutes >= 0")
    else:
        dur = np.full(len(frame), float(SLOT_MINUTES))
    code = size = None
    if "code" in cols:
        code = pd.to_numeric(frame["code"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        _bad_rows(source, "code", ~np.isfinite(code), frame["code"], "not a mesh code", "JIS mesh codes")
        code = code.astype(np.int64)
        if "mesh_size" in cols:
            size = pd.to_numeric(frame["mesh_size"], errors="coerce").fillna(50).to_numpy(np.int64)
        else:
            from core.geo.meshcode import infer_sizes

            size = infer_sizes(code)
    labels = users.to_numpy()
    if labels.dtype == object:
        labels = labels.astype(str)
    return _build(source, LATLON, labels, start, dur, lat, lon, weekday, code, size, day0)


def covering_record(
    key: np.ndarray, uid: np.ndarray, start: np.ndarray, duration: np.ndarray, anchor: np.ndarray, tau: np.ndarray
) -> np.ndarray:
    """Index of the record of the anchor's person that covers time ``tau`` (start <= tau < end), or -1.

    Args:
        key: ``uid * 1e8 + start`` of every record (ascending, as records are sorted).
        uid, start, duration: per record.
        anchor: record indices; ``tau``: times (minutes) at or after the anchors' starts.
    """
    j = np.maximum(np.searchsorted(key, uid[anchor] * 1e8 + tau, side="right") - 1, 0)
    ok = (uid[j] == uid[anchor]) & (start[j] + np.maximum(duration[j], 1.0) > tau) & (j >= anchor)
    return np.where(ok, j, -1)


# ---------------------------------------------------------------- splits and truth


def split_users(n_users: int, test_share: float, seed: int) -> np.ndarray:
    """A seeded split of people: True for the test (held-out) people, never by record.

    At least one person lands on each side.
    """
    if n_users < 2:
        raise InputError("split", f"{n_users} person", expected="at least two people to hold some out")
    rng = np.random.default_rng(seed)
    n_test = int(np.clip(round(n_users * test_share), 1, n_users - 1))
    test = np.zeros(n_users, bool)
    test[rng.permutation(n_users)[:n_test]] = True
    return test


def people_truth(traj: Trajectories, truth: pd.DataFrame) -> pd.DataFrame:
    """People attributes aligned to ``traj.users``: a truth table with ``user_id`` (or ``uid``) joined.

    Returns one row per person of ``traj`` (``uid`` = the label) with the truth's columns;
    people missing from the truth get NaN.
    """
    key = "user_id" if "user_id" in truth.columns else "uid"
    if key not in truth.columns:
        raise InputError("truth", "no person column", expected="'user_id' or 'uid'")
    t = truth.drop_duplicates(key).set_index(key)
    labels = pd.Index(traj.users)
    if t.index.dtype != labels.dtype:
        t.index = t.index.astype(str)
        labels = labels.astype(str)
    out = t.reindex(labels).reset_index(drop=True)
    out.insert(0, "uid", traj.users)
    return out


def find_demo_truth(path: str | Path) -> Path | None:
    """The demo's people table for a demo stays file (``<release>/stays/<city>_<period>.parquet``), if present."""
    p = Path(path)
    city = p.stem.split("_")[0]
    cand = p.parent.parent / "truth" / f"people_{city}.parquet"
    if p.parent.name == "stays" and cand.is_file():
        return cand
    humob = p.with_name(p.name.split(".")[0] + "_people.csv")
    return humob if humob.is_file() else None


def people_table(traj: Trajectories, truth_path: str | Path | None) -> pd.DataFrame:
    """People attributes for the People explorer: uid, commuter, role, home district, activity.

    ``activity`` is the person's number of records. The truth columns come from the demo's people
    table (or a HuMob generator's ``*_people.csv``); the home district from the demo's mesh truth
    where the release has one.
    """
    counts = np.bincount(traj.uid, minlength=traj.n_users)
    base = pd.DataFrame({"uid": traj.users, "activity": counts})
    if truth_path is None:
        return base
    tp = Path(truth_path)
    truth = pd.read_parquet(tp) if tp.suffix == ".parquet" else pd.read_csv(tp)
    joined = people_truth(traj, truth)
    cols = [c for c in ("commuter", "role", "home_code", "work_code", "home_district") if c in joined.columns]
    out = pd.concat([base, joined[cols]], axis=1)
    meshes = tp.parent / "meshes.parquet"
    if "home_code" in out.columns and "home_district" not in out.columns and meshes.is_file():
        m = pd.read_parquet(meshes, columns=["code", "district"]).drop_duplicates("code").set_index("code")["district"]
        out["home_district"] = m.reindex(out["home_code"].to_numpy()).to_numpy()
    return out
