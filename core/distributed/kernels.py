"""Per-partition functions of the distributed path: plain pandas / numpy, no Dask.

Each one wraps the single-machine kernels unchanged (``fixes_from_table``, ``clean_fixes``,
``detect_stays``, ``stay_table``, ``kept_meshes``, ``assign_kept``, ``stays_from_frame``), so a
partition holding all of some people's fixes gives exactly the rows the single-machine path gives
for those people. ``core.distributed.pipeline`` arranges them on a cluster.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.constants import COUNT, MESH_CODE, MESH_SIZE, N_TOKENS, TOKEN
from core.errors import InputError
from core.mobility.gps import GpsOptions, clean_fixes, detect_stays, fixes_from_table, gps_files, stay_table
from core.mobility.privacy import (
    KeptMeshes,
    assign_kept,
    kept_meshes,
    missing_people,
    person_codes,
    privacy_inputs,
    stay_cells,
    training_rows,
)
from core.mobility.stays import factorize_keys, stays_from_frame

# Columns of a partition of fixes: person, UTC seconds, degrees, logger-off marker; the index is the
# fix's place in the input (file index << 40 | row) so duplicates keep the same row as on one machine
# (the P2P shuffle carries the index anyway: the fewer bytes a fix, the cheaper the shuffle). The person
# is either a categorical (codes into the chunk's own dictionary of names: 1-4 bytes a fix, but every
# piece of the chunk sent to a partition carries the whole dictionary) or the name as text.
USER, T, LAT, LON, OFF, SEQ = "user", "t", "lat", "lon", "off", "seq"
_ROW_BITS = 40


@dataclass(frozen=True)
class Chunk:
    """A piece of one input file read by one task.

    Attributes:
        path: the file.
        file_index: its place in the sorted input list.
        row_groups: Parquet row groups to read (``None``: the whole file, or a CSV byte range).
        row_offset: rows of the file before this chunk (for row numbers in errors and the order of
            duplicates); for a CSV byte range, the range's first byte: an order key only (every row
            holds at least one byte, so ``offset + row`` keeps increasing across ranges), the row
            numbers of an error are counted from the file when one happens.
        byte_range: ``(start, end)`` bytes of whole lines of an uncompressed CSV (the header excluded),
            or ``None``.
    """

    path: str
    file_index: int
    row_groups: tuple[int, ...] | None = None
    row_offset: int = 0
    byte_range: tuple[int, int] | None = None

    @property
    def source(self) -> str:
        return Path(self.path).name


def input_files(paths: list[str | Path] | str | Path) -> list[Path]:
    """Files given directly, files matching glob patterns, and the CSV / Parquet files inside folders.

    Raises:
        InputError: when a path does not exist or nothing is found.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    expanded: list[str | Path] = []
    for p in items:
        if isinstance(p, str) and glob.has_magic(p):
            hits = sorted(glob.glob(p))
            if not hits:
                raise InputError(p, "no file matches the pattern")
            expanded += hits
        else:
            expanded.append(p)
    files = gps_files(expanded)
    for f in files:
        if f.stat().st_size == 0:
            raise InputError(f.name, "the file is empty", expected="a header line and at least one row")
    return files


CSV_BYTES_PER_ROW = 50  # a GPS or stay row of text is about 30-70 bytes: ranges of about chunk_rows rows
_SPLITTABLE = (".csv", ".txt", ".tsv")


def csv_ranges(path: Path, block: int) -> list[tuple[int, int]]:
    """Byte ranges of whole lines covering an uncompressed CSV's rows (its header line excluded).

    Each nominal boundary ``k * block`` moves forward to just after the next line break, so that a
    range never splits a line (a quoted field holding a line break is not supported, as with Dask's
    own ``read_csv`` in blocks).

    Raises:
        InputError: a header line longer than the line limit (no line breaks).
    """
    from core.mobility.stays import MAX_LINE_BYTES

    size = path.stat().st_size

    def line_end(fh, pos: int) -> int:
        fh.seek(pos)
        scanned = 0
        while True:
            buf = fh.read(1 << 16)
            if not buf:
                return size
            hit = buf.find(b"\n")
            if hit >= 0:
                return pos + scanned + hit + 1
            scanned += len(buf)
            if scanned > MAX_LINE_BYTES:
                raise InputError(
                    path.name,
                    f"a line near byte {pos:,} is longer than {MAX_LINE_BYTES:,} bytes (no line breaks?)",
                    expected="a CSV file: a header line, then one line per row",
                )

    with open(path, "rb") as fh:
        start = line_end(fh, 0)
        bounds = [start]
        nominal = start + block
        while nominal < size:
            b = line_end(fh, nominal - 1)  # a break just before the nominal point ends that line
            if b > bounds[-1]:
                bounds.append(b)
            nominal = max(nominal + block, b + 1)
        if bounds[-1] < size:
            bounds.append(size)
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a] or [(start, size)]


