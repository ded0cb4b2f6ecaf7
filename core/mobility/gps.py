"""From raw GPS fixes to stays (SPEC §9): read, clean, detect stays, add calendar and mesh columns.

A stay is a run of consecutive fixes of one person that all lie within ``distance_m`` of the run's
first fix and that lasts at least ``min_minutes`` (arrival = first fix, duration = last - first);
the scan then goes on after the run, otherwise at the next fix (Li et al. 2008; the method the
OpenUAS paper uses, Iwata et al.). Sparse loggers are fine: two fixes hours apart at the same place
are a stay. No stay spans a logger power-off (a marker column, e.g. ``Type = -4``) or, if set, a
gap longer than ``max_gap_minutes``.

Cleaning before the scan: fixes are sorted by person and time, exact duplicates (same person and
time) keep their first row, (0, 0) "null island" fixes are dropped, and a single fix that jumps away
and back faster than ``max_speed`` (m/s) is dropped as a spike. Coordinates outside the valid range
and unparseable times are errors naming the file, column and rows.

The scan is one compiled loop (numba); everything else is vectorised array work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core import knobs
from core.constants import ARRIVAL_TIME, DAY_OF_WEEK, IS_HOLIDAY, STAY_TIME
from core.errors import InputError
from core.geo.meshcode import latlon_to_code
from core.mobility import calendar
from core.mobility.stays import ProblemCollector, _bad, read_csv_header

EARTH_RADIUS_M = 6_371_008.8
USER_ID = "user_id"
GPS_SUFFIXES = (".csv", ".txt", ".gz", ".parquet", ".pq")

_USER_NAMES = ("user_id", "user", "uid", "userid", "device_id", "id")
_TIME_NAMES = ("timestamp", "datetime", "date_time", "time", "t")
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")
_OFFSET_RE = r"(Z|z|[+-]\d{2}:?\d{2})$"
_HHMM = np.array([f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)], dtype=object)


@dataclass(frozen=True)
class GpsOptions:
    """How to read fixes and detect stays.

    Attributes:
        user_col: person column; ``None`` = the first of user_id/user/uid/..., else the file name.
        time_col: timestamps (ISO 8601 text, or epoch seconds; milliseconds when above 1e11).
        date_col: a separate date column joined before the time (e.g. ``Date`` + ``Time``);
            ``None`` = a column named ``date`` when there is one.
        lat_col, lon_col: coordinates in degrees (WGS 84).
        tz: time zone of timestamps without an offset, and of the output's local times.
        distance_m: a stay's fixes lie within this distance of its first fix.
        min_minutes: a stay lasts at least this long.
        max_gap_minutes: no stay spans a gap between fixes longer than this (``None``: any gap).
        max_speed: a fix reached and left faster than this (m/s) is a spike and is dropped.
        off_col: logger on/off marker column; ``"auto"`` = a column ``Type`` holding only 0/-2/-4.
        off_values: marker values meaning "logger switched off after this fix".
        country: calendar for ``is_holiday`` (``JP`` via jpholiday, others via ``holidays``).
    """

    user_col: str | None = None
    time_col: str | None = None
    date_col: str | None = None
    lat_col: str | None = None
    lon_col: str | None = None
    tz: str = knobs.TIME_ZONE.default
    distance_m: float = knobs.STAY_RADIUS.default
    min_minutes: float = knobs.MIN_STAY.default
    max_gap_minutes: float | None = knobs.MAX_GAP.default
    max_speed: float = knobs.MAX_SPEED.default
    off_col: str | None = "auto"
    off_values: tuple[int, ...] = (-4,)
    country: str = knobs.COUNTRY.default


@dataclass(frozen=True)
class Fixes:
    """Cleaned fixes, sorted by person then time.

    Attributes:
        users: person names (``users[user[i]]`` is fix i's person).
        user: person index of each fix (int32).
        t: UTC time, seconds since 1970 (float64).
        lat, lon: degrees.
        off: the logger was switched off after this fix.
        report: counts of what was read and dropped, per reason.
    """

    users: np.ndarray
    user: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    off: np.ndarray
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True)
class StayPoints:
    """Detected stays: first and last fix (indices into the :class:`Fixes`), where and when."""

    first: np.ndarray
    last: np.ndarray
    user: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    n_fixes: np.ndarray

    def __len__(self) -> int:
        return int(self.first.shape[0])


# ---------------------------------------------------------------- reading


@overload
def _find(
    names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, source: str, required: Literal[True] = True
) -> str: ...


@overload
def _find(
    names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, source: str, required: bool
) -> str | None: ...


def _find(
    names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, source: str, required: bool = True
) -> str | None:
    lower = {n.strip().lower(): n for n in names}
    if wanted is not None:
        hit = lower.get(wanted.strip().lower())
        if hit is None:
            raise InputError(
                source,
                f"missing column '{wanted}' ({what})",
                expected=f"one of the columns {', '.join(n.strip() for n in names) or 'none'}",
            )
        return hit
    for c in candidates:
        if c in lower:
            return lower[c]
    if required:
        raise InputError(
            source,
            f"no {what} column",
            expected=f"a column named {' / '.join(candidates)} (or name it with an option); found {', '.join(n.strip() for n in names) or 'none'}",
        )
    return None


def _read_table(path: Path, source: str, options: GpsOptions | None = None, data: Any = None) -> pa.Table:
    """A GPS file as an Arrow table; ``data``: a file object holding the CSV instead of ``path``
    (header line included: a byte range of a big CSV, read by one task of the Dask path)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(source, f"cannot be read as Parquet: {exc}") from exc
    if suffix not in (".csv", ".txt", ".gz"):
        raise InputError(source, f"unknown file type '{suffix}'", expected="a .csv or .parquet file")
    import pyarrow.csv as pacsv

    names = read_csv_header(path, source, "fix")
    stripped = [n.strip() for n in names]
    mapped = {c.strip().lower() for c in (options.user_col, options.time_col, options.date_col) if c} if options else set()
    text = {n: pa.string() for n in stripped if n.lower() in (*_USER_NAMES, *_TIME_NAMES, "date", *mapped)}
    try:
        return pacsv.read_csv(
            path if data is None else data,
            read_options=pacsv.ReadOptions(column_names=stripped, skip_rows=1, block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(column_types=text, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(source, f"cannot be read as CSV: {exc}") from exc


def _degrees(col: pa.ChunkedArray, source: str, column: str, limit: float) -> np.ndarray:
    expected = f"a number of degrees between -{limit:g} and {limit:g}"
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        values = np.where(np.asarray(col.is_null().to_numpy(zero_copy_only=False)), np.nan, values) if col.null_count else values
    else:
        text = col.cast(pa.string()).to_pandas()
        values = pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad(source, column, np.isnan(values), col, "not a number", expected)
    _bad(source, column, np.abs(values) > limit, col, "out of range", expected)
    return values


_EPOCH_RE = r"^[+-]?[0-9]{1,15}(\.[0-9]*)?$"


def _times(table: pa.Table, time_col: str, date_col: str | None, source: str, tz: str) -> tuple[np.ndarray, str]:
    """UTC seconds of every row, and how the column was read (for the report)."""
    col = table[time_col]
    label = f"{date_col}' + '{time_col}" if date_col else time_col
    if col.null_count:
        _bad(source, label, col.is_null().to_numpy(zero_copy_only=False), col, "empty time", "a date and time")
    typ = col.type
    if date_col is None and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        sec = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        _bad(source, label, ~np.isfinite(sec), col, "not a time", "epoch seconds")
        if np.nanmax(np.abs(sec)) > 1e11:
            return sec / 1000.0, "epoch milliseconds"
        return sec, "epoch seconds"
    if pa.types.is_timestamp(typ) and date_col is None:
        ns = col.cast(pa.timestamp("ns", tz=typ.tz)) if typ.tz else col.cast(pa.timestamp("ns"))
        if typ.tz:
            return ns.cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e9, f"timestamps ({typ.tz})"
        local = pd.DatetimeIndex(ns.to_numpy(zero_copy_only=False))
        return _localise(local, tz), f"local timestamps ({tz})"
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    if date_col is None and len(text) and pc.all(pc.match_substring_regex(text, _EPOCH_RE)).as_py():
        # A CSV is read as text: a column of bare numbers is epoch seconds (or milliseconds), as documented.
        sec = text.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if np.nanmax(np.abs(sec)) > 1e11:
            return sec / 1000.0, "epoch milliseconds"
        return sec, "epoch seconds"
    if date_col is not None:
        date = pc.utf8_trim_whitespace(table[date_col].cast(pa.string()))
        if date.null_count:
            _bad(
                source,
                date_col,
                date.is_null().to_numpy(zero_copy_only=False),
                date,
                "empty date",
                "a date YYYY-MM-DD or YYYY/MM/DD",
            )
        text = pc.binary_join_element_wise(date, text, " ")
    has_offset = pc.match_substring_regex(text, _OFFSET_RE).to_numpy(zero_copy_only=False)
    out = np.empty(len(text), dtype=np.float64)
    for aware in (False, True):
        rows = np.flatnonzero(has_offset == aware)
        if rows.size == 0:
            continue
        part = text.take(pa.array(rows)) if rows.size != len(text) else text
        values = _cast_times(part, aware, tz)
        if values is None:
            parsed = pd.to_datetime(
                pd.Series(_normalise_dates(part).to_numpy(zero_copy_only=False)), format="ISO8601", errors="coerce", utc=aware
            )
            bad = np.zeros(len(text), dtype=bool)
            bad[rows[parsed.isna().to_numpy()]] = True
            _bad(
                source,
                label,
                bad,
                col if date_col is None else text,
                "not a date and time",
                "ISO 8601 such as 2021-04-01 08:15:00 or 2021-04-01T08:15:00+09:00, or epoch seconds",
            )
            values = (
                parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
                if aware
                else _localise(pd.DatetimeIndex(parsed), tz)
            )
        out[rows] = values
    return out, "text" + (f" (local {tz} where no offset)" if not has_offset.all() else "")


def _normalise_dates(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """``2016/10/7 9:05:00`` -> ``2016-10-07 09:05:00`` (slashes and unpadded fields)."""
    text = pc.replace_substring_regex(text, r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})", r"\1-\2-\3")
    text = pc.replace_substring_regex(text, r"^(\d{4})-(\d)-", r"\1-0\2-")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2})-(\d)([ T]|$)", r"\1-0\2\3")
    return pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2}[ T])(\d):", r"\10\2:")


