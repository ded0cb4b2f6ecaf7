"""One training job at a time per data folder, findable again after a page reload, cancellable.

The registry is a folder (``data/user/.jobs``): ``active.json`` is the lock (created with
``O_EXCL``, so two requests cannot both take it) naming the job, the process that owns it and its
worker; every job has ``<id>/status.json`` (written atomically by the worker: stage, step, loss,
ETA, and at the end ``done`` / ``cancelled`` / ``failed``). A lock whose processes are gone is
stale: the next look at the registry closes that job as stopped and cleans what it left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

from core.atomic import ensure_writable_dir, write_text_atomic
from core.errors import CoreError

JOBS_DIR = ".jobs"
LOCK = "active.json"
STATUS = "status.json"
CANCEL = "cancel"
FINAL_STATES = ("done", "cancelled", "failed", "stopped")


class JobBusy(CoreError):
    """Another job is running."""


def _start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a reused pid, not a zombie)."""
    import psutil

    if not pid:
        return False
    try:
        p = psutil.Process(int(pid))
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - float(started)) < 0.01
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def prune_folders(folders: list[Path], max_age_s: float, max_total_bytes: int) -> int:
    """Remove ``folders`` (oldest first by modification time) older than ``max_age_s`` or beyond ``max_total_bytes`` in all."""
    import shutil

    now = time.time()
    dated = sorted(((p.stat().st_mtime, p) for p in folders if p.is_dir()), key=lambda x: x[0])
    sizes = {p: _folder_bytes(p) for _, p in dated}
    total = sum(sizes.values())
    gone = 0
    for mtime, p in dated:
        if now - mtime > max_age_s or total > max_total_bytes:
            shutil.rmtree(p, ignore_errors=True)
            total -= sizes[p]
            gone += 1
    return gone


