"""Your own data into the shared space: safe uploads and inbox picks, a preview, training into ``data/user``.

The result of :func:`add_dataset` is one more dataset of the release ``data/user`` in the OpenUAS
layout, so it loads like any other. Files are committed in an order that makes a kill at any
moment harmless: the model and the metrics are renamed into place first, the GeoJSON last, and a
dataset exists (for :func:`core.release.layout.discover`) only once its GeoJSON does. Leftovers of a
killed job (temporary files, a model without its GeoJSON) are removed by :func:`cleanup_incomplete`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.area2vec.trainer import TrainConfig
    from core.mobility.columns import ColumnMap
    from core.mobility.gps import GpsOptions
    from core.mobility.stays import AreaCounts, StayRecords

from core import knobs
from core.atomic import ensure_writable_dir, write_text_atomic
from core.constants import MESH_CODE, MESH_ID, MESH_SIZE
from core.errors import CoreError, InputError
from core.progress import Progress

USER_RELEASE = "user"
INBOX = "inbox"
UPLOADS = ".uploads"
METRICS_DIR = "metrics"
SUFFIXES = (".csv", ".parquet", ".pq", ".gz", ".txt")
DEFAULT_UPLOAD_CAP = int(knobs.UPLOAD_CAP.default * 1024 * 1024)
DEFAULT_DECOMPRESSED_CAP = 500 * 1024 * 1024  # a .gz upload may expand to at most this (a gzip bomb is refused)
MAX_UPLOAD_FILES = 200
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
_PERIOD_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,19}")
_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\- ]{0,120}")
PREVIEW_MESHES = 3000


class UploadTooLarge(InputError):
    """An upload above the browser-upload cap."""


# ---------------------------------------------------------------- names and paths


def check_label(value: object, what: str, pattern: re.Pattern = _NAME_RE) -> str:
    """A dataset name or period label, or an :class:`InputError` saying what is allowed."""
    text = "" if value is None else str(value).strip()
    allowed = "letters, digits, '_' and '-' (no spaces, dots or slashes)"
    if not text:
        raise InputError(what, "is empty", expected=allowed)
    if not pattern.fullmatch(text):
        first = "a letter" if pattern is _NAME_RE else "a letter or digit"
        raise InputError(
            what,
            f"{text!r} is not allowed",
            expected=f"{first} then {allowed}, at most {40 if pattern is _NAME_RE else 20} characters",
        )
    return text


def dataset_name(name: object, period: object) -> str:
    """``<name>_<period>`` after validating both (e.g. ``kobe`` + ``2016-10`` -> ``kobe_2016-10``)."""
    return f"{check_label(name, 'dataset name')}_{check_label(period, 'period label', _PERIOD_RE)}"


def safe_file_name(name: object) -> str:
    """The base name of an uploaded file, checked: no folders, no hidden files, a known suffix."""
    text = str(name or "")
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    if base != text or not _FILE_RE.fullmatch(base) or ".." in base:
        raise InputError(
            repr(text)[:80],
            "is not an allowed file name",
            expected="a plain file name (letters, digits, '_', '-', '.', spaces), no folders",
        )
    if not base.lower().endswith(SUFFIXES):
        raise InputError(base, "has an unknown file type", expected=f"one of {', '.join(SUFFIXES)}")
    return base


def decode_upload(contents: str, name: str) -> bytes:
    """Bytes of a browser upload (a ``data:...;base64,`` URL)."""
    if not isinstance(contents, str) or "," not in contents:
        raise InputError(name, "the upload is not a data URL")
    try:
        return base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(name, "the upload is not valid base64") from exc


def upload_size(contents: str) -> int:
    """Decoded size of a data URL, without decoding it."""
    data = contents.split(",", 1)[1] if "," in contents else contents
    return len(data) * 3 // 4 - data[-2:].count("=")


def gunzip_capped(data: bytes, target: Path, source: str, cap: int) -> None:
    """Decompress gzip ``data`` into ``target`` in 1 MiB steps, never past ``cap`` bytes.

    Raises:
        UploadTooLarge: when the content expands beyond ``cap`` (``target`` is then incomplete: the caller removes it).
        InputError: when ``data`` is not gzip.
    """
    import zlib

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    step = 1 << 20
    try:
        with open(target, "wb") as out:
            pending = data
            while pending or not inflater.eof:
                piece = inflater.decompress(pending, step)
                pending = inflater.unconsumed_tail
                total += len(piece)
                if total > cap:
                    raise UploadTooLarge(
                        source,
                        f"decompresses to more than {cap / 2**20:.0f} MB",
                        expected="a smaller file, or copy it uncompressed into the data folder's inbox/ on the server",
                    )
                out.write(piece)
                if not piece and not pending:
                    break
    except zlib.error as exc:
        raise InputError(source, f"is not a valid gzip file ({exc})", expected="a .gz made by gzip") from None


def save_upload(
    data_dir: str | Path,
    files: list[tuple[str, str]],
    cap: int = DEFAULT_UPLOAD_CAP,
    decompressed_cap: int = DEFAULT_DECOMPRESSED_CAP,
) -> Path:
    """Check and store browser uploads ``(file name, data URL)``; return their folder.

    A ``.gz`` upload is stored decompressed (``x.csv.gz`` -> ``x.csv``), expanding to at most
    ``decompressed_cap`` bytes: nothing downstream ever inflates an upload again. The folder's name
    (the upload token) is random, so one browser cannot guess another's upload.

    Raises:
        UploadTooLarge: when the files together are above ``cap`` bytes (the message points to the inbox),
            or a ``.gz`` expands beyond ``decompressed_cap``; nothing is kept.
        InputError: for a bad name, an unknown type or undecodable content.
    """
    if not files:
        raise InputError("upload", "no file")
    if len(files) > MAX_UPLOAD_FILES:
        raise InputError("upload", f"{len(files)} files", expected=f"at most {MAX_UPLOAD_FILES} files at once")
    names = [safe_file_name(n) for n, _ in files]
    total = sum(upload_size(c if isinstance(c, str) else "") for _, c in files)
    if total > cap:
        raise UploadTooLarge(
            ", ".join(names)[:120],
            f"{total / 2**20:.1f} MB is above the upload cap of {cap / 2**20:.1f} MB",
            expected=f"a smaller file, or copy it into the data folder's {INBOX}/ on the server and pick it from the inbox list",
        )
    root = ensure_writable_dir(Path(data_dir) / USER_RELEASE / UPLOADS)
    cleanup_uploads(data_dir, max_total_bytes=max(UPLOADS_MAX_BYTES - total, 0))  # room for this one: quota on all uploads
    tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=root))
    try:
        for name, (_, contents) in zip(names, files):
            if not isinstance(contents, str):
                raise InputError(name, "the upload is not a data URL")
            data = decode_upload(contents, name)
            if name.lower().endswith(".gz"):
                inner = name[:-3]
                if not inner.lower().endswith(SUFFIXES) or inner.lower().endswith(".gz"):
                    inner += ".csv"
                gunzip_capped(data, tmp / inner, name, decompressed_cap)
            else:
                (tmp / name).write_bytes(data)
        final = root / f"u{secrets.token_hex(16)}"
        os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def upload_folder(data_dir: str | Path, token: object) -> Path:
    """The folder of an earlier upload, from its token (checked: no path characters)."""
    if not re.fullmatch(r"u[0-9a-f]{1,40}", str(token or "")):
        raise InputError("upload", f"unknown upload {token!r}")
    folder = Path(data_dir) / USER_RELEASE / UPLOADS / str(token)
    if not folder.is_dir():
        raise InputError("upload", "the uploaded file is gone (the server was cleaned); upload it again")
    return folder


def inbox_files(data_dir: str | Path) -> list[dict]:
    """Files in ``data/inbox`` that can be picked: name and size (nothing outside that folder)."""
    inbox = Path(data_dir) / INBOX
    if not inbox.is_dir():
        return []
    out = []
    for p in sorted(inbox.iterdir()):
        if p.name.startswith(".") or not p.name.lower().endswith(SUFFIXES):
            continue
        try:
            resolve_inbox(data_dir, p.name)
        except InputError:
            continue
        out.append({"name": p.name, "size": p.stat().st_size})
    return out


def resolve_inbox(data_dir: str | Path, name: object) -> Path:
    """The path of inbox file ``name``; refuses anything that is not a plain file inside ``data/inbox``."""
    base = safe_file_name(name)
    inbox = (Path(data_dir) / INBOX).resolve()
    path = (inbox / base).resolve()
    if path.parent != inbox or not path.is_file():
        raise InputError(base, "is not a file in the inbox", expected=f"a file directly inside the data folder's {INBOX}/")
    return path


UPLOADS_MAX_AGE_S = 24 * 3600
UPLOADS_MAX_BYTES = 2 * 2**30  # all kept uploads together; the oldest go first


def cleanup_uploads(
    data_dir: str | Path, older_than_s: float = UPLOADS_MAX_AGE_S, max_total_bytes: int = UPLOADS_MAX_BYTES
) -> int:
    """Remove unfinished uploads, uploads older than ``older_than_s``, then the oldest beyond ``max_total_bytes``; return how many."""
    from core.workflow.jobs import prune_folders

    root = Path(data_dir) / USER_RELEASE / UPLOADS
    if not root.is_dir():
        return 0
    n = 0
    now = time.time()
    for p in list(root.iterdir()):
        if p.name.startswith(".part-") and now - p.stat().st_mtime > 3600:  # another request may be writing a fresh one
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    kept = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".part-")]
    return n + prune_folders(kept, older_than_s, max_total_bytes)


def anchor_sets(data_dir: str | Path) -> dict[str, Path]:
    """Anchor folders of the releases under ``data_dir``: release name -> ``anchor_data`` folder."""
    from core.area2vec.anchors import ANCHOR_CSV, anchor_tensor_path
    from core.release.layout import ANCHOR_DIR, discover

    out: dict[str, Path] = {}
    for ref in discover(data_dir):
        root = ref.geojson.parent.parent.parent
        folder = root / ANCHOR_DIR
        if ref.release != USER_RELEASE and (folder / ANCHOR_CSV).is_file() and anchor_tensor_path(folder) is not None:
            out.setdefault(ref.release, folder)
    return out


# ---------------------------------------------------------------- reading input


@dataclass(frozen=True)
class Prepared:
    """Input turned into per-mesh counts, with what a preview shows (plain data in ``report``)."""

    counts: AreaCounts  # keyed by mesh code
    report: dict = field(default_factory=dict)


def _mesh_sizes(counts: AreaCounts) -> np.ndarray:
    """The mesh size of each area of counts keyed by mesh code.

    Raises:
        CoreError: the counts carry no mesh sizes (only counts keyed by ``mesh_id`` lack them, a bug here).
    """
    if counts.mesh_sizes is None:
        raise CoreError(f"per-mesh counts keyed by '{counts.key_column}' carry no mesh sizes")
    return counts.mesh_sizes


def input_kind(paths: Sequence[Path], columns: ColumnMap | None = None) -> str:
    """``gps`` or ``stays``: the mapping's kind, else what the first file's column names say.

    Raises:
        ColumnsNotRecognised: the names say neither (a column mapping is needed), with the file's columns.
        InputError: a mapped column the file lacks.
    """
    from core.mobility.columns import ColumnsNotRecognised, detect_kind
    from core.mobility.gps import read_columns

    names = read_columns(paths[0])
    if columns is not None:
        for path in paths:
            columns.check_against(names if path == paths[0] else read_columns(path), path.name)
        return columns.kind
    kind = detect_kind(names)
    if kind is None:
        raise ColumnsNotRecognised(paths[0].name, names)
    return kind


def input_columns(path: str | Path) -> list[str]:
    """The column names of an input file (for the column-mapping step)."""
    from core.mobility.gps import read_columns

    return read_columns(Path(path))


def input_warnings(report: dict, min_meshes: int = knobs.FEW_MESHES_WARN.default) -> list[str]:
    """Plain-language warnings about an input's report: a heavy privacy drop, too few meshes (k capped).

    Args:
        report: :func:`prepare`'s report (``privacy`` for raw GPS, ``meshes``).
        min_meshes: fewer meshes than this are warned about.
    """
    out: list[str] = []
    priv = report.get("privacy") or {}
    if priv.get("stays_in"):
        share = priv["stays_dropped"] / priv["stays_in"]
        if share > knobs.PRIVACY_DROP_WARN.default:
            out.append(
                f"The privacy rule dropped {share:.0%} of the stays ({priv['stays_dropped']:,} of {priv['stays_in']:,}): "
                f"they were in meshes where {priv['min_users']} or fewer distinct people stayed. "
                "More people (or a lower N, if your data's terms allow it) keep more of them."
            )
    n = report.get("meshes")
    if n is not None and n < min_meshes:
        out.append(
            f"Only {n:,} mesh{'es' if n != 1 else ''}: the map shows at most {max(n, 2)} clusters (k is capped by the mesh count), "
            "and an ApproximationLoss over so few meshes says little."
        )
    return out


def read_mapping(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``mesh_id -> code`` table (``mesh_id``, ``code``, optional ``mesh_size``): sorted ids, codes, sizes."""
    import pandas as pd

    from core.geo.meshcode import parse_code_column

    path = Path(path)
    frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path, dtype={MESH_CODE: str})
    for col in (MESH_ID, MESH_CODE):
        if col not in frame.columns:
            raise InputError(
                path.name,
                f"missing column '{col}'",
                expected=f"a mapping with columns {MESH_ID}, {MESH_CODE} (and optionally {MESH_SIZE})",
            )
    ids = pd.to_numeric(frame[MESH_ID], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(ids) | (np.floor(ids) != ids))
    if bad.size:
        raise InputError(
            path.name,
            "not an integer",
            column=MESH_ID,
            rows=(bad[:5] + 1).tolist(),
            values=frame[MESH_ID].iloc[bad[:5]].tolist(),
            n_bad=bad.size,
            expected="integer mesh ids",
        )
    sizes = frame[MESH_SIZE].to_numpy(np.int64) if MESH_SIZE in frame.columns else None
    codes, sizes = parse_code_column(frame[MESH_CODE].to_numpy(), path.name, MESH_CODE, sizes)
    ids = ids.astype(np.int64)
    order = np.argsort(ids, kind="stable")
    ids, codes, sizes = ids[order], codes[order], sizes[order]
    dup = np.flatnonzero(ids[1:] == ids[:-1])
    if dup.size:
        raise InputError(
            path.name,
            "a mesh id appears twice",
            column=MESH_ID,
            values=ids[dup[:5]].tolist(),
            n_bad=dup.size,
            expected="one code per mesh id",
        )
    return ids, codes, sizes