def _cast_times(part: pa.ChunkedArray, aware: bool, tz: str) -> np.ndarray | None:
    """Arrow's fast ISO 8601 cast, retried once on normalised dates; ``None`` when some row still fails."""
    for attempt in range(2):
        try:
            if aware:
                return part.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e9
            return _localise(pd.DatetimeIndex(part.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False)), tz)
        except pa.ArrowInvalid:
            if attempt == 0:
                part = _normalise_dates(part)
    return None


def _localise(local: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Seconds since 1970 UTC of naive local times in ``tz`` (DST gaps move forward, repeated hours read as standard time)."""
    try:
        aware = local.tz_localize(tz, ambiguous=np.zeros(len(local), dtype=bool), nonexistent="shift_forward")
    except Exception as exc:  # zoneinfo raises several kinds for an unknown zone
        raise InputError("time zone", f"unknown time zone {tz!r}", expected="an IANA zone such as Asia/Tokyo or UTC") from exc
    return aware.asi8 / 1e9


def _check_tz(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError("time zone", f"unknown time zone {tz!r}", expected="an IANA zone such as Asia/Tokyo or UTC") from exc


def fixes_from_table(table: pa.Table, source: str, options: GpsOptions = GpsOptions(), default_user: str | None = None) -> dict:
    """Validate one table of fixes; return plain arrays (``user`` labels, ``t``, ``lat``, ``lon``, ``off``) and notes.

    Raises:
        InputError: naming ``source``, the column and the first offending rows.
    """
    names = list(table.column_names)
    if table.num_rows == 0:
        raise InputError(source, "has a header but no fixes", expected="at least one fix row")
    o = options
    time_col = _find(names, o.time_col, _TIME_NAMES, "time", source)
    date_col = _find(names, o.date_col, ("date",), "date", source, required=False)
    if date_col == time_col:
        date_col = None
    lat_col = _find(names, o.lat_col, _LAT_NAMES, "latitude", source)
    lon_col = _find(names, o.lon_col, _LON_NAMES, "longitude", source)
    user_col = _find(names, o.user_col, _USER_NAMES, "user", source, required=default_user is None)
    # Every column is checked before anything is raised: one error names all failing columns.
    bag = ProblemCollector(source)
    timed = bag.run(_times, table, time_col, date_col, source, o.tz)
    lat = bag.run(_degrees, table[lat_col], source, lat_col, 90.0)
    lon = bag.run(_degrees, table[lon_col], source, lon_col, 180.0)
    if user_col is not None:
        ucol = table[user_col]
        if ucol.null_count:
            bag.run(_bad, source, user_col, ucol.is_null().to_numpy(zero_copy_only=False), ucol, "empty user id", "a user id")
    bag.raise_if_any()
    assert timed is not None and lat is not None and lon is not None
    t, how = timed
    if user_col is not None:
        users = table[user_col].cast(pa.string())
    else:
        users = pa.chunked_array([pa.array([default_user] * table.num_rows, pa.string())]) if table.num_rows else None
    off = np.zeros(table.num_rows, dtype=bool)
    off_col = None
    if o.off_col == "auto":
        cand = _find(names, None, ("type",), "marker", source, required=False)
        if cand is not None and (pa.types.is_integer(table[cand].type)):
            vals = table[cand].to_numpy(zero_copy_only=False)
            if np.isin(vals, (0, -2, -4)).all():
                off_col = cand
    elif o.off_col:
        off_col = _find(names, o.off_col, (), "logger marker", source)
    if off_col is not None:
        vals = pd.to_numeric(table[off_col].to_pandas(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        off = np.isin(vals, np.asarray(o.off_values, dtype=np.float64))
    return {
        "user": users,
        "t": t,
        "lat": lat,
        "lon": lon,
        "off": off,
        "columns": {
            "user": user_col or f"(file name: {default_user})",
            "time": (f"{date_col} + " if date_col else "") + time_col,
            "lat": lat_col,
            "lon": lon_col,
            "marker": off_col,
        },
        "time_format": how,
    }


def gps_files(paths: list[str | Path]) -> list[Path]:
    """Files given directly, plus the CSV / Parquet files inside given folders (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in GPS_SUFFIXES and not f.name.startswith(".")
            )
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(str(p), "no such file or folder")
    if not out:
        raise InputError(", ".join(map(str, paths)), "no GPS files found", expected="CSV or Parquet files of fixes")
    return out


def read_fixes(paths: Sequence[str | Path] | str | Path, options: GpsOptions = GpsOptions()) -> Fixes:
    """Read, validate and clean fixes from CSV / Parquet files (a file without a user column is one person, named by the file).

    Raises:
        InputError: for a missing column, an empty file, an unparseable time or a coordinate out of range.
    """
    _check_tz(options.tz)
    files = gps_files([paths] if isinstance(paths, (str, Path)) else list(paths))
    parts = []
    for f in files:
        if f.stat().st_size == 0:
            raise InputError(f.name, "the file is empty", expected="a header line and at least one fix")
        parts.append(fixes_from_table(_read_table(f, f.name, options), f.name, options, default_user=f.stem))
    return _combine(parts, options, files=[f.name for f in files])


def fixes_from_frame(
    frame: pd.DataFrame, options: GpsOptions = GpsOptions(), source: str = "<DataFrame>", default_user: str | None = None
) -> Fixes:
    """Validate and clean fixes held in a DataFrame."""
    _check_tz(options.tz)
    return _combine(
        [fixes_from_table(pa.Table.from_pandas(frame, preserve_index=False), source, options, default_user)],
        options,
        files=[source],
    )


def _combine(parts: list[dict], options: GpsOptions, files: list[str]) -> Fixes:
    users = pa.chunked_array([c for p in parts for c in p["user"].chunks], type=pa.string())
    enc = pc.dictionary_encode(users).combine_chunks()
    user = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    names = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "lat", "lon", "off")}
    report = {
        "files": files,
        "fixes_read": int(len(user)),
        "columns": parts[0]["columns"],
        "time_format": parts[0]["time_format"],
    }
    return clean_fixes(names, user, cat["t"], cat["lat"], cat["lon"], cat["off"], options.max_speed, report)