def input_chunks(files: list[Path], chunk_rows: int) -> list[Chunk]:
    """Split files into chunks: Parquet by groups of row groups of about ``chunk_rows`` rows, an
    uncompressed CSV by byte ranges of about ``chunk_rows`` rows (:data:`CSV_BYTES_PER_ROW`), a
    compressed one whole."""
    import pyarrow.parquet as pq

    chunks: list[Chunk] = []
    for k, f in enumerate(files):
        if f.suffix.lower() not in (".parquet", ".pq"):
            if f.suffix.lower() in _SPLITTABLE and f.stat().st_size > chunk_rows * CSV_BYTES_PER_ROW:
                ranges = csv_ranges(f, max(chunk_rows * CSV_BYTES_PER_ROW, 1 << 16))
                chunks += [Chunk(str(f), k, None, a, (a, b)) for a, b in ranges]
            else:
                chunks.append(Chunk(str(f), k))
            continue
        try:
            meta = pq.ParquetFile(f).metadata
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f.name, f"cannot be read as Parquet: {exc}") from exc
        group: list[int] = []
        start = rows = 0
        for g in range(meta.num_row_groups):
            group.append(g)
            rows += meta.row_group(g).num_rows
            if rows - start >= chunk_rows:
                chunks.append(Chunk(str(f), k, tuple(group), start))
                group, start = [], rows
        if group or not chunks or chunks[-1].file_index != k:
            chunks.append(Chunk(str(f), k, tuple(group), start))
    return chunks


def _range_bytes(chunk: Chunk, limit: int | None = None) -> bytes:
    """The header line and the chunk's byte range of a CSV, as one small CSV (at most ``limit`` bytes
    of the range when given)."""
    assert chunk.byte_range is not None
    a, b = chunk.byte_range
    with open(chunk.path, "rb") as fh:
        header = fh.readline()
        if not header.endswith(b"\n"):
            header += b"\n"
        fh.seek(a)
        return header + fh.read(b - a if limit is None else min(b - a, limit))


def rows_before(chunk: Chunk) -> int:
    """Rows of the file before a chunk: counted from the file for a CSV byte range (only on errors)."""
    if chunk.byte_range is None:
        return chunk.row_offset
    start, lines = chunk.byte_range[0], 0
    with open(chunk.path, "rb") as fh:
        fh.readline()
        pos = fh.tell()
        while pos < start:
            buf = fh.read(min(1 << 20, start - pos))
            if not buf:
                break
            lines += buf.count(b"\n")
            pos += len(buf)
    return lines


def read_chunk_table(chunk: Chunk) -> pa.Table:
    """The rows of one chunk as an Arrow table (CSV read as the single-machine reader reads it)."""
    from core.mobility.gps import _read_table

    if chunk.byte_range is not None:
        import io

        return _read_table(Path(chunk.path), chunk.source, data=io.BytesIO(_range_bytes(chunk)))
    if chunk.row_groups is None:
        return _read_table(Path(chunk.path), chunk.source)
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(chunk.path).read_row_groups(list(chunk.row_groups))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(chunk.source, f"cannot be read as Parquet: {exc}") from exc


def _shift_rows(exc: InputError, offset: int) -> InputError:
    if not offset or not exc.rows:
        return exc
    return type(exc)(
        exc.source,
        exc.problem,
        column=exc.column,
        rows=[r + offset for r in exc.rows],
        values=exc.values,
        n_bad=exc.n_bad,
        expected=exc.expected,
    )


