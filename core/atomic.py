"""Write files and folders so that a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.errors import CoreError


def _umask() -> int:
    """The process's umask (read without changing it for long: set, then restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def readable(path: Path, folder: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would (0666 / 0777 less the umask).

    Temporary names are created 0600 / 0700; without this, every written file stays private to
    its owner whatever the user's umask says (a group sharing a data folder could not read it).
    """
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def check_output_dir(path: Path, overwrite: bool = False, keep: tuple[str, ...] = (), flag: str = "--overwrite") -> Path:
    """Check, before any work and without creating anything, that ``path`` can become a new output folder.

    A missing or empty folder is fine. A folder holding only the files named in ``keep`` (a previous
    run) is replaced as a whole only with ``overwrite``; a folder holding anything else is refused
    (replacing it would delete files that are not ours).

    Raises:
        CoreError: naming the folder and what to do.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise CoreError(f"output folder {path} is not a folder")
        names = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        if names:
            foreign = [n for n in names if n not in keep]
            if foreign:
                raise CoreError(
                    f"output folder {path} holds other files ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                    "choose a new or empty folder"
                )
            if not overwrite:
                raise CoreError(f"output folder {path} already holds a run; pass {flag} to replace it")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CoreError(f"output folder {path} cannot be created: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CoreError(f"output folder {path} cannot be created: {ancestor} is not writable")
    return path


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and check that files can be created in it.

    Raises:
        CoreError: naming the folder when it cannot be created or written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CoreError(f"output folder {path} cannot be created: {exc.strerror or exc}") from exc
    if not path.is_dir():
        raise CoreError(f"output folder {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise CoreError(f"output folder {path} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        readable(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success it replaces ``target``.

    The previous content of ``target`` (if any) is kept until the new folder is complete, then
    swapped out in two renames; on failure the temporary folder is removed and ``target`` stays.
    """
    target = Path(target)
    parent = ensure_writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    readable(tmp, folder=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
        old.rmdir()
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