def _metres(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance (haversine), metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def clean_fixes(
    users: np.ndarray,
    user: np.ndarray,
    t: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    off: np.ndarray,
    max_speed: float = 100.0,
    report: dict | None = None,
) -> Fixes:
    """Sort by person and time, drop duplicates, (0, 0) fixes and single-fix speed spikes."""
    report = dict(report or {})
    n0 = len(t)
    island = (lat == 0) & (lon == 0)
    if island.any():
        keep = ~island
        user, t, lat, lon, off = user[keep], t[keep], lat[keep], lon[keep], off[keep]
    report["dropped_null_island"] = int(island.sum())
    if len(t) and not _is_sorted(user, t):
        order = np.lexsort((t, user))
        user, t, lat, lon, off = user[order], t[order], lat[order], lon[order], off[order]
    dup = np.zeros(len(t), dtype=bool)
    if len(t) > 1:
        dup[1:] = (user[1:] == user[:-1]) & (t[1:] == t[:-1])
        if dup.any():
            # A duplicate of a power-off fix keeps the marker on the row that stays.
            prev_off = np.flatnonzero(dup & off)
            keep_idx = np.flatnonzero(~dup)
            if prev_off.size:
                owner = np.searchsorted(keep_idx, prev_off, side="right") - 1
                off = off.copy()
                off[keep_idx[owner]] = True
            user, t, lat, lon, off = user[~dup], t[~dup], lat[~dup], lon[~dup], off[~dup]
    report["dropped_duplicates"] = int(dup.sum())
    spikes = np.zeros(len(t), dtype=bool)
    if len(t) > 2 and max_speed:
        same = (user[1:] == user[:-1]) & ~off[:-1]
        dt = np.maximum(t[1:] - t[:-1], 1.0)
        speed = _metres(lat[:-1], lon[:-1], lat[1:], lon[1:]) / dt
        fast = same & (speed > max_speed)
        spikes[1:-1] = fast[:-1] & fast[1:]
        if spikes.any():
            user, t, lat, lon, off = user[~spikes], t[~spikes], lat[~spikes], lon[~spikes], off[~spikes]
    report["dropped_spikes"] = int(spikes.sum())
    report["fixes"] = int(len(t))
    report["users"] = int(len(np.unique(user))) if len(user) else 0
    assert report["fixes"] == n0 - report["dropped_null_island"] - report["dropped_duplicates"] - report["dropped_spikes"]
    return Fixes(users, user.astype(np.int32), t, lat, lon, off, report)


def _is_sorted(user: np.ndarray, t: np.ndarray) -> bool:
    du = np.diff(user.astype(np.int64))
    return bool((du >= 0).all() and ((du != 0) | (np.diff(t) >= 0)).all())


# ---------------------------------------------------------------- stay detection


def _scan_python(  # pragma: no cover - compiled by numba; kept plain for the baseline
    brk: np.ndarray, t: np.ndarray, phi: np.ndarray, lam: np.ndarray, coslat: np.ndarray, d2max: float, tmin: float
) -> tuple[np.ndarray, np.ndarray]:
    n = t.shape[0]
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    m = 0
    i = 0
    while i < n:
        j = i + 1
        while j < n and not brk[j]:
            dy = phi[j] - phi[i]
            dx = (lam[j] - lam[i]) * coslat[i]
            if dx * dx + dy * dy > d2max:
                break
            j += 1
        if j - 1 > i and t[j - 1] - t[i] >= tmin:
            first[m] = i
            last[m] = j - 1
            m += 1
            i = j
        else:
            i += 1
    return first[:m], last[:m]


_SCAN: list[Callable[..., tuple[np.ndarray, np.ndarray]]] = []


def _scan() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    if not _SCAN:
        from numba import njit

        _SCAN.append(njit(cache=True, nogil=True)(_scan_python))
    return _SCAN[0]


def segment_starts(fixes: Fixes, max_gap_minutes: float | None = None) -> np.ndarray:
    """Where a new run must start: a new person, after a logger power-off, or after a long gap."""
    n = len(fixes)
    brk = np.ones(n, dtype=bool)
    if n > 1:
        brk[1:] = (fixes.user[1:] != fixes.user[:-1]) | fixes.off[:-1]
        if max_gap_minutes is not None:
            brk[1:] |= (fixes.t[1:] - fixes.t[:-1]) > max_gap_minutes * 60.0
    return brk


def detect_stays(
    fixes: Fixes, distance_m: float = 100.0, min_minutes: float = 5.0, max_gap_minutes: float | None = None, compiled: bool = True
) -> StayPoints:
    """Find the stays in cleaned fixes (see the module docstring for the rule).

    Args:
        compiled: run the numba-compiled scan (``False``: the same loop in plain Python, for baselines).
    """
    if not distance_m > 0 or not min_minutes >= 0:
        raise InputError(
            "stay rule",
            f"distance {distance_m} m, minimum duration {min_minutes} min",
            expected="a distance > 0 and a duration >= 0",
        )
    brk = segment_starts(fixes, max_gap_minutes)
    phi = np.radians(fixes.lat)
    lam = np.radians(fixes.lon)
    d2max = (distance_m / EARTH_RADIUS_M) ** 2
    scan = _scan() if compiled else _scan_python
    first, last = scan(brk, fixes.t, phi, lam, np.cos(phi), d2max, float(min_minutes) * 60.0)
    n = last - first + 1
    lat = stay_means(fixes.lat, first, last)
    lon = stay_means(fixes.lon, first, last)
    return StayPoints(first, last, fixes.user[first], fixes.t[first], fixes.t[last], lat, lon, n.astype(np.int64))


def stay_means(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Mean of ``values[first[k]:last[k] + 1]`` for every stay ``k`` (ranges ascending, not overlapping).

    Each mean is summed from the stay's own fixes only, as offsets from its first fix, so it comes
    out bit for bit the same whatever other fixes share the array (one partition of people on a
    cluster, or the whole dataset on one machine).
    """
    if len(first) == 0:
        return np.zeros(0, dtype=np.float64)
    n = last - first + 1
    starts = np.r_[0, np.cumsum(n)[:-1]]
    # Index of every fix inside a stay, stay after stay.
    idx = np.repeat(first - starts, n) + np.arange(int(n.sum()))
    base = values[first]
    sums = np.add.reduceat(values[idx] - np.repeat(base, n), starts)
    return base + sums / n


def stay_table(
    fixes: Fixes, stays: StayPoints, tz: str = knobs.TIME_ZONE.default, country: str = knobs.COUNTRY.default
) -> pd.DataFrame:
    """The SPEC §1 stay schema plus ``user_id``, ``lat``, ``lon``, ``code_50m``, ``code_250m`` and local ``arrival`` / ``departure``.

    ``stay_time`` is whole minutes (last - first fix, rounded down); weekday, arrival time and
    holiday are those of the arrival in local time (a stay over midnight counts on its first day).
    """
    _check_tz(tz)
    ns = (stays.arrival * 1e9).astype(np.int64)
    local = pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(tz).tz_localize(None)
    local_ns = local.asi8
    day = local_ns // 86_400_000_000_000
    minute = (local_ns - day * 86_400_000_000_000) // 60_000_000_000
    dep_local = (
        pd.DatetimeIndex(pd.to_datetime((stays.departure * 1e9).astype(np.int64), utc=True)).tz_convert(tz).tz_localize(None)
    )
    return pd.DataFrame(
        {
            STAY_TIME: np.floor((stays.departure - stays.arrival) / 60.0).astype(np.int64),
            DAY_OF_WEEK: calendar.weekday_names(day),
            ARRIVAL_TIME: _HHMM[minute],
            IS_HOLIDAY: calendar.is_holiday(day, country),
            USER_ID: fixes.users[stays.user],
            "lat": stays.lat,
            "lon": stays.lon,
            "code_50m": latlon_to_code(stays.lat, stays.lon, 50),
            "code_250m": latlon_to_code(stays.lat, stays.lon, 250),
            "arrival": local,
            "departure": dep_local,
            "n_fixes": stays.n_fixes,
        }
    )


def gps_to_stays(paths: Sequence[str | Path] | str | Path, options: GpsOptions = GpsOptions()) -> tuple[pd.DataFrame, dict]:
    """Read fixes, detect stays and return the stay table with a report (plain data)."""
    fixes = read_fixes(paths, options)
    stays = detect_stays(fixes, options.distance_m, options.min_minutes, options.max_gap_minutes)
    table = stay_table(fixes, stays, options.tz, options.country)
    report = dict(fixes.report)
    report.update(
        {
            "stays": int(len(table)),
            "users_with_stays": int(table[USER_ID].nunique()),
            "first_arrival": str(table["arrival"].min()) if len(table) else None,
            "last_departure": str(table["departure"].max()) if len(table) else None,
            "distance_m": options.distance_m,
            "min_minutes": options.min_minutes,
            "tz": options.tz,
            "country": options.country,
        }
    )
    return table, report


def looks_like_gps(columns: list[str]) -> bool:
    """Whether a table's columns look like raw fixes (time, latitude, longitude) rather than stays."""
    low = {c.strip().lower() for c in columns}
    return bool(low & set(_LAT_NAMES)) and bool(low & set(_LON_NAMES)) and bool(low & set(_TIME_NAMES)) and "stay_time" not in low


def read_columns(path: str | Path) -> list[str]:
    """Column names of a CSV or Parquet file (header only)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(path.name, f"cannot be read as Parquet: {exc}") from exc
    if path.stat().st_size == 0:
        raise InputError(path.name, "the file is empty", expected="a header line and at least one row")
    return [h.strip() for h in read_csv_header(path, path.name, "row")]