class JobRegistry:
    """Jobs of one release folder (``data/user``)."""

    def __init__(self, release_root: str | Path) -> None:
        self.release_root = Path(release_root)
        self.root = self.release_root / JOBS_DIR

    # -------------------------------------------------- paths and files

    def job_dir(self, job_id: str) -> Path:
        if not job_id or not all(c.isalnum() or c == "-" for c in job_id):
            raise CoreError(f"bad job id {job_id!r}")
        return self.root / job_id

    def status_path(self, job_id: str) -> Path:
        """The job's status file (JSON, written atomically by the worker)."""
        return self.job_dir(job_id) / STATUS

    def cancel_path(self, job_id: str) -> Path:
        """The job's cancel flag: the worker stops when this file appears."""
        return self.job_dir(job_id) / CANCEL

    def new_id(self) -> str:
        return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]

    def _lock_path(self) -> Path:
        return self.root / LOCK

    def _read_lock(self) -> dict | None:
        try:
            return json.loads(self._lock_path().read_text())
        except (OSError, ValueError):
            return None

    def read_status(self, job_id: str) -> dict:
        try:
            return json.loads(self.status_path(job_id).read_text())
        except (OSError, ValueError):
            return {"state": "starting", "job": job_id}

    def write_status(self, job_id: str, status: dict) -> None:
        d = ensure_writable_dir(self.job_dir(job_id))
        write_text_atomic(d / STATUS, json.dumps({**status, "job": job_id, "updated": time.time()}, default=str))

    # -------------------------------------------------- lock

    def _alive(self, lock: dict) -> bool:
        return process_alive(lock.get("owner"), lock.get("owner_started")) or process_alive(
            lock.get("worker"), lock.get("worker_started")
        )

    def start(self, job_id: str, info: dict) -> None:
        """Take the lock for ``job_id`` (owned by this process).

        Raises:
            JobBusy: when another job holds it and its processes are alive.
        """
        ensure_writable_dir(self.root)
        self.job_dir(job_id)  # the id is checked; its folder is made only once the lock is ours
        me = os.getpid()
        record = {
            "job": job_id,
            "owner": me,
            "owner_started": _start_time(me),
            "worker": None,
            "worker_started": None,
            "since": time.time(),
            "info": info,
        }
        for _ in range(3):
            try:
                fd = os.open(self._lock_path(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self._read_lock()
                if held is not None and self._alive(held):
                    name = (held.get("info") or {}).get("name", held.get("job"))
                    raise JobBusy(
                        f"another training job is running ({name}, started {time.strftime('%H:%M:%S', time.localtime(held.get('since', 0)))}); "
                        "one job runs at a time: wait for it or cancel it"
                    ) from None
                self._close_stale(held)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            ensure_writable_dir(self.job_dir(job_id))
            self.write_status(job_id, {"state": "starting", "stage": "prepare", "fraction": 0.0, "info": info})
            return
        raise JobBusy("the job lock is contended; try again")

    def set_worker(self, job_id: str, pid: int) -> None:
        """Record the worker process of the running job (so that a reloaded page can cancel it)."""
        held = self._read_lock()
        if not held or held.get("job") != job_id:
            raise CoreError(f"job {job_id} does not hold the lock")
        held.update({"worker": int(pid), "worker_started": _start_time(int(pid))})
        write_text_atomic(self._lock_path(), json.dumps(held))

    def finish(self, job_id: str) -> None:
        """Release the lock if ``job_id`` holds it."""
        held = self._read_lock()
        if held and held.get("job") == job_id:
            self._lock_path().unlink(missing_ok=True)

    def _close_stale(self, held: dict | None) -> None:
        """The lock's processes are gone (killed, crashed, cancelled): record how it ended, free the lock, clean up."""
        from core.workflow.userdata import cleanup_incomplete

        if held is not None and held.get("job"):
            job = held["job"]
            st = self.read_status(job)
            if st.get("state") not in FINAL_STATES:
                cancelled = (self.job_dir(job) / CANCEL).exists()
                self.write_status(
                    job,
                    {
                        **st,
                        "state": "cancelled" if cancelled else "stopped",
                        "message": "cancelled" if cancelled else "the job stopped without finishing (killed or crashed)",
                    },
                )
        # Only one process wins this rename; the others see the lock gone and simply retry.
        stale = self.root / f".stale-{uuid.uuid4().hex}"
        try:
            os.rename(self._lock_path(), stale)
            stale.unlink(missing_ok=True)
        except FileNotFoundError:
            return
        cleanup_incomplete(self.release_root)

    # -------------------------------------------------- queries

    def current(self) -> dict | None:
        """The running job's status (with ``job`` and ``info``), or ``None``; closes a stale lock on the way."""
        held = self._read_lock()
        if held is None:
            return None
        if not self._alive(held):
            # A job just starting has no worker yet, but its owner is alive; here both are gone.
            self._close_stale(held)
            return None
        return {**self.read_status(held["job"]), "job": held["job"], "info": held.get("info") or {}}

    def prune(self, max_age_s: float = 7 * 24 * 3600, max_total_bytes: int = 200 * 2**20) -> int:
        """Remove finished job folders older than ``max_age_s``, then the oldest until all fit in ``max_total_bytes``.

        The running job's folder is never removed. Returns how many folders went.
        """
        if not self.root.is_dir():
            return 0
        held = self._read_lock()
        running = held.get("job") if held and self._alive(held) else None
        jobs = sorted(
            (p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != running),
            key=lambda p: p.name,
        )
        return prune_folders(jobs, max_age_s, max_total_bytes)

    def last(self) -> dict | None:
        """Status of the most recently started job (running or not), for a page opened later."""
        if not self.root.is_dir():
            return None
        cur = self.current()
        if cur is not None:
            return cur
        jobs = sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
        return self.read_status(jobs[-1].name) if jobs else None

    def cancel(self, grace: float = 3.0) -> bool:
        """Ask the running job to stop (SIGTERM to its worker, SIGKILL after ``grace`` s); ``False`` if none runs."""
        import psutil

        held = self._read_lock()
        if held is None:
            return False
        # The flag first: whoever closes the job (the worker, or a later look at a stale lock) records "cancelled".
        (self.job_dir(held["job"]) / CANCEL).touch()
        if not self._alive(held):
            self._close_stale(held)
            return True
        procs = []
        if process_alive(held.get("worker"), held.get("worker_started")):
            procs.append(psutil.Process(held["worker"]))
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        return True

    def cancel_requested(self, job_id: str) -> bool:
        return self.cancel_path(job_id).exists()
