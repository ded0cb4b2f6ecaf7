"""Run the app in a subprocess on a free local port (browser tests, screenshots)."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def running_app(data_dir: str | Path, timeout: float = 30.0, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start ``app.py`` over ``data_dir`` (no basemap, no demo build, plus ``extra_args``); yield its URL; stop it."""
    port = free_port()
    # The server's log goes to a file: a pipe nobody reads fills up after a few hundred requests and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="app-", suffix=".log", delete=False)  # noqa: SIM115 - closed in finally
    # Started from another working folder, as a user may: nothing may depend on the current folder.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--data", str(Path(data_dir).resolve()), "--no-demo", "--basemap", "none"]
        + ["--port", str(port), *extra_args],
        cwd=tempfile.gettempdir(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = Path(log.name).read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the app did not start: {out}") from None
                time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)
