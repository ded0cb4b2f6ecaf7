"""Stay tables (SPEC §1): read CSV / Parquet / DataFrames, validate every column, aggregate.

Validation is vectorised: string columns are dictionary-encoded and only their distinct values are
parsed, so 40 M stays cost the same parsing as 1,440 distinct arrival times.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from core.area2vec.tokens import count_matrix, make_tokens
from core.constants import (
    ARRIVAL_TIME,
    COUNT,
    COUNT_COLUMNS,
    DAY_OF_WEEK,
    IS_HOLIDAY,
    MESH_CODE,
    MESH_ID,
    MESH_SIZE,
    N_TOKENS,
    NO_MESH,
    STAY_COLUMNS,
    STAY_TIME,
    TOKEN,
    WEEKDAYS,
)
from core.errors import InputError, InputProblems
from core.geo import meshcode

if TYPE_CHECKING:
    from core.mobility.columns import ColumnMap

_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*$")
_WEEKDAY_LOOKUP = {name.lower(): i for i, name in enumerate(WEEKDAYS)}
_WEEKDAY_LOOKUP.update({name[:3].lower(): i for i, name in enumerate(WEEKDAYS)})
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
_MAX_BAD_SHOWN = 5


@dataclass(frozen=True)
class AreaCounts:
    """Per-area token counts: the input of training and of ApproximationLoss.

    Attributes:
        key_column: ``mesh_id`` or ``code``: the name of the area key in the input.
        keys: area keys (int64), sorted ascending, one per row of ``counts``.
        counts: sparse ``areas x 168`` matrix of stay counts (float32).
        mesh_sizes: mesh size in metres per area (only for ``code`` keys), else ``None``.
    """

    key_column: str
    keys: np.ndarray
    counts: sp.csr_array
    mesh_sizes: np.ndarray | None = None

    @property
    def n_areas(self) -> int:
        return int(self.keys.shape[0])

    @property
    def n_stays(self) -> int:
        return int(round(float(self.counts.sum())))

    def dense(self) -> np.ndarray:
        """Counts as a dense float32 array ``areas x 168``."""
        return np.asarray(self.counts.toarray(), dtype=np.float32)

    def histograms(self) -> np.ndarray:
        """Each area's normalised token histogram ``f_m`` (rows sum to 1)."""
        c = self.dense().astype(np.float64)
        return c / c.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class StayRecords:
    """Validated stays, one entry per stay (stays with ``mesh_id == -1`` already dropped).

    Attributes:
        source: where the stays came from (a file name), used in messages.
        key_column: ``mesh_id`` or ``code``.
        area_keys: the area key of each stay (int64).
        stay_time: minutes (>= 0; integers stay integers, fractions are kept as float64).
        arrival_minute: minutes after midnight of the arrival (int16, 0..1439).
        weekday: 0 = Monday .. 6 = Sunday (int8).
        is_holiday: national holiday flag (bool).
        mesh_sizes: mesh size in metres of each stay's area, for ``code`` keys.
        n_skipped: stays dropped because their ``mesh_id`` was -1.
    """

    source: str
    key_column: str
    area_keys: np.ndarray
    stay_time: np.ndarray
    arrival_minute: np.ndarray
    weekday: np.ndarray
    is_holiday: np.ndarray
    mesh_sizes: np.ndarray | None = None
    n_skipped: int = 0
    _tokens: list = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.area_keys.shape[0])

    def tokens(self) -> np.ndarray:
        """Token 0..167 of each stay (computed once, then kept)."""
        if not self._tokens:
            self._tokens.append(make_tokens(self.stay_time, self.arrival_minute, self.weekday, self.is_holiday))
        return self._tokens[0]

    def area_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(keys, index)``: sorted unique area keys and each stay's row in them."""
        return factorize_keys(self.area_keys)

    def to_counts(self) -> AreaCounts:
        """Aggregate to a sparse ``areas x 168`` count matrix."""
        keys, index = self.area_index()
        sizes = None
        if self.mesh_sizes is not None:
            sizes = np.zeros(len(keys), dtype=np.int64)
            sizes[index] = self.mesh_sizes
        return AreaCounts(self.key_column, keys, count_matrix(index, self.tokens(), len(keys)), sizes)


