"""Run the app in a subprocess on a free local port (browser tests, screenshots)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_status(url: str, timeout: float = 2.0) -> dict | None:
    """The app's ``/build-status`` answer, or ``None`` while nothing answers on its port."""
    try:
        with urllib.request.urlopen(url + "/build-status", timeout=timeout) as r:
            return json.loads(r.read())
    except OSError:
        return None


@contextlib.contextmanager
def app_process(data_dir: str | Path, args: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """Start ``app.py`` over ``data_dir`` (no basemap, plus ``args``) on a free port; yield its URL, process and log; stop it.

    Yields at once: the caller waits for what it needs (:func:`build_status`).
    """
    port = free_port()
    # The server's log goes to a file: a pipe nobody reads fills up after a few hundred requests and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="app-", suffix=".log", delete=False)  # noqa: SIM115 - closed in finally
    # Started from another working folder, as a user may: nothing may depend on the current folder.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--data", str(Path(data_dir).resolve()), "--basemap", "none"]
        + ["--port", str(port), *args],
        cwd=tempfile.gettempdir(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc, Path(log.name)
    finally:
        proc.terminate()  # the app stops a demo build it started
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)


LOGS: dict[str, Path] = {}  # URL of a running app -> its log file (tests read it when a page fails)


def server_errors(url: str, limit: int = 4000) -> str:
    """The tracebacks in a running app's log (empty when none): what a failing browser test should show."""
    path = LOGS.get(url)
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace")
    start = text.find("Traceback")
    return text[max(start - 300, 0) : start + limit] if start >= 0 else ""


@contextlib.contextmanager
def running_app(data_dir: str | Path, timeout: float = 30.0, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start ``app.py`` over ``data_dir`` (no basemap, no demo build, plus ``extra_args``); yield its URL once the app is ready; stop it."""
    with app_process(data_dir, ("--no-demo", *extra_args)) as (url, proc, log):
        deadline = time.monotonic() + timeout
        while (state := (build_status(url) or {}).get("state")) != "ready":
            if state == "failed" or proc.poll() is not None or time.monotonic() > deadline:
                out = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the app did not start: {out}")
            time.sleep(0.25)
        LOGS[url] = log
        try:
            yield url
        finally:
            LOGS.pop(url, None)  # the log file goes with the process