def apply_mapping(records: StayRecords, mapping: str | Path) -> StayRecords:
    """Stays keyed by ``mesh_id`` -> the same stays keyed by mesh ``code`` (every id must be mapped)."""
    from core.mobility.stays import StayRecords

    ids, codes, sizes = read_mapping(mapping)
    pos = np.searchsorted(ids, records.area_keys)
    pos = np.minimum(pos, len(ids) - 1)
    missing = ids[pos] != records.area_keys
    if missing.any():
        rows = np.flatnonzero(missing)
        raise InputError(
            records.source,
            f"mesh ids missing from the mapping {Path(mapping).name}",
            column=MESH_ID,
            values=np.unique(records.area_keys[rows])[:5].tolist(),
            n_bad=int(np.unique(records.area_keys[rows]).size),
            expected="every mesh_id of the stays in the mapping",
        )
    return StayRecords(
        records.source,
        MESH_CODE,
        codes[pos],
        records.stay_time,
        records.arrival_minute,
        records.weekday,
        records.is_holiday,
        sizes[pos],
        records.n_skipped,
    )


def _date_range(path: Path) -> list[str] | None:
    """First and last day of an optional ``date`` column of a stay table (the schema itself has none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from core.mobility.gps import read_columns

    if "date" not in [c.lower() for c in read_columns(path)]:
        return None
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            col = pq.read_table(path, columns=["date"])["date"]
        else:
            import pyarrow.csv as pacsv

            col = pacsv.read_csv(
                path, convert_options=pacsv.ConvertOptions(include_columns=["date"], column_types={"date": pa.string()})
            )["date"]
        days = col.cast(pa.string()).cast(pa.timestamp("s")) if not pa.types.is_temporal(col.type) else col
        lo, hi = pc.min_max(days).values()
        return [str(lo.as_py())[:10], str(hi.as_py())[:10]] if lo.is_valid else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError, OSError):
        return None  # a date column we cannot read is only a missing detail of the preview


def prepare(
    paths: Sequence[str | Path],
    mapping: str | Path | None = None,
    gps_options: GpsOptions | None = None,
    min_users: int = knobs.MIN_USERS.default,
    columns: ColumnMap | None = None,
) -> Prepared:
    """Read a stay table (or raw GPS, detected by its columns or named by ``columns``) into per-mesh counts keyed by code.

    The report's ``warnings`` say when the privacy rule dropped many stays or the meshes are few.

    Raises:
        ColumnsNotRecognised: the column names are neither GPS nor a stay table (a mapping is needed).
        InputError: anything wrong with the input, naming file, columns and rows (every failing column).
    """
    from core.mobility.stays import read_stays, stays_from_frame

    files = [Path(p) for p in paths]
    if not files:
        raise InputError("input", "no file")
    kind = input_kind(files, columns)
    report: dict = {"kind": kind, "files": [p.name for p in files], "min_users": int(min_users)}
    if columns is not None:
        report["columns"] = columns.as_dict()
    if kind == "gps":
        from core.mobility.gps import GpsOptions, gps_to_stays
        from core.mobility.privacy import apply_privacy

        options = gps_options or GpsOptions()
        if columns is not None:
            options = columns.gps_options(options)
        table, gps_report = gps_to_stays(files, options)
        if table.empty:
            raise InputError(
                ", ".join(report["files"])[:120],
                "no stays found in the fixes",
                expected="fixes that stay within 100 m for 5 minutes or more",
            )
        report.update(
            {
                "fixes": gps_report["fixes"],
                "people": gps_report["users"],
                "stays_detected": len(table),
                "date_range": [str(table["arrival"].min().date()), str(table["departure"].max().date())],
            }
        )
        training, priv = apply_privacy(table, min_users, source=files[0].name)
        report["privacy"] = priv
        if training.empty:
            raise InputError(
                ", ".join(report["files"])[:120],
                f"no mesh has more than {min_users} people, so nothing can be shared",
                expected=f"stays of more than {min_users} people in the same 50 m or 250 m mesh",
            )
        records = stays_from_frame(training, source=files[0].name)
    else:
        if len(files) > 1:
            raise InputError(
                ", ".join(p.name for p in files)[:120],
                "several stay tables at once",
                expected="one stay table (or several raw GPS files)",
            )
        records = read_stays(files[0], columns)
        report["date_range"] = _date_range(files[0])
        if records.key_column == MESH_ID:
            if mapping is None:
                raise InputError(
                    files[0].name,
                    "stays are keyed by mesh_id",
                    column=MESH_ID,
                    expected="a 'code' column with JIS mesh codes, or a mesh_id -> code mapping file",
                )
            records = apply_mapping(records, mapping)
            report["mapping"] = Path(mapping).name
    counts = records.to_counts()
    day_type = (records.weekday >= 5) | records.is_holiday
    report.update(
        {
            "stays": len(records),
            "meshes": counts.n_areas,
            "skipped": int(records.n_skipped),
            "meshes_by_size": {int(s): int(n) for s, n in zip(*np.unique(_mesh_sizes(counts), return_counts=True))},
            "weekday_share": [float(x) for x in np.bincount(records.weekday, minlength=7) / len(records)],
            "weekend_holiday_share": float(day_type.mean()),
            "holiday_stays": int(records.is_holiday.sum()),
        }
    )
    report["warnings"] = input_warnings(report)
    return Prepared(counts, report)


def preview(
    paths: Sequence[str | Path],
    mapping: str | Path | None = None,
    gps_options: GpsOptions | None = None,
    min_users: int = knobs.MIN_USERS.default,
    columns: ColumnMap | None = None,
) -> dict:
    """What the training view shows before training: counts, shares, where the meshes are, warnings (plain data)."""
    from core.geo.meshcode import code_bounds

    prep = prepare(paths, mapping, gps_options, min_users, columns)
    counts = prep.counts
    sizes = _mesh_sizes(counts)
    rep = dict(prep.report)
    s, w, n, e = code_bounds(counts.keys, sizes)
    rep["bounds"] = [float(s.min()), float(w.min()), float(n.max()), float(e.max())]
    pick = np.arange(counts.n_areas)
    if counts.n_areas > PREVIEW_MESHES:
        pick = np.sort(np.random.default_rng(0).choice(counts.n_areas, PREVIEW_MESHES, replace=False))
    rep["sample"] = {"codes": counts.keys[pick].tolist(), "sizes": sizes[pick].tolist()}
    return rep


# ---------------------------------------------------------------- training into data/user

# Share of the whole job each stage stands for, for one progress bar over all of them.
_STAGES = {"prepare": (0.0, 0.05), "decoder": (0.05, 0.70), "embed": (0.70, 0.85), "refine": (0.85, 0.96), "write": (0.96, 1.0)}


def _fraction(stage: str, step: float, total: float) -> float:
    lo, hi = _STAGES[stage]
    return lo + (hi - lo) * (min(step, total) / total if total else 1.0)


def add_dataset(
    data_dir: str | Path,
    paths: list[str | Path],
    name: str,
    period: str,
    anchors: str | None = None,
    config: TrainConfig | None = None,
    mapping: str | Path | None = None,
    gps_options: GpsOptions | None = None,
    min_users: int = knobs.MIN_USERS.default,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    columns: ColumnMap | None = None,
) -> dict:
    """Train one dataset (anchored to release ``anchors``'s anchor set, or free) and add it to ``data/user``.

    Args:
        progress: called with :class:`~core.progress.Progress` reports whose ``fraction`` (0..1)
            and ``eta`` (seconds, or ``None``) cover the whole job.
        cancel: polled during training; ``True`` stops it (:class:`core.errors.TrainingCancelled`).
        columns: which column is which, for files whose names are not recognised.

    Returns:
        Plain data: the dataset key (``user/<name>_<period>``) and its metrics.

    Raises:
        InputError: bad input, a bad or taken name, or an unknown anchor set.
    """
    from core.area2vec.anchors import read_anchor_set
    from core.area2vec.embeddings import train_embeddings
    from core.area2vec.trainer import TrainConfig

    t0 = time.perf_counter()
    full = dataset_name(name, period)
    root = Path(data_dir) / USER_RELEASE
    if dataset_exists(data_dir, full):
        raise InputError("dataset name", f"'{full}' already exists in {root}", expected="a new name or period label")

    def report(stage: str, step: float, total: float, loss: float | None = None, message: str = "") -> None:
        if progress is None:
            return
        frac = _fraction(stage, step, total)
        elapsed = time.perf_counter() - t0
        eta = elapsed / frac * (1 - frac) if frac > 0.08 else None
        progress(Progress(stage, int(step), max(int(total), 1), loss, elapsed, message, frac, eta))

    report("prepare", 0, 1, message="reading and validating the input")
    prep = prepare(paths, mapping, gps_options, min_users, columns)
    counts = prep.counts
    anchor_set = None
    anchor_path = None
    if anchors:
        sets = anchor_sets(data_dir)
        if anchors not in sets:
            raise InputError(
                "anchor set",
                f"no anchor set named {anchors!r}",
                expected=f"one of {', '.join(sorted(sets)) or '(none installed)'}",
            )
        anchor_path = sets[anchors]
        anchor_set = read_anchor_set(anchor_path)
    report("prepare", 1, 1, message=f"{prep.report['stays']:,} stays in {counts.n_areas:,} meshes")
    config = config or TrainConfig()

    def on_progress(p: Progress) -> None:
        report(p.stage if p.stage in _STAGES else "refine", p.step, p.total, p.loss, f"{p.stage} {p.step}/{p.total}")

    emb = train_embeddings(counts, anchor_set, config, on_progress, cancel)
    report("write", 0, 1, message="clustering and writing")
    metrics = dict(emb.metrics)
    metrics.update(
        {
            "dataset": f"{USER_RELEASE}/{full}",
            "anchor_release": anchors,
            "anchor_folder": str(anchor_path) if anchor_path else None,
            "schedule": metrics["config"]["schedule"] if anchors else None,
            "name": full,
            "given_name": str(name).strip(),
            "period": str(period).strip(),
            "input": dict(prep.report),
            "source_files": list(prep.report["files"]),
            "min_users": int(min_users),
            "warnings": list(prep.report.get("warnings", [])),
            "max_k": int(counts.n_areas),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    if cancel is not None and cancel():
        from core.errors import TrainingCancelled

        raise TrainingCancelled("training cancelled")
    metrics["seconds_total"] = time.perf_counter() - t0
    space_root = anchor_path.parent if anchor_path is not None else None  # the anchor release holds its clusters
    write_user_dataset(root, full, counts.keys, _mesh_sizes(counts), emb.vectors, emb.decoder, metrics, space_root)
    report("write", 1, 1, message="done")
    return {"dataset": f"{USER_RELEASE}/{full}", "metrics": metrics}


def dataset_exists(data_dir: str | Path, full_name: str) -> bool:
    from core.release.layout import CITY_DIR, GEOJSON_DIR

    return (Path(data_dir) / USER_RELEASE / CITY_DIR / GEOJSON_DIR / f"{full_name}.geojson").exists()


def write_user_dataset(
    root: Path,
    name: str,
    codes: np.ndarray,
    sizes: np.ndarray,
    vectors: np.ndarray,
    decoder: np.ndarray,
    metrics: dict,
    space_root: Path | None = None,
) -> None:
    """Label (joint clusters of its space), add complemented meshes, write metrics, model, then the GeoJSON (the commit point).

    Args:
        space_root: the release whose anchor set the dataset was trained with (its stored clusters
            give the labels); ``None``: trained free, a space of its own.
    """
    from core.mobility.privacy import with_complemented
    from core.release.clusters import dataset_labels
    from core.release.layout import CITY_DIR, UTIL_DIR, write_dataset, write_util_files

    labels_in = dataset_labels(vectors, decoder, space_root)
    all_codes, all_sizes, all_vectors, labels, comp = with_complemented(codes, sizes, vectors, labels_in)
    if not (root / UTIL_DIR / "stay_weight_matrix.npy").exists():
        write_util_files(root)
    write_text_atomic(
        ensure_writable_dir(root / CITY_DIR / METRICS_DIR) / f"{name}.json", json.dumps(metrics, indent=2, default=_plain) + "\n"
    )
    write_dataset(root, name, all_codes, all_sizes, all_vectors, decoder, labels, comp)  # model, then the GeoJSON


def _plain(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def read_metrics(geojson: str | Path) -> dict | None:
    """The metrics written beside a user dataset (``japan_city/metrics/<name>.json``), if any."""
    p = Path(geojson)
    m = p.parent.parent / METRICS_DIR / f"{p.stem}.json"
    try:
        return json.loads(m.read_text()) if m.is_file() else None
    except (OSError, ValueError):
        return None


def cleanup_incomplete(root: str | Path) -> list[str]:
    """Remove what a killed job left in a release: temporary files, models and metrics without a GeoJSON.

    An interrupted rename is finished first (its GeoJSON waits under a hidden name that records
    both names), and what an interrupted delete left is removed. Only call this when no job is
    writing (the job registry is free).
    """
    from core.release.layout import CITY_DIR, GEOJSON_DIR, MODEL_DIR

    city = Path(root) / CITY_DIR
    removed: list[str] = []
    if not city.is_dir():
        return removed
    if (city / GEOJSON_DIR).is_dir():
        for pending in sorted((city / GEOJSON_DIR).glob(f"{_RENAMING}*")):
            parts = pending.name[len(_RENAMING) :].split(_SEP)
            if len(parts) == 2 and all(_STORED_RE.fullmatch(x) for x in parts):
                _finish_rename(Path(root), parts[0], parts[1])
    for sub in (GEOJSON_DIR, MODEL_DIR, METRICS_DIR):
        if (city / sub).is_dir():
            for p in (city / sub).glob(f"{_TRASH}*"):
                p.unlink(missing_ok=True)
                removed.append(str(p.relative_to(root)))
    done = {p.stem for p in (city / GEOJSON_DIR).glob("*.geojson")} if (city / GEOJSON_DIR).is_dir() else set()
    for sub, suffix in ((MODEL_DIR, ".pth"), (METRICS_DIR, ".json"), (GEOJSON_DIR, ".geojson")):
        folder = city / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            orphan = p.suffix == suffix and p.stem not in done and not p.name.startswith(".")
            if p.name.startswith(".") and p.name.endswith(".tmp") or orphan:
                p.unlink(missing_ok=True)
                removed.append(str(p.relative_to(root)))
    return removed


# ---------------------------------------------------------------- managing user datasets: describe, rename, delete

_STORED_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,60}")
_RENAMING = ".rename~"  # .rename~OLD~NEW (no .geojson suffix: never listed): a rename in flight ('~' is never in a name)
_TRASH = ".trash~"
_SEP = "~"
_OPS_LOCK = ".dataset-op.lock"


class DatasetRefused(InputError):
    """A rename or delete that is not allowed (a release's dataset, a bad or taken name, a running job)."""


def check_stored_name(value: object, what: str = "new name") -> str:
    """A whole dataset name as stored (``kobe_2016-10b``): letters, digits, ``_`` and ``-``, no path characters.

    Raises:
        DatasetRefused: naming what is allowed.
    """
    text = "" if value is None else str(value).strip()
    if not _STORED_RE.fullmatch(text):
        raise DatasetRefused(
            what,
            f"{text[:60]!r} is not allowed" if text else "is empty",
            expected="a letter or digit, then letters, digits, '_' or '-' (no spaces, dots or slashes), at most 61 characters",
        )
    return text


def user_dataset_name(key: object) -> str:
    """The name of a dataset of the ``user`` release from its key (``user/NAME``).

    Raises:
        DatasetRefused: for a dataset of any other release (the demo, a downloaded OpenUAS release)
            or a malformed key.
    """
    text = str(key or "")
    release, sep, name = text.partition("/")
    if not sep or release != USER_RELEASE:
        raise DatasetRefused(
            text[:80] or "dataset",
            "is not one of your datasets: only datasets trained here (user/...) can be renamed or deleted",
            expected="a dataset of the 'user' release; the demo and downloaded releases are never changed",
        )
    return check_stored_name(name, "dataset")


def _dataset_files(root: Path, name: str) -> dict[str, Path]:
    """The files of user dataset ``name`` that exist (GeoJSON, model, metrics)."""
    from core.release.layout import CITY_DIR, GEOJSON_DIR, MODEL_DIR

    city = root / CITY_DIR
    candidates = {
        "geojson": city / GEOJSON_DIR / f"{name}.geojson",
        "model": city / MODEL_DIR / f"{name}.pth",
        "model_pt": city / MODEL_DIR / f"{name}.pt",
        "metrics": city / METRICS_DIR / f"{name}.json",
    }
    return {k: v for k, v in candidates.items() if v.exists()}


def _free_clusters(root: Path, name: str) -> Path:
    from core.release.clusters import CLUSTERS_DIR

    return root / CLUSTERS_DIR / f"free-{name}"


class _OpsLock:
    """One rename or delete at a time per data folder, and none while a training job runs."""

    def __init__(self, data_dir: Path) -> None:
        from core.workflow.jobs import JOBS_DIR

        self.data_dir = data_dir
        self.path = data_dir / USER_RELEASE / JOBS_DIR / _OPS_LOCK

    def __enter__(self) -> _OpsLock:
        from core.workflow.jobs import JobRegistry

        if JobRegistry(self.data_dir / USER_RELEASE).current() is not None:
            raise DatasetRefused("datasets", "a training job is running", expected="wait for it to finish (or cancel it)")
        ensure_writable_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if time.time() - self.path.stat().st_mtime < 60:
                raise DatasetRefused("datasets", "another rename or delete is under way", expected="try again") from None
            self.path.unlink(missing_ok=True)  # left by a killed process a minute ago or more
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def rename_dataset(data_dir: str | Path, key: object, new_name: object) -> str:
    """Rename user dataset ``key`` (``user/OLD``) to ``user/NEW``, atomically; return the new key.

    The GeoJSON (whose presence makes a dataset exist) is first renamed to a hidden name that
    records both names, the model, metrics and a free dataset's clusters follow, and the GeoJSON
    takes its new name last. Readers see the old dataset or the new one, never both or half of
    one; a crash in between is finished by :func:`cleanup_incomplete`.

    Raises:
        DatasetRefused: not a user dataset, a bad name, a name that exists, a running job.
    """
    data_dir = Path(data_dir)
    old = user_dataset_name(key)
    new = check_stored_name(new_name)
    root = data_dir / USER_RELEASE
    with _OpsLock(data_dir):
        files = _dataset_files(root, old)
        if "geojson" not in files:
            raise DatasetRefused(f"{USER_RELEASE}/{old}", "does not exist (deleted or renamed meanwhile?)")
        if new == old:
            return f"{USER_RELEASE}/{old}"
        if _dataset_files(root, new) or _free_clusters(root, new).exists():
            raise DatasetRefused(
                "new name", f"'{USER_RELEASE}/{new}' already exists", expected="a name no other dataset of yours has"
            )
        pending = files["geojson"].with_name(f"{_RENAMING}{old}{_SEP}{new}")
        os.rename(files["geojson"], pending)
        _finish_rename(root, old, new)
    return f"{USER_RELEASE}/{new}"


def _finish_rename(root: Path, old: str, new: str) -> None:
    """Move the model, metrics and free clusters of ``old`` to ``new``, then the pending GeoJSON (the commit)."""
    from core.release.layout import CITY_DIR, GEOJSON_DIR

    for part in ("model", "model_pt", "metrics"):
        src = _dataset_files(root, old).get(part)
        if src is not None:
            dst = src.with_name(new + src.suffix)
            if not dst.exists():
                os.rename(src, dst)
    metrics = _dataset_files(root, new).get("metrics")
    if metrics is not None:
        try:
            m = json.loads(metrics.read_text())
            m.update({"dataset": f"{USER_RELEASE}/{new}", "name": new})
            m.setdefault("renamed_from", []).append(old)
            write_text_atomic(metrics, json.dumps(m, indent=2, default=_plain) + "\n")
        except (OSError, ValueError):
            pass  # the record is a convenience; the dataset itself is complete
    src_c, dst_c = _free_clusters(root, old), _free_clusters(root, new)
    if src_c.is_dir() and not dst_c.exists():
        _rename_free_space(src_c, dst_c, f"free:{USER_RELEASE}/{old}", f"free:{USER_RELEASE}/{new}")
    pending = root / CITY_DIR / GEOJSON_DIR / f"{_RENAMING}{old}{_SEP}{new}"
    if pending.exists():
        os.rename(pending, root / CITY_DIR / GEOJSON_DIR / f"{new}.geojson")


def _rename_free_space(src: Path, dst: Path, old_space: str, new_space: str) -> None:
    """A free dataset's own clusters (and the names users gave them) follow it to its new name."""
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.glob("*.json"):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # a broken file is recomputed later
        if d.get("space") == old_space:
            d["space"] = new_space
        old_key, new_key = old_space.split(":", 1)[1], new_space.split(":", 1)[1]
        d["datasets"] = [new_key if k == old_key else k for k in d.get("datasets", [])]
        (tmp / f.name).write_text(json.dumps(d, indent=1))
    os.rename(tmp, dst)
    shutil.rmtree(src, ignore_errors=True)


def delete_dataset(data_dir: str | Path, key: object) -> list[str]:
    """Delete user dataset ``key`` (``user/NAME``): its GeoJSON first goes to a trash name (the dataset
    is gone at once, atomically), then its model, metrics and a free dataset's clusters are removed.

    Returns:
        The files removed (relative to the user release).

    Raises:
        DatasetRefused: not a user dataset, no such dataset, a running job.
    """
    data_dir = Path(data_dir)
    name = user_dataset_name(key)
    root = data_dir / USER_RELEASE
    tag = secrets.token_hex(4)
    with _OpsLock(data_dir):
        files = _dataset_files(root, name)
        if "geojson" not in files:
            raise DatasetRefused(f"{USER_RELEASE}/{name}", "does not exist (deleted or renamed meanwhile?)")
        # Trash names end in the tag, never in .geojson: a trashed dataset is never listed.
        trash = [(p, p.with_name(f"{_TRASH}{p.name}{_SEP}{tag}")) for p in files.values()]
        for src, dst in trash:  # the GeoJSON first: from here on the dataset does not exist
            os.rename(src, dst)
        clusters = _free_clusters(root, name)
        if clusters.is_dir():
            gone = clusters.with_name(f"{_TRASH}{clusters.name}{_SEP}{tag}")
            os.rename(clusters, gone)
            shutil.rmtree(gone, ignore_errors=True)
        for _, dst in trash:
            dst.unlink(missing_ok=True)
    return [str(src.relative_to(root)) for src, _ in trash]


def describe_dataset(key: str, metrics: dict | None, n_meshes: int, has_model: bool) -> list[tuple[str, str]]:
    """The facts of a dataset's card, as ``(label, value)`` text pairs, from its stored metrics.

    Older datasets lack some records: those read "not recorded". A release's own datasets (no
    metrics) say where they come from instead.
    """
    release = key.split("/", 1)[0]
    if metrics is None:
        return [
            ("dataset", key),
            ("kind", f"part of the release '{release}' (read-only: it cannot be renamed or deleted here)"),
            ("meshes", f"{n_meshes:,}"),
            ("model file", "yes" if has_model else "no (charts need it)"),
            ("space", f"the release's own anchored space ('{release}')"),
        ]
    m = metrics
    inp = m.get("input") or {}
    cfg = m.get("config") or {}

    def known(value: Any, fmt: Callable[[Any], str] = str) -> str:
        return "not recorded" if value in (None, "", []) else fmt(value)

    files = m.get("source_files") or inp.get("files")
    min_users = m.get("min_users", inp.get("min_users"))
    priv = inp.get("privacy") or {}
    privacy = known(min_users, lambda n: f"more than {n} distinct people per mesh")
    if priv.get("stays_in"):
        privacy += (
            f" ({priv['stays_dropped']:,} of {priv['stays_in']:,} stays dropped, {priv['stays_dropped'] / priv['stays_in']:.0%})"
        )
    elif inp.get("kind") == "stays":
        privacy += " (a stay table: applied before upload)"
    anchored = m.get("anchored")
    space = (
        f"anchored to '{m.get('anchor_release')}' ({known(m.get('n_anchors'), lambda n: f'{n} anchors')}, "
        f"{known(m.get('schedule') or cfg.get('schedule'))} schedule)"
        if anchored
        else "free (a space of its own: not comparable with other datasets)"
    )
    loss = m.get("approximation_loss")
    return [
        ("dataset", key),
        ("source files", known(files, lambda f: ", ".join(list(f)[:6]) + (" ..." if len(list(f)) > 6 else ""))),
        ("input", known(inp.get("kind"), lambda k: {"gps": "raw GPS", "stays": "stay table"}.get(str(k), str(k)))),
        ("created", known(m.get("created"), lambda c: str(c).replace("T", " ")[:19])),
        ("stays", known(m.get("n_stays"), lambda n: f"{int(n):,}")),
        ("meshes", f"{known(m.get('n_meshes'), lambda n: f'{int(n):,}')} trained, {n_meshes:,} on the map (with complemented)"),
        ("privacy N (min users)", privacy),
        ("space", space),
        ("ApproximationLoss", known(loss, lambda x: f"{float(x):.4f}")),
        ("epochs", known(m.get("epochs"), lambda e: f"{e} (at most {cfg.get('max_epochs', '?')})")),
        ("warnings", " ".join(m.get("warnings") or []) or ("none" if "warnings" in m else "not recorded")),
    ]