def names_as_codes(chunks: list[Chunk], partitions: int, options: GpsOptions) -> bool:
    """Whether to shuffle people as codes into each chunk's dictionary rather than as text.

    A chunk is cut into one piece per partition and each piece carries the chunk's whole dictionary,
    so codes pay only while ``people per chunk x partitions`` stays below half the chunk's rows (the
    dictionaries then weigh less than the text they replace: input grouped by person, as most exports
    are); input ordered by time alone, where a chunk holds a large share of everybody, travels as
    text. Judged from the first chunk's first rows (at most about 100,000: the person column of its
    Parquet row groups, or its first lines of a CSV). Either way the results are the same.
    """
    import io

    import pyarrow.compute as pc

    chunk = chunks[0]
    path = Path(chunk.path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            f = pq.ParquetFile(path)
            col = _user_column(f.schema_arrow.names, options)
            if col is None or f.metadata.num_row_groups == 0:
                return True
            groups = list(chunk.row_groups or range(f.metadata.num_row_groups))
            batch = next(f.iter_batches(batch_size=100_000, row_groups=groups, columns=[col]), None)
            users = batch.column(0) if batch is not None else pa.array([], pa.string())
        elif path.suffix.lower() in _SPLITTABLE:
            if chunk.byte_range is None:
                with open(path, "rb") as fh:
                    head = fh.read(100_000 * CSV_BYTES_PER_ROW)
            else:
                head = _range_bytes(chunk, limit=100_000 * CSV_BYTES_PER_ROW)
            head = head[: head.rfind(b"\n") + 1] or head
            sample = pd.read_csv(io.BytesIO(head), dtype=str, keep_default_na=False)
            col = _user_column(list(sample.columns), options)
            if col is None:
                return True
            users = pa.array(sample[col])
        else:  # a compressed CSV: one chunk a file, whose people are as many as its rows at most
            return False
    except (OSError, ValueError, pa.ArrowException):  # unreadable here: the read tasks report it properly
        return False
    rows = len(users)
    return rows == 0 or pc.count_distinct(users).as_py() * partitions <= rows // 2


def _user_column(names: list[str], options: GpsOptions) -> str | None:
    from core.mobility.gps import _USER_NAMES, _find

    try:
        return _find(names, options.user_col, _USER_NAMES, "user", "", required=False)
    except InputError:
        return None


def fix_meta(codes: bool = True) -> pd.DataFrame:
    """An empty partition of fixes (column names and dtypes; the index is the input position)."""
    return pd.DataFrame(
        {
            USER: pd.Categorical([], categories=pd.Index([], dtype="str")) if codes else pd.Series([], dtype="str"),
            T: np.zeros(0, np.float64),
            LAT: np.zeros(0, np.float64),
            LON: np.zeros(0, np.float64),
            OFF: np.zeros(0, bool),
        },
        index=pd.Index(np.zeros(0, np.int64), name=SEQ),
    )


def read_fix_chunk(chunk: Chunk, options: GpsOptions, codes: bool = True) -> pd.DataFrame:
    """Read and validate one chunk of fixes (a file without a person column is one person, named by the file).

    Raises:
        InputError: naming the file, column and rows (rows counted from the start of the file).
    """
    try:
        table = read_chunk_table(chunk)
    except InputError as exc:
        raise _shift_rows(exc, rows_before(chunk)) from None
    if table.num_rows == 0:
        if chunk.row_groups is None and chunk.byte_range is None:
            raise InputError(chunk.source, "has a header but no fixes", expected="at least one fix row")
        return fix_meta(codes)
    try:
        parts = fixes_from_table(table, chunk.source, options, default_user=Path(chunk.path).stem)
    except InputError as exc:
        raise _shift_rows(exc, rows_before(chunk)) from None
    n = table.num_rows
    seq = (np.int64(chunk.file_index) << _ROW_BITS) + chunk.row_offset + np.arange(n, dtype=np.int64)
    users = pa.chunked_array(parts["user"]).combine_chunks()
    t, lat, lon, off = parts["t"], parts["lat"], parts["lon"], parts["off"]
    island = (lat == 0) & (lon == 0)  # the first fixes clean_fixes drops, whatever their neighbours: not shuffled
    if island.any():
        keep = ~island
        seq, users, t, lat, lon, off = seq[keep], users.filter(pa.array(keep)), t[keep], lat[keep], lon[keep], off[keep]
    person: pd.api.extensions.ExtensionArray
    if codes:
        users = users.dictionary_encode()
        person = pd.Categorical.from_codes(
            users.indices.to_numpy(zero_copy_only=False), categories=pd.Index(users.dictionary.to_pandas(), dtype="str")
        )
    else:
        person = pd.Series(users.to_pandas(), dtype="str").array
    return pd.DataFrame(
        {USER: person, T: t, LAT: lat, LON: lon, OFF: off},
        index=pd.Index(seq, name=SEQ),
        copy=False,  # columns as they are (no copy into one block): the shuffle takes them column by column
    )


def _ordered(code: np.ndarray, t: np.ndarray, seq: np.ndarray) -> bool:
    """Whether rows are sorted by person, then time, then input position."""
    if len(code) < 2:
        return True
    du, dt, ds = np.diff(code), np.diff(t), np.diff(seq)
    return bool(((du > 0) | ((du == 0) & ((dt > 0) | ((dt == 0) & (ds > 0))))).all())


def stays_from_partition(frame: pd.DataFrame, options: GpsOptions) -> pd.DataFrame:
    """Stays of the people in one partition, which holds all their fixes (hashed by person).

    The fixes are ordered by person, time and input position (what the single-machine reader's
    stable sort gives), then cleaned, scanned and tabulated by the single-machine kernels.
    """
    seq = frame.index.to_numpy(np.int64)
    # Back to input order (the shuffle delivers each input chunk's rows as a run: a cheap merge),
    # then grouped by person (runs again, one per input file the person is in). Input files sorted
    # by person and time end up fully ordered; anything else gets the full three-key sort.
    code, uniques = pd.factorize(frame[USER], sort=False)
    if len(seq) > 1 and bool((seq[1:] > seq[:-1]).all()):  # the P2P shuffle delivers input order as it is
        order = np.argsort(code, kind="stable")
    else:
        order = np.argsort(seq, kind="stable")
        order = order[np.argsort(code[order], kind="stable")]
    code = code[order]
    t = frame[T].to_numpy(np.float64)[order]
    seq = seq[order]
    if not _ordered(code, t, seq):
        again = np.lexsort((seq, t, code))
        order, code, t, seq = order[again], code[again], t[again], seq[again]
    lat, lon, off = (frame[c].to_numpy()[order] for c in (LAT, LON, OFF))
    names = np.asarray(uniques, dtype=object)
    fixes = clean_fixes(names, code.astype(np.int32), t, lat, lon, off, options.max_speed)
    stays = detect_stays(fixes, options.distance_m, options.min_minutes, options.max_gap_minutes)
    return stay_table(fixes, stays, options.tz, options.country)


def stays_meta(options: GpsOptions) -> pd.DataFrame:
    """An empty partition of stays, as :func:`stays_from_partition` returns it."""
    return stays_from_partition(fix_meta(), options)


# ---------------------------------------------------------------- privacy rule and counts

C50, C250 = "c50", "c250"


def pair_frame(stays: pd.DataFrame, source: str) -> pd.DataFrame:
    """Distinct ``(50 m code, 250 m code, person)`` rows of a partition of stays: all the privacy rule needs."""
    user_col, lat, lon = privacy_inputs(stays, source)
    c50, c250 = stay_cells(lat, lon)
    pairs = pd.DataFrame({C50: c50, C250: c250, USER: stays[user_col].to_numpy()})
    return pairs.drop_duplicates(ignore_index=True)


def kept_from_pairs(pairs: pd.DataFrame, min_users: int) -> pd.DataFrame:
    """The kept meshes of one partition of pairs holding whole 250 m meshes (hashed by 250 m code)."""
    users = person_codes(pairs[USER])
    kept = kept_meshes(pairs[C50].to_numpy(np.int64), pairs[C250].to_numpy(np.int64), users, min_users)
    codes = np.r_[kept.codes50, kept.codes250]
    sizes = np.r_[np.full(len(kept.codes50), 50, np.int64), np.full(len(kept.codes250), 250, np.int64)]
    n_users = kept.users_per_mesh.reindex(codes).to_numpy(np.int64)
    return pd.DataFrame({MESH_CODE: codes.astype(np.int64), MESH_SIZE: sizes, "users": n_users})


def kept_meta() -> pd.DataFrame:
    return pd.DataFrame({MESH_CODE: np.zeros(0, np.int64), MESH_SIZE: np.zeros(0, np.int64), "users": np.zeros(0, np.int64)})


def kept_from_frame(frame: pd.DataFrame) -> KeptMeshes:
    """Gather the kept meshes of every partition into one :class:`KeptMeshes`."""
    codes = frame[MESH_CODE].to_numpy(np.int64)
    sizes = frame[MESH_SIZE].to_numpy(np.int64)
    users = pd.Series(frame["users"].to_numpy(np.int64), index=codes)
    return KeptMeshes(np.sort(codes[sizes == 50]), np.sort(codes[sizes == 250]), users)


def training_partition(stays: pd.DataFrame, kept: KeptMeshes, source: str) -> pd.DataFrame:
    """A partition of stays as training rows under the rule (SPEC §1 columns, ``code``, ``mesh_size``)."""
    user_col, lat, lon = privacy_inputs(stays, source)
    c50, c250 = stay_cells(lat, lon)
    code, size = assign_kept(c50, c250, kept)
    nobody = missing_people(stays[user_col])  # never counted, never assigned
    code[nobody], size[nobody] = -1, 0
    return training_rows(stays, code, size)


def count_meta() -> pd.DataFrame:
    return pd.DataFrame(
        {
            MESH_CODE: np.zeros(0, np.int64),
            MESH_SIZE: np.zeros(0, np.int64),
            TOKEN: np.zeros(0, np.int64),
            COUNT: np.zeros(0, np.int64),
        }
    )


def count_partition(stays: pd.DataFrame, kept: KeptMeshes, source: str) -> pd.DataFrame:
    """Non-zero (mesh, token) counts of a partition of stays under the rule."""
    rows = training_partition(stays, kept, source)
    if len(rows) == 0:
        return count_meta()
    records = stays_from_frame(rows, source)
    keys, index = factorize_keys(records.area_keys)
    sizes = np.zeros(len(keys), np.int64)
    assert records.mesh_sizes is not None
    sizes[index] = records.mesh_sizes
    cell, n = np.unique(index.astype(np.int64) * N_TOKENS + records.tokens(), return_counts=True)
    row = cell // N_TOKENS
    return pd.DataFrame({MESH_CODE: keys[row], MESH_SIZE: sizes[row], TOKEN: cell % N_TOKENS, COUNT: n.astype(np.int64)})


def sum_counts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up partial count tables (sorted by code, then token)."""
    frame = pd.concat([p for p in parts if len(p)] or [count_meta()], ignore_index=True)
    if len(frame) == 0:
        return count_meta()
    out = frame.groupby([MESH_CODE, TOKEN], sort=True).agg({MESH_SIZE: "first", COUNT: "sum"}).reset_index()
    return out[[MESH_CODE, MESH_SIZE, TOKEN, COUNT]].astype(np.int64)


def stays_chunk(chunk: Chunk) -> pd.DataFrame:
    """One chunk of a stay table, read as the single-machine ``meshes`` step reads a file."""
    if chunk.row_groups is None and Path(chunk.path).suffix.lower() not in (".parquet", ".pq"):
        import io

        try:
            if chunk.byte_range is not None:
                return pd.read_csv(io.BytesIO(_range_bytes(chunk)))
            return pd.read_csv(chunk.path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(chunk.source, f"cannot be read as CSV: {exc}") from exc
    return _to_pandas(read_chunk_table(chunk))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as ``pandas.read_parquet`` converts it (its dtypes, so both paths give equal frames)."""
    try:
        from pandas.io._util import arrow_table_to_pandas
    except ImportError:  # pragma: no cover - older pandas
        return table.to_pandas()
    return arrow_table_to_pandas(table)