def factorize_keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and the index of each value in them (int32 where it fits).

    Uses a dense lookup table when the values span a small range (ids), else hashing.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    if span <= max(4 * values.size, 1 << 20):
        shifted = values - lo if lo else values
        present = np.zeros(span, dtype=bool)
        present[shifted] = True
        keys = np.flatnonzero(present).astype(np.int64) + lo
        remap = np.cumsum(present, dtype=np.int32 if span < 2**31 else np.int64) - 1
        index = remap[shifted]
    else:
        index, keys = pd.factorize(values, sort=True)
        keys = np.asarray(keys, dtype=np.int64)
    dtype = np.int32 if len(keys) < 2**31 else np.int64
    return keys, index.astype(dtype)


# ---------------------------------------------------------------- reading


def read_stays(path: str | Path, columns: ColumnMap | None = None) -> StayRecords:
    """Read and validate a stay table from CSV or Parquet.

    The area key is ``mesh_id`` (integer; -1 = no valid mesh, skipped) or ``code`` (JIS mesh code,
    with an optional ``mesh_size`` column). Extra columns are accepted and ignored.

    Args:
        columns: a stay-table :class:`~core.mobility.columns.ColumnMap` naming the file's column of
            each role (for files whose names differ from the schema's).

    Raises:
        InputError: naming the file, column, first offending rows and what was expected.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if path.stat().st_size == 0:
        raise InputError(name, "the file is empty", expected="a header line and at least one stay")
    if columns is not None and columns.kind != "stays":
        raise InputError(name, f"a {columns.kind} column mapping was given for a stay table", expected="a stays mapping")
    renames = columns.renames() if columns is not None else None
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        table = _read_parquet(path, name, renames)
    elif suffix in (".csv", ".txt", ".gz", ".tsv"):
        table = _read_csv(path, name, renames)
    else:
        raise InputError(name, f"unknown file type '{suffix}'", expected="a .csv or .parquet file")
    return validate_table(table, name)


def stays_from_frame(frame: pd.DataFrame, source: str = "<DataFrame>") -> StayRecords:
    """Validate a pandas DataFrame holding a stay table."""
    return validate_table(pa.Table.from_pandas(frame, preserve_index=False), source)


def _key_column(names: list[str], source: str) -> str:
    if MESH_ID in names:
        return MESH_ID
    if MESH_CODE in names:
        return MESH_CODE
    raise InputError(
        source,
        f"missing column '{MESH_ID}' (or '{MESH_CODE}')",
        expected=f"columns {', '.join(STAY_COLUMNS)} and {MESH_ID} or {MESH_CODE}; found {', '.join(names) or 'none'}",
    )


def _check_columns(names: list[str], source: str) -> list[str]:
    missing = [c for c in STAY_COLUMNS if c not in names]
    if missing:
        raise InputError(
            source,
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}",
            expected=f"columns {', '.join(STAY_COLUMNS)} and {MESH_ID} or {MESH_CODE}; found {', '.join(names) or 'none'}",
        )
    key = _key_column(names, source)
    wanted = [*STAY_COLUMNS, key]
    if key == MESH_CODE and MESH_SIZE in names:
        wanted.append(MESH_SIZE)
    return wanted


MAX_LINE_BYTES = 1 << 20  # a CSV line longer than this (1 MiB) is not a table row: refused before any parsing


def _open_binary(path: Path):  # -> a binary file object (gzip-decompressing for .gz)
    import gzip

    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def read_csv_header(path: Path, source: str, what: str = "stay") -> list[str]:
    """The header line of a CSV (``.gz`` too; CR-only line endings split like any other).

    At most :data:`MAX_LINE_BYTES` are read: a file without line breaks costs no more memory than that.

    Raises:
        InputError: when the file is empty, not UTF-8, has no line break early on, or is not readable as CSV.
    """
    try:
        with _open_binary(Path(path)) as fh:
            head = fh.read(MAX_LINE_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise InputError(source, f"cannot be read as CSV: {exc}") from exc
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends and len(head) > MAX_LINE_BYTES:
        raise InputError(
            source,
            f"the first line is longer than {MAX_LINE_BYTES:,} bytes (no line breaks?)",
            expected="a CSV file: a header line, then one line per row",
        )
    line = head[: min(ends)] if ends else head
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            source, f"is not UTF-8 text ({exc.reason} at byte {exc.start} of the header)", expected="a UTF-8 CSV file"
        ) from exc
    try:
        header = next(csv.reader([text]), None)
    except csv.Error as exc:
        raise InputError(source, f"cannot be read as CSV: {exc}") from exc
    if not header or not any(h.strip() for h in header):
        raise InputError(source, "the file is empty", expected=f"a header line and at least one {what}")
    return header


def scan_csv(
    path: Path, source: str, max_line: int = MAX_LINE_BYTES, max_bytes: int | None = None, max_rows: int | None = None
) -> tuple[int, int]:
    """Stream through a CSV (``.gz`` decompressed on the fly) in 1 MiB chunks; return ``(bytes, lines)``.

    Memory stays at one chunk whatever the file holds, so limits are checked before a parser
    (which holds whole lines, or the whole file) sees it.

    Raises:
        InputError: a line longer than ``max_line`` bytes, more than ``max_bytes`` (decompressed) or
            more than ``max_rows`` lines.
    """
    import zlib

    chunk = 1 << 20
    total = lines = run = 0
    try:
        with _open_binary(Path(path)) as fh:
            while block := fh.read(chunk):
                total += len(block)
                if max_bytes is not None and total > max_bytes:
                    raise InputError(
                        source,
                        f"holds more than {max_bytes / 2**20:,.0f} MB{' once decompressed' if Path(path).suffix.lower() == '.gz' else ''}",
                        expected=f"at most {max_bytes / 2**20:,.0f} MB of text (bigger files: train from the command line)",
                    )
                arr = np.frombuffer(block, np.uint8)
                breaks = np.flatnonzero((arr == 10) | (arr == 13))
                if breaks.size == 0:
                    run += len(block)
                else:
                    inner = int(np.diff(breaks).max()) - 1 if breaks.size > 1 else 0
                    run = max(run + int(breaks[0]), inner)
                    if run <= max_line:
                        run = len(block) - int(breaks[-1]) - 1
                    n_lf = int(np.count_nonzero(arr == 10))
                    lines += n_lf if n_lf else breaks.size
                if run > max_line:
                    raise InputError(
                        source,
                        f"line {lines + 1:,} is longer than {max_line:,} bytes (no line breaks?)",
                        expected="a CSV file: a header line, then one line per row",
                    )
                if max_rows is not None and lines > max_rows + 1:
                    raise InputError(
                        source,
                        f"has more than {max_rows:,} rows",
                        expected=f"at most {max_rows:,} rows here (bigger files: the command line)",
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(source, f"cannot be read: {exc}") from exc
    return total, lines


def read_frame(path: str | Path) -> pd.DataFrame:
    """A CSV (``.gz`` too) or Parquet table as a DataFrame, with a clear error for anything else.

    Raises:
        InputError: a missing, empty, binary or malformed file, named with what was expected.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise InputError(name, f"cannot be read as Parquet: {exc}", expected="a Parquet table") from None
    read_csv_header(path, name)
    scan_csv(path, name)  # pandas holds whole lines: refuse a file without line breaks first
    try:
        return pd.read_csv(path, compression="infer", encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            name, f"cannot be read as CSV: {reason}", expected="a comma-separated table with a header line"
        ) from None


