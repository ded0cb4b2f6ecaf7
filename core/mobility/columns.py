"""Which column of an input file is which: recognised names, or a mapping the user gives.

An input is raw GPS fixes (a person, a time, latitude, longitude) or a stay table (SPEC §1). Both
are recognised by their column names; when the names are not recognised (``id, when, latitude,
longitude``) nothing is guessed silently: :func:`detect_kind` says so, and the user names the
columns with a :class:`ColumnMap` (``--columns time=when,lat=latitude,lon=longitude,user_id=id`` on
the command line, the mapping step in the dashboard). The map travels as one line of text
(:meth:`ColumnMap.spec`), so a training request carries it to its worker process unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.constants import ARRIVAL_TIME, DAY_OF_WEEK, IS_HOLIDAY, MESH_CODE, MESH_ID, MESH_SIZE, STAY_COLUMNS, STAY_TIME
from core.errors import InputError

if TYPE_CHECKING:
    from core.mobility.gps import GpsOptions

GPS = "gps"
STAYS = "stays"
KINDS = (GPS, STAYS)

# Roles of each kind: (role, required, what it holds).
GPS_ROLES: tuple[tuple[str, bool, str], ...] = (
    ("user_id", False, "the person (empty: each file is one person, named by the file)"),
    ("time", True, "time of the fix: ISO 8601 text or epoch seconds"),
    ("date", False, "a separate date column joined before the time"),
    ("lat", True, "latitude in degrees"),
    ("lon", True, "longitude in degrees"),
)
STAY_ROLES: tuple[tuple[str, bool, str], ...] = (
    (STAY_TIME, True, "duration in minutes"),
    (DAY_OF_WEEK, True, "weekday name Monday..Sunday"),
    (ARRIVAL_TIME, True, "arrival time HH:MM"),
    (IS_HOLIDAY, True, "national holiday flag True/False"),
    (MESH_CODE, False, "JIS mesh code (or map mesh_id)"),
    (MESH_ID, False, "integer area id (with a mesh_id -> code mapping file)"),
    (MESH_SIZE, False, "mesh size in metres (optional)"),
)
ROLES = {GPS: GPS_ROLES, STAYS: STAY_ROLES}

_BAD_NAME = re.compile(r"[,=\x00-\x1f]")
MAX_COLUMN_NAME = 200


def roles(kind: str) -> tuple[tuple[str, bool, str], ...]:
    """The roles of ``kind`` (``gps`` or ``stays``)."""
    if kind not in ROLES:
        raise InputError("column mapping", f"unknown kind {kind!r}", expected="gps or stays")
    return ROLES[kind]


def _lower(columns: Iterable[str]) -> dict[str, str]:
    return {c.strip().lower(): c.strip() for c in columns}


def detect_kind(columns: Iterable[str]) -> str | None:
    """``gps`` when the names are a person/time/latitude/longitude set, ``stays`` when any stay column is there, else ``None``.

    A table with latitude and longitude but no recognised time column (``id, when, latitude,
    longitude``) is not taken for a stay table: it is ``None``, and needs a mapping.
    """
    from core.mobility.gps import looks_like_gps

    cols = [c.strip() for c in columns]
    if looks_like_gps(cols):
        return GPS
    if set(cols) & set(STAY_COLUMNS):
        return STAYS
    return None


_GUESS = {
    "user_id": (r"^(user_?id|user|uid|userid|device_?id|id|person|person_?id|agent|traj_?id|name)$", r"id$|user|person|device"),
    "time": (r"^(timestamp|datetime|date_?time|time|t|ts|when|epoch|unixtime)$", r"time|when|stamp|epoch|^ts"),
    "date": (r"^date$", r"^date$"),
    "lat": (r"^(lat|latitude|y)$", r"lat"),
    "lon": (r"^(lon|lng|long|longitude|x)$", r"lon|lng"),
}


def guess(columns: Iterable[str]) -> dict[str, str]:
    """A first suggestion of GPS roles for unrecognised names (the user confirms or changes it)."""
    cols = [c.strip() for c in columns]
    out: dict[str, str] = {}
    for role, (exact, loose) in _GUESS.items():
        hit = next((c for c in cols if re.search(exact, c, re.I) and c not in out.values()), None)
        if hit is None and role != "date":
            hit = next((c for c in cols if re.search(loose, c, re.I) and c not in out.values()), None)
        if hit is not None:
            out[role] = hit
    if out.get("date") == out.get("time"):
        out.pop("date", None)
    return out


@dataclass(frozen=True)
class ColumnMap:
    """The file's column for each role of one kind of input.

    Attributes:
        kind: ``gps`` or ``stays``.
        columns: ``(role, file column)`` pairs, in the order of :data:`ROLES`.
    """

    kind: str
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def make(cls, kind: object, mapping: Mapping[str, object]) -> ColumnMap:
        """A checked map from ``{role: column}`` (empty values are left out).

        Raises:
            InputError: an unknown kind or role, a missing required role, a column used twice or a name with ``,`` / ``=``.
        """
        kind = str(kind or "").strip().lower()
        known = roles(kind)
        names = {r for r, _, _ in known}
        given = {str(r).strip(): str(c).strip() for r, c in mapping.items() if c is not None and str(c).strip()}
        unknown = sorted(set(given) - names)
        if unknown:
            raise InputError(
                "column mapping", f"unknown role {unknown[0]!r} for {kind}", expected=f"roles {', '.join(r for r, _, _ in known)}"
            )
        for role, col in given.items():
            if _BAD_NAME.search(col) or len(col) > MAX_COLUMN_NAME:
                raise InputError(
                    "column mapping",
                    f"column name {col[:40]!r} for {role} cannot be mapped",
                    expected="a column name without ',' or '=' (rename it in the file)",
                )
        missing = [r for r, required, _ in known if required and r not in given]
        if kind == STAYS and MESH_CODE not in given and MESH_ID not in given:
            missing.append(f"{MESH_CODE} or {MESH_ID}")
        if missing:
            raise InputError(
                "column mapping",
                f"no column chosen for {', '.join(missing)}",
                expected=f"a column of the file for each of {', '.join(r for r, req, _ in known if req)}",
            )
        used = list(given.values())
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise InputError("column mapping", f"column {twice[0]!r} is chosen for two roles", expected="one role per column")
        return cls(kind, tuple((r, given[r]) for r, _, _ in known if r in given))

    @classmethod
    def parse(cls, spec: object, kind: str | None = None) -> ColumnMap:
        """A map from its text form ``[kind:]role=column,role=column`` (the kind defaults from the roles).

        Raises:
            InputError: a malformed spec, or one :meth:`make` refuses.
        """
        text = str(spec or "").strip()
        head, sep, rest = text.partition(":")
        if sep and head.strip().lower() in KINDS and "=" not in head:
            kind, text = head.strip().lower(), rest
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            role, eq, col = part.partition("=")
            if not eq or not role.strip() or not col.strip():
                raise InputError(
                    "--columns",
                    f"{part!r} is not role=column",
                    expected="e.g. user_id=id,time=when,lat=latitude,lon=longitude",
                )
            if role.strip() in pairs:
                raise InputError("--columns", f"role {role.strip()!r} is given twice", expected="each role once")
            pairs[role.strip()] = col.strip()
        if not pairs:
            raise InputError("--columns", "is empty", expected="e.g. user_id=id,time=when,lat=latitude,lon=longitude")
        if kind is None:
            kind = STAYS if set(pairs) & {r for r, _, _ in STAY_ROLES} else GPS
        return cls.make(kind, pairs)

    def spec(self) -> str:
        """The text form, ``kind:role=column,...`` (read back by :meth:`parse`)."""
        return f"{self.kind}:" + ",".join(f"{r}={c}" for r, c in self.columns)

    def as_dict(self) -> dict[str, str]:
        """``{role: column}``."""
        return dict(self.columns)

    def check_against(self, file_columns: Iterable[str], source: str) -> None:
        """Every mapped column is a column of the file (names compared without surrounding spaces).

        Raises:
            InputError: naming the first missing column and the file's columns.
        """
        have = [c.strip() for c in file_columns]
        for role, col in self.columns:
            if col not in have:
                raise InputError(
                    source,
                    f"has no column {col!r} (mapped to {role})",
                    expected=f"one of its columns: {', '.join(have) or 'none'}",
                )

    def renames(self) -> dict[str, str]:
        """``{file column: role}`` for a stay table (the columns a reader renames)."""
        return {c: r for r, c in self.columns}

    def gps_options(self, base: GpsOptions) -> GpsOptions:
        """``base`` with the mapped person, time, date, latitude and longitude columns."""
        m = self.as_dict()
        return replace(
            base,
            user_col=m.get("user_id", base.user_col),
            time_col=m.get("time", base.time_col),
            date_col=m.get("date", base.date_col),
            lat_col=m.get("lat", base.lat_col),
            lon_col=m.get("lon", base.lon_col),
        )


def parse_optional(spec: object) -> ColumnMap | None:
    """:meth:`ColumnMap.parse`, or ``None`` for an empty spec."""
    return None if spec in (None, "") else ColumnMap.parse(spec)


class ColumnsNotRecognised(InputError):
    """The file's columns are neither raw GPS nor a stay table: a column mapping is needed.

    Attributes:
        file_columns: the file's column names (what a mapping step offers).
        suggestion: a first guess of GPS roles (:func:`guess`).
    """

    def __init__(self, source: str, file_columns: list[str]) -> None:
        self.file_columns = list(file_columns)
        self.suggestion = guess(file_columns)
        example = ",".join(f"{r}={c}" for r, c in self.suggestion.items()) or "time=...,lat=...,lon=..."
        super().__init__(
            source,
            f"columns not recognised ({', '.join(self.file_columns[:12])}{' ...' if len(self.file_columns) > 12 else ''})",
            expected=(
                "raw GPS (a person, a time, lat, lon) or a stay table (stay_time, day_of_week, arrival_time, is_holiday, code): "
                f"say which column is which, e.g. --columns {example}"
            ),
        )

    def __reduce__(self) -> tuple:
        return (ColumnsNotRecognised, (self.source, self.file_columns))
