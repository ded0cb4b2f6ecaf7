"""JIS X 0410 regional mesh codes, vectorised (SPEC §8).

Every cell is handled through integer indices on the 50 m grid: ``i = floor(lat * 2400)`` (1.5"
of latitude) and ``j = floor((lon - 100) * 1600)`` (2.25" of longitude). A 1 km cell is 20 x 20
of these, 500 m is 10 x 10, 250 m is 5 x 5, 100 m is 2 x 2 and 50 m is 1 x 1, so every conversion is
exact integer arithmetic and round trips never suffer from float floors.

Sizes and code lengths: 1000 m -> 8 digits, 500 m -> 9, 250 m -> 10, 50 m (OpenUAS) -> 12.
100 m codes also have 10 digits; a bare 10-digit code is read as 250 m, as OpenUAS does, so keep the
mesh size beside every code when 100 m codes are in play.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError, ParameterError

LAT_UNITS = 2400  # 50 m cells per degree of latitude
LON_UNITS = 1600  # 50 m cells per degree of longitude
# Cell extent in 50 m units, and code length in digits, per mesh size in metres.
EXTENT = {1000: 20, 500: 10, 250: 5, 100: 2, 50: 1}
DIGITS = {1000: 8, 500: 9, 250: 10, 100: 10, 50: 12}
SIZE_OF_DIGITS = {8: 1000, 9: 500, 10: 250, 12: 50}
# The same, as look-up tables indexed by the size in metres (vectorised decoding).
_DIGITS_LUT = np.zeros(1001, dtype=np.int64)
_EXTENT_LUT = np.zeros(1001, dtype=np.int64)
for _size in EXTENT:
    _DIGITS_LUT[_size], _EXTENT_LUT[_size] = DIGITS[_size], EXTENT[_size]
# Offset added before the floor so that a cell's own south-west corner maps into that cell
# (1e-6 of a 50 m cell is 0.05 mm).
_EPS = 1e-6


@dataclass(frozen=True)
class MeshCells:
    """Meshes as integer cells on the 50 m grid: south-west index and extent (all arrays)."""

    i: np.ndarray  # latitude index of the south-west 50 m cell
    j: np.ndarray  # longitude index of the south-west 50 m cell
    extent: np.ndarray  # cells per side (20, 10, 5, 2 or 1)


def _check_size(size: int) -> int:
    if size not in EXTENT:
        raise ParameterError(f"mesh size {size!r} is not one of {sorted(EXTENT)} (metres)")
    return int(size)


def latlon_to_cells(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the 50 m grid indices ``(i, j)`` of points."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    i = np.floor(lat * LAT_UNITS + _EPS).astype(np.int64)
    j = np.floor((lon - 100.0) * LON_UNITS + _EPS).astype(np.int64)
    return i, j


def cells_to_code(i: np.ndarray, j: np.ndarray, size: int | np.ndarray) -> np.ndarray:
    """Compose mesh codes of the given size(s) for the 50 m cells ``(i, j)``."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    size_arr = np.broadcast_to(np.asarray(size, dtype=np.int64), np.broadcast(i, j).shape)
    p, ir = np.divmod(i, 1600)
    u, jr = np.divmod(j, 1600)
    q, ir = np.divmod(ir, 200)
    v, jr = np.divmod(jr, 200)
    r, ir = np.divmod(ir, 20)
    w, jr = np.divmod(jr, 20)
    km = p * 1_000_000 + u * 10_000 + q * 1000 + v * 100 + r * 10 + w
    half_i, half_j = ir // 10, jr // 10
    quarter_i, quarter_j = (ir % 10) // 5, (jr % 10) // 5
    d500 = 2 * half_i + half_j + 1
    d250 = 2 * quarter_i + quarter_j + 1
    s, x = np.divmod(ir, 2)
    t, y = np.divmod(jr, 2)
    out = np.full(size_arr.shape, -1, dtype=np.int64)
    for sz, code in (
        (1000, km),
        (500, km * 10 + d500),
        (250, km * 100 + d500 * 10 + d250),
        (100, km * 100 + s * 10 + t),
        (50, km * 10_000 + s * 1000 + t * 100 + x * 10 + y),
    ):
        sel = size_arr == sz
        if sel.any():
            out[sel] = np.broadcast_to(code, out.shape)[sel]
    if (out < 0).any():
        bad = np.unique(size_arr[out < 0])
        raise ParameterError(f"mesh size(s) {bad.tolist()} not one of {sorted(EXTENT)}")
    return out


