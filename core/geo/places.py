"""Places a release knows by name, and what a search box's text asks for.

A release may hold ``places.csv`` at its root (``name, kind, city, lat, lon``): the demo release
writes its cities' named districts and stations there. Any release's city centres are places too
(:data:`core.release.layout.CITY_CENTRES`), so a real OpenUAS archive can be searched by city.

:func:`parse_query` reads what a person typed: a mesh code (``523657929010``), a point
(``35.17, 136.91``; ``136.91, 35.17`` is read as lon, lat when only that order is valid), or a
place name; :func:`find_places` ranks the known places for a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from core.atomic import write_text_atomic
from core.geo.meshcode import SIZE_OF_DIGITS, infer_sizes, invalid_codes

PLACES_FILE = "places.csv"
PLACE_COLUMNS = ("name", "kind", "city", "lat", "lon")


def empty_places() -> pd.DataFrame:
    """A place table without rows."""
    types = {"name": str, "kind": str, "city": str, "lat": float, "lon": float}
    return pd.DataFrame({col: pd.Series(dtype=t) for col, t in types.items()})


def read_places(release_root: str | Path) -> pd.DataFrame:
    """The named places of a release (``places.csv`` at its root); no rows when it has none.

    Rows without a name or with coordinates outside the globe are left out (the file is data, not
    code: a hand-edited one must not break the map).
    """
    path = Path(release_root) / PLACES_FILE
    if not path.is_file():
        return empty_places()
    try:
        frame = pd.read_csv(path, dtype={"name": str, "kind": str, "city": str})
    except (OSError, ValueError, pd.errors.ParserError):
        return empty_places()
    if not {"name", "lat", "lon"} <= set(frame.columns):
        return empty_places()
    for col in ("kind", "city"):
        if col not in frame.columns:
            frame[col] = ""
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    name = frame["name"].fillna("").astype(str).str.strip()
    ok = (name != "") & lat.between(-90, 90) & lon.between(-180, 180)
    out = pd.DataFrame(
        {
            "name": name[ok],
            "kind": frame["kind"].fillna("").astype(str)[ok],
            "city": frame["city"].fillna("").astype(str)[ok],
            "lat": lat[ok].astype(float),
            "lon": lon[ok].astype(float),
        }
    )
    return out.reset_index(drop=True)


def write_places(release_root: str | Path, places: pd.DataFrame) -> Path:
    """Write a release's ``places.csv`` (atomically)."""
    path = Path(release_root) / PLACES_FILE
    write_text_atomic(path, places.loc[:, list(PLACE_COLUMNS)].to_csv(index=False))
    return path


def _norm(text: str) -> str:
    """Lower case, letters and digits only (``"Nishiki 3-chome"`` -> ``"nishiki3chome"``)."""
    return re.sub(r"[\W_]+", "", text.casefold())


def find_places(places: pd.DataFrame, text: str, limit: int = 8) -> pd.DataFrame:
    """Places whose name matches ``text``, best first: exact, then starting with it, then containing it.

    Case, spaces and punctuation are ignored; ties go to the shorter name.
    """
    q = _norm(text)
    if not q or places.empty:
        return places.iloc[:0]
    names = places["name"].astype(str).map(_norm)
    rank = np.select([names == q, names.str.startswith(q), names.str.contains(q, regex=False)], [0, 1, 2], default=-1)
    hit = places.assign(_rank=rank, _len=names.str.len())[rank >= 0]
    return hit.sort_values(["_rank", "_len", "name"], kind="stable").drop(columns=["_rank", "_len"]).head(limit)


@dataclass(frozen=True)
class Query:
    """What a search text asks for.

    Attributes:
        kind: ``code`` (a mesh code), ``point`` (latitude and longitude), ``name`` (a place name),
            ``empty`` (nothing typed) or ``bad`` (looked like a code or a point but is not one).
        text: the text, stripped.
        code, size: the mesh code and its size in metres (``code``).
        lat, lon: the point (``point``).
        error: why a ``bad`` query is not usable, in words.
    """

    kind: Literal["code", "point", "name", "empty", "bad"]
    text: str
    code: int | None = None
    size: int | None = None
    lat: float | None = None
    lon: float | None = None
    error: str = ""


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_POINT = re.compile(rf"^\(?\s*({_NUMBER})\s*°?\s*([NnSs]?)\s*[,;\s]\s*({_NUMBER})\s*°?\s*([EeWw]?)\s*\)?$")


def parse_query(text: object, max_length: int = 200) -> Query:
    """Read a search box's text: a mesh code, ``lat, lon`` or a place name (never raises)."""
    t = str(text if text is not None else "").strip()[:max_length]
    if not t:
        return Query("empty", t)
    digits = re.sub(r"[\s-]", "", t)
    if digits.isdigit():
        if len(digits) not in SIZE_OF_DIGITS:
            lengths = ", ".join(str(n) for n in sorted(SIZE_OF_DIGITS))
            return Query("bad", t, error=f"'{t}' is not a mesh code: it has {len(digits)} digits, expected {lengths}")
        code = int(digits)
        size = int(infer_sizes(np.array([code]))[0])
        if invalid_codes(np.array([code]), np.array([size]))[0]:
            return Query("bad", t, error=f"'{t}' is not a valid {size} m mesh code")
        return Query("code", t, code=code, size=size)
    m = _POINT.match(t)
    if m:
        a = float(m.group(1)) * (-1 if m.group(2) in ("S", "s") else 1)
        b = float(m.group(3)) * (-1 if m.group(4) in ("W", "w") else 1)
        if -90 <= a <= 90 and -180 <= b <= 180:
            return Query("point", t, lat=a, lon=b)
        if -90 <= b <= 90 and -180 <= a <= 180:  # written lon, lat
            return Query("point", t, lat=b, lon=a)
        return Query("bad", t, error=f"'{t}' is not a point: expected latitude (-90 to 90), longitude (-180 to 180)")
    return Query("name", t)
