"""Server-side state of the People view: its sources, loaded people, projections and selections.

The browser only ever holds a source key, a selection token and filter values; the people, their
stays and the selected rows stay here (bounded caches). Sources, found under the data folder:

- ``run:<name>``: a walkers run, ``DATA/walkers/<name>/`` or ``DATA/people/<name>/`` (``users.csv``
  + ``metrics.json``, written by ``python -m core walkers train TRAJ --out DIR``);
- ``stays:<release>/<name>``: a demo stays file (``DATA/<release>/stays/<name>.parquet``), with
  simple per-person features (no model run);
- ``inbox:<file>``: a HuMob / LYMob or stay file in ``DATA/inbox`` (simple features);
- ``file:<n>``: files given with ``python app.py --people FILE``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from core.walkers.explore import (
    People,
    Projection,
    StayFilter,
    heat_classes,
    load_people,
    load_run,
    project,
    region_counts,
    stay_mask,
)

from .catalog import app_context

_TOKEN_RE = re.compile(r"[0-9a-f]{16}")
_RUN_DIRS = ("walkers", "people")
_LOCK = threading.RLock()
_PEOPLE: OrderedDict[str, People] = OrderedDict()
_PROJ: OrderedDict[tuple[str, str], Projection] = OrderedDict()
_SELECTIONS: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()
_HEAT: OrderedDict[tuple, np.ndarray] = OrderedDict()
_MAX_PEOPLE, _MAX_SELECTIONS, _MAX_HEAT = 3, 64, 32


def _put(cache: OrderedDict, key, value, size: int):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def sources(data_dir: Path | None = None, files: tuple[Path, ...] | None = None) -> dict[str, tuple[str, Path]]:
    """Every source the view can open: key -> (label, path)."""
    if data_dir is None:
        ctx = app_context()
        data_dir, files = ctx.data_dir, ctx.people_files
    out: dict[str, tuple[str, Path]] = {}
    for sub in _RUN_DIRS:
        for m in sorted((data_dir / sub).glob("*/metrics.json")):
            if (m.parent / "users.csv").is_file():
                out[f"run:{m.parent.name}"] = (f"{m.parent.name} (model run)", m.parent)
    for p in sorted(data_dir.glob("*/stays/*.parquet")):
        out[f"stays:{p.parent.parent.name}/{p.stem}"] = (f"{p.parent.parent.name}/{p.stem} (simple features)", p)
    inbox = data_dir / "inbox"
    if inbox.is_dir():
        for p in sorted(inbox.iterdir()):
            if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith((".csv", ".csv.gz", ".parquet")):
                out[f"inbox:{p.name}"] = (f"inbox/{p.name} (simple features)", p)
    for i, p in enumerate(files or ()):
        out[f"file:{i}"] = (f"{Path(p).name} (simple features)", Path(p))
    return out


def default_source(options: dict[str, tuple[str, Path]]) -> str | None:
    """A walkers run when there is one, else the first stays file."""
    runs = [k for k in options if k.startswith("run:")]
    return runs[0] if runs else next(iter(options), None)


def get(key: str) -> People:
    """The people of a source (KeyError for an unknown key)."""
    with _LOCK:
        if key in _PEOPLE:
            _PEOPLE.move_to_end(key)
            return _PEOPLE[key]
    path = sources()[key][1]
    people = load_run(path) if key.startswith("run:") else load_people(path)
    with _LOCK:
        return _put(_PEOPLE, key, people, _MAX_PEOPLE)


def projection(key: str, method: str) -> Projection:
    with _LOCK:
        if (key, method) in _PROJ:
            return _PROJ[(key, method)]
    proj = project(get(key).embeddings, method)
    with _LOCK:
        return _put(_PROJ, (key, method), proj, 2 * _MAX_PEOPLE)


_MAX_SELECTION_FILES = 256  # selections kept on disk for the server's other worker processes


def _selection_dir() -> Path | None:
    try:
        return app_context().data_dir / ".cache" / "people-selections"
    except RuntimeError:  # no app (a library caller): memory only
        return None


def remember_selection(key: str, rows: np.ndarray) -> str:
    """Keep a selection on the server; the browser gets its token (16 hex digits).

    The selection is also written to the data folder's cache (atomically, the oldest beyond 256
    removed): with several server processes the next request (a heatmap tile) may reach another one.
    """
    rows = np.asarray(rows, np.int64)
    token = hashlib.sha1(key.encode() + b"\0" + rows.tobytes()).hexdigest()[:16]
    with _LOCK:
        _put(_SELECTIONS, token, (key, rows), _MAX_SELECTIONS)
    folder = _selection_dir()
    if folder is not None:
        from core.atomic import atomic_path

        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{token}.npz"
        if not target.exists():
            with atomic_path(target) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, key=np.array(key), rows=rows)
            files = sorted(folder.glob("*.npz"), key=lambda f: f.stat().st_mtime_ns)
            for old in files[:-_MAX_SELECTION_FILES]:
                old.unlink(missing_ok=True)
    return token


def selection(token: object) -> tuple[str, np.ndarray] | None:
    """The selection behind a token (None when malformed or forgotten)."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return None
    with _LOCK:
        if token in _SELECTIONS:
            return _SELECTIONS[token]
    folder = _selection_dir()
    if folder is None or not (folder / f"{token}.npz").is_file():
        return None
    try:
        with np.load(folder / f"{token}.npz", allow_pickle=False) as z:
            found = (str(z["key"]), np.asarray(z["rows"], np.int64))
    except (OSError, ValueError, KeyError):
        return None  # removed meanwhile, or not ours: as forgotten
    with _LOCK:
        return _put(_SELECTIONS, token, found, _MAX_SELECTIONS)


def heat(key: str, token: str | None, flt: StayFilter) -> np.ndarray:
    """Colour class per region of ``key`` for the selection (all people without a token) and filter."""
    cache_key = (key, token, flt)
    with _LOCK:
        if cache_key in _HEAT:
            return _HEAT[cache_key]
    people = get(key)
    sel = selection(token) if token else None
    rows = sel[1] if sel is not None and sel[0] == key else None
    values = heat_classes(region_counts(people, stay_mask(people, rows, flt)))
    with _LOCK:
        _put(_HEAT, cache_key, values, _MAX_HEAT)
    return values


def index(key: str):
    """The :class:`~core.geo.tiles.MeshIndex` of a source's regions (built once per loaded source)."""
    from core.geo.tiles import MeshIndex

    people = get(key)
    if "_index" not in people._cache:
        people._cache["_index"] = MeshIndex(people.codes, people.sizes)
    return people._cache["_index"]