def latlon_to_code(lat: np.ndarray, lon: np.ndarray, size: int = 50) -> np.ndarray:
    """Mesh codes (int64) of the given size containing the points ``(lat, lon)`` in degrees."""
    _check_size(size)
    i, j = latlon_to_cells(lat, lon)
    return cells_to_code(i, j, size)


def n_digits(codes: np.ndarray) -> np.ndarray:
    """Number of decimal digits of positive integer codes (0 for values <= 0)."""
    codes = np.asarray(codes, dtype=np.int64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for k in range(1, 19):
        out += codes >= 10 ** (k - 1)
    return out


def infer_sizes(codes: np.ndarray) -> np.ndarray:
    """Mesh size in metres from the code length (10 digits -> 250 m); -1 where unknown."""
    nd = n_digits(codes)
    out = np.full(nd.shape, -1, dtype=np.int64)
    for digits, size in SIZE_OF_DIGITS.items():
        out[nd == digits] = size
    return out


def invalid_codes(codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boolean mask of codes that are not well-formed codes of their size."""
    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.broadcast_to(np.asarray(sizes, dtype=np.int64), codes.shape)
    bad = np.ones(codes.shape, dtype=bool)
    for size, digits in DIGITS.items():
        sel = (sizes == size) & (n_digits(codes) == digits)
        if not sel.any():
            continue
        c = codes[sel]
        km = c // 10 ** (digits - 8)
        rest = c % 10 ** (digits - 8)
        q, v, r, w = (km // 1000) % 10, (km // 100) % 10, (km // 10) % 10, km % 10
        # First level: latitude p / 1.5 and longitude 100 + u; u >= 80 would be east of 180 deg (not on Earth).
        ok = (q <= 7) & (v <= 7) & (km // 10_000 >= 1000) & ((km // 10_000) % 100 < 80)
        del r, w  # 0..9 always valid
        if size == 500:
            ok &= (rest >= 1) & (rest <= 4)
        elif size == 250:
            ok &= (rest // 10 >= 1) & (rest // 10 <= 4) & (rest % 10 >= 1) & (rest % 10 <= 4)
        elif size == 50:
            ok &= ((rest // 10) % 10 <= 1) & (rest % 10 <= 1)
        bad[sel] = ~ok
    return bad


# Japan's first-level meshes (lat 20..46 deg, lon 122..154 deg): codes outside are legal but suspicious.
JAPAN_FIRST_LEVEL = (30, 69, 22, 54)  # p from, p to (exclusive), u from, u to (exclusive)


class OutsideJapanWarning(UserWarning):
    """Mesh codes that decode to a place on Earth but outside Japan's mesh range."""


def outside_japan(codes: np.ndarray, sizes: np.ndarray | int | None = None) -> np.ndarray:
    """Mask of well-formed codes whose first-level mesh lies outside Japan's range (:data:`JAPAN_FIRST_LEVEL`)."""
    codes = np.asarray(codes, dtype=np.int64)
    sizes = infer_sizes(codes) if sizes is None else np.broadcast_to(np.asarray(sizes, np.int64), codes.shape)
    km = codes // 10 ** (_DIGITS_LUT[sizes] - 8)
    p, u = km // 1_000_000, (km // 10_000) % 100
    p0, p1, u0, u1 = JAPAN_FIRST_LEVEL
    return (p < p0) | (p >= p1) | (u < u0) | (u >= u1)


def code_to_cells(codes: np.ndarray, sizes: np.ndarray | int | None = None) -> MeshCells:
    """Decode mesh codes to their south-west 50 m cell and extent.

    Args:
        codes: integer mesh codes.
        sizes: mesh size(s) in metres; inferred from the code length when omitted.

    Raises:
        ValueError: when a code is malformed for its size.
    """
    codes = np.asarray(codes, dtype=np.int64)
    sizes = infer_sizes(codes) if sizes is None else np.broadcast_to(np.asarray(sizes, np.int64), codes.shape)
    bad = invalid_codes(codes, sizes)
    if bad.any():
        first = np.flatnonzero(bad)[:5]
        raise ParameterError(
            f"{int(bad.sum())} malformed mesh codes, e.g. {codes.ravel()[first].tolist()} "
            f"(sizes {np.asarray(sizes).ravel()[first].tolist()})"
        )
    digits = _DIGITS_LUT[sizes]
    scale = 10 ** (digits - 8)
    km, rest = np.divmod(codes, scale)
    p, u = km // 1_000_000, (km // 10_000) % 100
    q, v, r, w = (km // 1000) % 10, (km // 100) % 10, (km // 10) % 10, km % 10
    i = p * 1600 + q * 200 + r * 20
    j = u * 1600 + v * 200 + w * 20
    a, b = rest // 10, rest % 10  # 250 m: 500 m quadrant, 250 m quadrant
    is500, is250, is100, is50 = sizes == 500, sizes == 250, sizes == 100, sizes == 50
    i = i + np.where(is500, ((rest - 1) // 2) * 10, 0) + np.where(is250, ((a - 1) // 2) * 10 + ((b - 1) // 2) * 5, 0)
    j = j + np.where(is500, ((rest - 1) % 2) * 10, 0) + np.where(is250, ((a - 1) % 2) * 10 + ((b - 1) % 2) * 5, 0)
    i = i + np.where(is100, a * 2, 0) + np.where(is50, ((rest // 1000) % 10) * 2 + (rest // 10) % 10, 0)
    j = j + np.where(is100, b * 2, 0) + np.where(is50, ((rest // 100) % 10) * 2 + rest % 10, 0)
    extent = _EXTENT_LUT[sizes]
    return MeshCells(i=i, j=j, extent=extent)


def code_bounds(
    codes: np.ndarray, sizes: np.ndarray | int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(south, west, north, east)`` in degrees of each mesh."""
    cells = code_to_cells(codes, sizes)
    south = cells.i / LAT_UNITS
    north = (cells.i + cells.extent) / LAT_UNITS
    west = 100.0 + cells.j / LON_UNITS
    east = 100.0 + (cells.j + cells.extent) / LON_UNITS
    return south, west, north, east


def code_centers(codes: np.ndarray, sizes: np.ndarray | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(lat, lon)`` of each mesh centre in degrees."""
    s, w, n, e = code_bounds(codes, sizes)
    return (s + n) / 2.0, (w + e) / 2.0


def parent_code(codes: np.ndarray, sizes: np.ndarray | int, parent_size: int) -> np.ndarray:
    """Code of the ``parent_size`` mesh containing each mesh (e.g. the 250 m mesh of a 50 m one)."""
    cells = code_to_cells(codes, sizes)
    if (EXTENT[parent_size] < cells.extent).any():
        raise ParameterError(f"a {parent_size} m mesh cannot contain larger meshes")
    return cells_to_code(cells.i, cells.j, parent_size)


def parse_code_column(
    values: np.ndarray, source: str, column: str, sizes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a column of mesh codes (integers or digit strings) and return codes and sizes.

    Raises:
        InputError: naming the first malformed rows.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        codes = arr.astype(np.int64)
        bad = codes <= 0
    elif arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        codes = np.where(finite, arr, 0).astype(np.int64)
        bad = ~finite | (codes != np.where(finite, arr, 0)) | (codes <= 0)
    else:
        text = arr.astype(str)
        isdigit = np.char.isdigit(text)
        lengths = np.char.str_len(text)
        bad = ~isdigit | (lengths > 18) | (lengths == 0)
        codes = np.zeros(arr.shape, dtype=np.int64)
        codes[~bad] = text[~bad].astype(np.int64)
    inferred = infer_sizes(codes) if sizes is None else np.asarray(sizes, dtype=np.int64)
    bad = bad | (inferred < 0)
    bad[~bad] = invalid_codes(codes[~bad], inferred[~bad])
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            source,
            "malformed mesh code",
            column=column,
            rows=(rows[:5] + 1).tolist(),
            values=[arr[r].item() if hasattr(arr[r], "item") else arr[r] for r in rows[:5]],
            n_bad=len(rows),
            expected="a JIS mesh code of 10 digits (250 m) or 12 digits (50 m), "
            "or 8 (1 km) / 9 (500 m), with valid digits for each level and a place on Earth (digits 3-4 below 80)",
        )
    far = outside_japan(codes, inferred)
    if far.any():
        import warnings

        rows = np.flatnonzero(far)
        warnings.warn(
            f"{source} column '{column}': {len(rows):,} mesh code{'s' if len(rows) > 1 else ''} outside Japan's mesh range "
            f"(row{'s' if len(rows) > 1 else ''} {', '.join(str(r + 1) for r in rows[:5])}: {', '.join(str(int(codes[r])) for r in rows[:5])}); "
            "JIS mesh codes are defined for Japan (lat 20-46, lon 122-154)",
            OutsideJapanWarning,
            stacklevel=2,
        )
    return codes, inferred