def renamed_columns(names: list[str], renames: Mapping[str, str] | None, source: str) -> list[str]:
    """The file's column names after a mapping (``{file column: schema name}``).

    A file column that already bears a mapped schema name, but is not mapped itself, is set aside
    (``<name> (unmapped)``), so every schema name is held by exactly the column the user chose.

    Raises:
        InputError: a mapped column the file does not have.
    """
    if not renames:
        return names
    missing = [c for c in renames if c not in names]
    if missing:
        raise InputError(
            source,
            f"has no column {missing[0]!r} (mapped to {renames[missing[0]]})",
            expected=f"one of its columns: {', '.join(names) or 'none'}",
        )
    targets = set(renames.values())
    return [renames.get(n, f"{n} (unmapped)" if n in targets else n) for n in names]


def _read_csv(path: Path, name: str, renames: Mapping[str, str] | None = None) -> pa.Table:
    import pyarrow.csv as pacsv

    names = renamed_columns([h.strip() for h in read_csv_header(path, name)], renames, name)
    wanted = _check_columns(names, name)
    dict_type = pa.dictionary(pa.int32(), pa.string())
    strings = {DAY_OF_WEEK: dict_type, ARRIVAL_TIME: dict_type, IS_HOLIDAY: dict_type}
    if MESH_CODE in wanted:
        strings[MESH_CODE] = pa.string()
    read = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24)
    parse = pacsv.ParseOptions(newlines_in_values=False)
    try:
        convert = pacsv.ConvertOptions(include_columns=wanted, column_types=strings, strings_can_be_null=True)
        return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if "CSV conversion error" not in str(exc) and "conversion" not in str(exc).lower():
            raise InputError(name, f"cannot be read as CSV: {exc}") from exc
    # A numeric column holds text somewhere: read everything as text so validation can name rows.
    all_str = {c: pa.string() for c in wanted}
    convert = pacsv.ConvertOptions(include_columns=wanted, column_types=all_str, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise InputError(name, f"cannot be read as CSV: {exc}") from exc


def _read_parquet(path: Path, name: str, renames: Mapping[str, str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(name, f"cannot be read as Parquet: {exc}") from exc
    if renames:
        names = renamed_columns(list(schema.names), renames, name)
        wanted = _check_columns(names, name)
        back = dict(zip(names, schema.names))
        table = pq.read_table(path, columns=[back[c] for c in wanted])
        table = table.rename_columns(wanted)
        strings = [c for c in (DAY_OF_WEEK, ARRIVAL_TIME, IS_HOLIDAY) if pa.types.is_string(table[c].type)]
        for c in strings:
            table = table.set_column(table.column_names.index(c), c, pc.dictionary_encode(table[c]))
        return table
    wanted = _check_columns(list(schema.names), name)
    as_dict = [
        c
        for c in (DAY_OF_WEEK, ARRIVAL_TIME, IS_HOLIDAY)
        if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)
    ]
    return pq.read_table(path, columns=wanted, read_dictionary=as_dict)


# ---------------------------------------------------------------- validation


def _nulls(col: pa.ChunkedArray) -> np.ndarray | None:
    """Mask of null rows, or ``None`` when there are none (the usual, fast case)."""
    return col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None


class ProblemCollector:
    """Gathers every problem of one input instead of stopping at the first (see :func:`collect_problems`).

    A row counts once per column, under its first problem (a text value that is not a number is
    not reported again as "not finite").
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[InputError] = []
        self._seen: dict[str | None, np.ndarray] = {}

    def add(self, column: str, mask: np.ndarray, values: object, problem: str, expected: str) -> None:
        """Record the rows of ``mask`` not already reported for ``column``."""
        mask = np.asarray(mask, dtype=bool)
        seen = self._seen.get(column)
        if seen is not None and seen.shape == mask.shape:
            mask = mask & ~seen
            self._seen[column] = seen | mask
        else:
            self._seen[column] = mask.copy()
        if mask.any():
            self.problems.append(_problem(self.source, column, mask, values, problem, expected))

    def run(self, fn: Callable[..., _T], *args: object) -> _T | None:
        """``fn(*args)`` with :func:`_bad` collecting; an error it raises itself is recorded and gives ``None``."""
        token = _COLLECTOR.set(self)
        try:
            return fn(*args)
        except InputError as exc:
            self.problems.extend(getattr(exc, "problems", None) or [exc])
            return None
        finally:
            _COLLECTOR.reset(token)

    def raise_if_any(self) -> None:
        """Raise the one problem found, or :class:`~core.errors.InputProblems` with all of them."""
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise InputProblems(self.source, self.problems)


_T = TypeVar("_T")
_COLLECTOR: ContextVar[ProblemCollector | None] = ContextVar("input_problem_collector", default=None)


def _problem(source: str, column: str, mask: np.ndarray, values: object, problem: str, expected: str) -> InputError:
    rows = np.flatnonzero(mask)
    shown = rows[:_MAX_BAD_SHOWN]
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        vals = values.take(pa.array(shown)).to_pylist()
    else:
        vals = [np.asarray(values)[r].item() for r in shown]
    vals = ["" if v is None else v for v in vals]
    return InputError(source, problem, column=column, rows=(shown + 1).tolist(), values=vals, n_bad=rows.size, expected=expected)


def _bad(source: str, column: str, mask: np.ndarray | None, values: object, problem: str, expected: str) -> None:
    """Report the rows of ``mask``: raise, or record them when a :class:`ProblemCollector` is running."""
    if mask is None or not mask.any():
        return
    collector = _COLLECTOR.get()
    if collector is not None:
        collector.add(column, mask, values, problem, expected)
        return
    raise _problem(source, column, mask, values, problem, expected)


def _as_dictionary(col: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Return ``(indices, dictionary values)`` of a column; nulls get index -1."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    col = col.unify_dictionaries() if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
    if col.num_chunks == 0:
        return np.zeros(0, np.int32), []
    dictionary = col.chunk(0).dictionary.to_pylist()
    idx_chunks = [(c.indices.fill_null(-1) if c.null_count else c.indices).to_numpy(zero_copy_only=False) for c in col.chunks]
    idx = idx_chunks[0] if len(idx_chunks) == 1 else np.concatenate(idx_chunks)
    return idx.astype(np.int32, copy=False), dictionary


def _parse_time_text(value: object) -> int:
    """Minutes after midnight of 'HH:MM' (or 'HH:MM:SS'); -1 when not a time of day."""
    if not isinstance(value, str):
        return -1
    m = _TIME_RE.match(value)
    if not m:
        return -1
    h, mi = int(m.group(1)), int(m.group(2))
    s = int(m.group(3)) if m.group(3) else 0
    if h > 23 or mi > 59 or s > 59:
        return -1
    return h * 60 + mi


def _arrival_minutes(col: pa.ChunkedArray, source: str) -> np.ndarray:
    typ = col.type
    if pa.types.is_time(typ) or pa.types.is_timestamp(typ):
        _bad(source, ARRIVAL_TIME, _nulls(col), col, "empty arrival time", "a time of day HH:MM")
        hour = pc.hour(col).to_numpy(zero_copy_only=False)
        minute = pc.minute(col).to_numpy(zero_copy_only=False)
        return (hour * 60 + minute).astype(np.int16)
    if not (pa.types.is_dictionary(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise InputError(source, f"arrival times of type {typ}", column=ARRIVAL_TIME, expected="text HH:MM or a time type")
    idx, dictionary = _as_dictionary(col)
    lut = np.array([_parse_time_text(v) for v in dictionary] + [-1], dtype=np.int16)
    minutes = lut[idx]  # index -1 (null) hits the trailing -1
    bad = minutes < 0
    _bad(source, ARRIVAL_TIME, bad, col, "not a time of day", "HH:MM with hours 00-23 and minutes 00-59")
    return minutes


def _weekdays(col: pa.ChunkedArray, source: str) -> np.ndarray:
    typ = col.type
    if not (pa.types.is_dictionary(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise InputError(source, f"weekdays of type {typ}", column=DAY_OF_WEEK, expected="English weekday names Monday..Sunday")
    idx, dictionary = _as_dictionary(col)
    lut = np.array(
        [_WEEKDAY_LOOKUP.get(v.strip().lower(), -1) if isinstance(v, str) else -1 for v in dictionary] + [-1], dtype=np.int8
    )
    days = lut[idx]
    _bad(source, DAY_OF_WEEK, days < 0, col, "unknown weekday name", "an English weekday name Monday..Sunday")
    return days


def _holidays(col: pa.ChunkedArray, source: str) -> np.ndarray:
    typ = col.type
    if pa.types.is_boolean(typ):
        _bad(source, IS_HOLIDAY, _nulls(col), col, "empty holiday flag", "True or False")
        return col.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    if pa.types.is_integer(typ):
        arr = col.fill_null(-1).to_numpy(zero_copy_only=False)
        _bad(source, IS_HOLIDAY, (arr != 0) & (arr != 1), col, "not a holiday flag", "True/False or 1/0")
        return arr.astype(bool)
    idx, dictionary = _as_dictionary(col)

    def flag(v: object) -> int:
        if not isinstance(v, str):
            return -1
        s = v.strip().lower()
        return 1 if s in _TRUE else 0 if s in _FALSE else -1

    lut = np.array([flag(v) for v in dictionary] + [-1], dtype=np.int8)
    out = lut[idx]
    _bad(source, IS_HOLIDAY, out < 0, col, "not a holiday flag", "True or False")
    return out.astype(bool)


def _numbers(col: pa.ChunkedArray, source: str, column: str, expected: str) -> np.ndarray:
    """Numeric values of a column; text is parsed and unparseable rows are reported."""
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        _bad(source, column, _nulls(col), col, "empty value", expected)
        return col.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(typ):
        raise InputError(source, "holds True/False values", column=column, expected=expected)
    text = col.to_pandas()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad(source, column, np.isnan(values) & ~text.str.lower().isin(["nan"]).to_numpy(), col, "not a number", expected)
    return values


def _stay_minutes(col: pa.ChunkedArray, source: str) -> np.ndarray:
    stay = _numbers(col, source, STAY_TIME, "a duration in minutes >= 0")
    if stay.dtype.kind == "f":
        _bad(source, STAY_TIME, ~np.isfinite(stay), col, "not a finite number", "a duration in minutes >= 0")
    elif stay.dtype.kind not in "iu":
        stay = stay.astype(np.float64)
    with np.errstate(invalid="ignore"):
        _bad(source, STAY_TIME, stay < 0, col, "negative duration", "a duration in minutes >= 0")
    return stay


def _mesh_ids(col: pa.ChunkedArray, source: str) -> tuple[np.ndarray, None]:
    raw = _numbers(col, source, MESH_ID, "an integer area id (-1 = no valid mesh)")
    if raw.dtype.kind == "f":
        whole = np.isfinite(raw) & (np.floor(raw) == raw)
        _bad(source, MESH_ID, ~whole, col, "not an integer", "an integer area id (-1 = no valid mesh)")
        raw = np.where(whole, raw, NO_MESH)  # only reached while collecting: those rows are reported already
    ids = raw.astype(np.int64, copy=False)
    if ids.size and int(ids.min()) < NO_MESH:
        _bad(source, MESH_ID, ids < NO_MESH, col, "negative area id", "an integer area id >= 0 (-1 = no valid mesh)")
    return ids, None


def _mesh_codes(table: pa.Table, source: str) -> tuple[np.ndarray, np.ndarray]:
    col = table[MESH_CODE]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    _bad(source, MESH_CODE, _nulls(col), col, "empty mesh code", "a JIS mesh code")
    given_sizes = None
    if MESH_SIZE in table.column_names:
        sizes = _numbers(table[MESH_SIZE], source, MESH_SIZE, "50 or 250")
        given_sizes = (
            np.where(np.isfinite(sizes), sizes, 0).astype(np.int64) if sizes.dtype.kind == "f" else sizes.astype(np.int64)
        )
        _bad(
            source,
            MESH_SIZE,
            ~np.isin(given_sizes, list(meshcode.EXTENT)),
            table[MESH_SIZE],
            "unknown mesh size",
            "a mesh size in metres: 50, 100, 250, 500 or 1000",
        )
    values = col.to_numpy(zero_copy_only=False)
    if _COLLECTOR.get() is not None and given_sizes is not None and not np.isin(given_sizes, list(meshcode.EXTENT)).all():
        given_sizes = None  # reported above: judge the codes by their own length
    return meshcode.parse_code_column(values, source, MESH_CODE, given_sizes)


def validate_table(table: pa.Table, source: str) -> StayRecords:
    """Validate an Arrow table of stays and return the checked per-stay arrays.

    Every column is checked before anything is raised, so one error names every failing column
    and problem (:class:`~core.errors.InputProblems`, with counts and first rows of each).

    Raises:
        InputError: for a missing column, an empty table or any invalid value.
    """
    wanted = _check_columns(list(table.column_names), source)
    key = wanted[4]
    if table.num_rows == 0:
        raise InputError(source, "has a header but no stays", expected="at least one stay row")

    bag = ProblemCollector(source)
    stay = bag.run(_stay_minutes, table[STAY_TIME], source)
    arrival = bag.run(_arrival_minutes, table[ARRIVAL_TIME], source)
    weekday = bag.run(_weekdays, table[DAY_OF_WEEK], source)
    holiday = bag.run(_holidays, table[IS_HOLIDAY], source)
    keyed = bag.run(_mesh_ids, table[MESH_ID], source) if key == MESH_ID else bag.run(_mesh_codes, table, source)
    bag.raise_if_any()
    assert stay is not None and arrival is not None and weekday is not None and holiday is not None and keyed is not None
    keys, sizes = keyed
    keep = (keys != NO_MESH) if key == MESH_ID and (keys == NO_MESH).any() else None
    n_skipped = 0 if keep is None else int((~keep).sum())
    if keep is not None:
        keys, stay, arrival, weekday, holiday = (a[keep] for a in (keys, stay, arrival, weekday, holiday))
    if keys.size == 0:
        raise InputError(source, "no stays with a valid mesh (every mesh_id is -1)", column=key)
    return StayRecords(source, key, keys, stay, arrival, weekday, holiday, sizes, n_skipped)


def read_counts(path: str | Path) -> AreaCounts:
    """Per-area token counts from a count table (see :func:`write_counts`) or from a stay table (aggregated).

    Raises:
        InputError: naming the file, column and first offending rows.
    """
    path = Path(path)
    if is_count_table(path):
        return read_count_table(path)
    return read_stays(path).to_counts()


def is_count_table(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet count table (columns code, mesh_size, token, count) rather than stays."""
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file() or path.stat().st_size == 0:
        return False
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError):
        return False
    return set(COUNT_COLUMNS) <= names and STAY_TIME not in names


def count_table(counts: AreaCounts) -> pa.Table:
    """The count matrix as a table, one row per non-zero (mesh, token) cell, sorted by code then token."""
    if counts.key_column != MESH_CODE or counts.mesh_sizes is None:
        raise InputError("counts", f"keyed by {counts.key_column}", expected="counts keyed by mesh code with mesh sizes")
    coo = sp.coo_array(counts.counts)
    order = np.lexsort((coo.col, coo.row))
    row, col = coo.row[order], coo.col[order]
    return pa.table(
        {
            MESH_CODE: pa.array(counts.keys[row], pa.int64()),
            MESH_SIZE: pa.array(counts.mesh_sizes[row], pa.int16()),
            TOKEN: pa.array(col, pa.int16()),
            COUNT: pa.array(np.rint(coo.data[order]).astype(np.int64), pa.int64()),
        }
    )


def write_counts(counts: AreaCounts, path: str | Path) -> Path:
    """Write a count matrix as a Parquet count table, atomically; ``train`` and :func:`read_counts` read it back."""
    import pyarrow.parquet as pq

    from core.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(count_table(counts), tmp)
    return path


def counts_from_table(table: pa.Table, source: str) -> AreaCounts:
    """Validate a count table and build the count matrix (duplicate cells are summed).

    Raises:
        InputError: for a missing column, a token outside 0..167, a negative count or a bad mesh code.
    """
    missing = [c for c in COUNT_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(source, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    if table.num_rows == 0:
        raise InputError(source, "has a header but no counts", expected="at least one (mesh, token) count")
    tok = _numbers(table[TOKEN], source, TOKEN, "a token 0..167")
    _bad(source, TOKEN, (tok < 0) | (tok >= N_TOKENS) | (np.floor(tok) != tok), table[TOKEN], "not a token", "a token 0..167")
    cnt = _numbers(table[COUNT], source, COUNT, "a count >= 0")
    _bad(source, COUNT, ~(cnt >= 0), table[COUNT], "negative count", "a count >= 0")
    given = _numbers(table[MESH_SIZE], source, MESH_SIZE, "50 or 250").astype(np.int64)
    codes, sizes = meshcode.parse_code_column(table[MESH_CODE].to_numpy(zero_copy_only=False), source, MESH_CODE, given)
    keys, index = factorize_keys(codes)
    mat = sp.csr_array(
        (cnt.astype(np.float32), (index.astype(np.int64), tok.astype(np.int64))), shape=(len(keys), N_TOKENS), dtype=np.float32
    )
    mat.sum_duplicates()
    mesh_sizes = np.zeros(len(keys), dtype=np.int64)
    mesh_sizes[index] = sizes
    return AreaCounts(MESH_CODE, keys, mat, mesh_sizes)


def read_count_table(path: str | Path) -> AreaCounts:
    """Read a Parquet count table written by :func:`write_counts` (or ``python -m core counts``)."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path, columns=list(COUNT_COLUMNS))
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputError(path.name, f"cannot be read as a count table: {exc}") from exc
    return counts_from_table(table, path.name)


def stack_counts(parts: list[AreaCounts]) -> tuple[sp.csr_array, np.ndarray]:
    """Stack several datasets' counts (areas of different datasets stay distinct rows).

    Returns:
        The stacked matrix and, per row, the index of the dataset it came from.
    """
    mat = sp.vstack([p.counts for p in parts], format="csr")
    owner = np.repeat(np.arange(len(parts)), [p.n_areas for p in parts])
    assert mat.shape[1] == N_TOKENS
    return sp.csr_array(mat), owner
