"""Issue 17: several server processes on one port (``app.py --workers``) and the per-request timeout (``--timeout``).

The app runs as a real subprocess over a tiny demo release. A background job (training) across
workers is exercised by ``test_browser_train.py``, which runs on the default of several workers.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request

import psutil
import pytest

from core import knobs
from dashboard.serve import app_process, build_status, running_app
from dashboard.server import WORKER_HEADER, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="several workers need fork (one process on Windows)")


def _get(url: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes, float]:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read(), time.monotonic() - t0
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read(), time.monotonic() - t0


def _workers(main: psutil.Process) -> set[int]:
    """The live worker processes of the server ``main`` (a killed one not yet reaped is left out)."""
    out = set()
    for c in main.children():
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "app.py" in " ".join(c.cmdline()):
                out.add(c.pid)
        except psutil.Error:
            continue
    return out


def _tile(url: str, z: int = 12) -> str:
    """A tile over the tiny release's Osaka dataset."""
    x = int((135.50 + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(34.69))) / math.pi) / 2 * 2**z)
    return f"{url}/tiles/{z}/{x}/{y}.png"


def test_the_default_is_several_workers():
    assert knobs.WORKERS.default >= 2


def test_two_workers_share_the_port_and_both_answer(data_copy):
    with running_app(data_copy, extra_args=("--workers", "2")) as url:
        port = int(url.rsplit(":", 1)[1])
        main = next(
            p
            for p in psutil.process_iter(["cmdline"])
            if "app.py" in " ".join(p.info["cmdline"] or []) and str(port) in p.info["cmdline"]
        )
        workers = _workers(main)
        assert len(workers) == 2
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while seen != workers and time.monotonic() < deadline:
            status, headers, body, _ = _get(url + "/_dash-layout")
            assert status == 200 and body.startswith(b"{")
            seen.add(int(headers[WORKER_HEADER]))
        assert seen == workers  # each request is answered by one of the two, and both take requests
        # A worker that dies is replaced; the port keeps answering meanwhile.
        victim = sorted(workers)[0]
        psutil.Process(victim).kill()
        deadline = time.monotonic() + 60
        while True:
            now = _workers(main)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.5)
        assert _get(url + "/_dash-layout")[0] == 200


def test_fresh_workers_serve_a_burst_of_script_requests(data_copy):
    """A browser asks for the page's ~15 scripts at once, and with several workers they land on a
    worker that may not have answered anything yet. Dash sets itself up (and records the scripts it
    may serve) on a worker's first request, unguarded: the requests beside that one were refused
    (HTTP 500 "dash is not a registered library", a blank page). Each worker now sets itself up
    before it serves."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    with running_app(data_copy, extra_args=("--workers", "2")) as url:
        # Both workers accept once their app is ready; /build-status is answered before the Dash app
        # (which stays untouched, as fresh as a worker the browser has not reached yet).
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(_get(url + "/build-status")[1][WORKER_HEADER])
        assert len(seen) == 2
        status, _, page, _ = _get(url + "/")
        assert status == 200
        scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page.decode())
        assert len(scripts) >= 5
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda src: _get(url + src), scripts * 4))
        refused = [(a[0], a[1].get(WORKER_HEADER), a[2][:120]) for a in answers if a[0] != 200]
        assert refused == [], refused
        assert len({a[1][WORKER_HEADER] for a in answers}) == 2  # both workers took part


def test_stopping_the_server_stops_every_worker(data_copy):
    with app_process(data_copy, ("--no-demo", "--workers", "2")) as (url, proc, _log):
        deadline = time.monotonic() + 60
        while (build_status(url) or {}).get("state") != "ready":
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.25)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        proc.terminate()
        proc.wait(20)
        gone, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive


def test_a_request_past_the_timeout_gets_503_and_the_server_carries_on(data_copy):
    """The first tile at a new k clusters the space (k-means, seconds on a busy box): a genuine, legitimate slow
    request. With a 0.01 s timeout the client gets 503 at once; the work finishes anyway, so asking again is quick."""
    with running_app(data_copy, extra_args=("--workers", "1", "--timeout", "0.01")) as url:
        tile = _tile(url) + "?ds=demo/osaka_2021_04&mode=cluster&k=37"
        status, headers, body, took = _get(tile)
        # A k-means over the space and a PNG take 0.1-0.3 s here: 10-30x the timeout (0.2 s was too close).
        assert status == 503, (status, body[:200])
        assert b"took longer than 0.01 s" in body and headers.get("Retry-After") == "5"
        assert took < 5.0  # cut at the timeout, not after the work
        deadline = time.monotonic() + 120
        while True:  # the server carries on: the clustering ends in the background and lands in the caches
            time.sleep(1.0)
            status, headers, body, took = _get(tile)
            if status == 200:
                break
            assert status == 503 and time.monotonic() < deadline
        assert body[:4] == b"\x89PNG" and headers["Content-Type"] == "image/png"
        assert _get(url + "/build-status")[0] == 200
        from dashboard.serve import LOGS

        log = LOGS[url].read_text(errors="replace")
        assert "request timeout: GET /tiles/" in log and "Traceback" not in log


def test_the_timeout_answers_503_while_the_work_goes_on():
    """The middleware alone, with an app that waits for the test: no timing can decide the outcome."""
    import threading

    from dashboard.server import RequestTimeout

    release, finished = threading.Event(), threading.Event()

    def slow_app(environ, start_response):
        release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        finished.set()
        return [b"done"]

    mw = RequestTimeout(slow_app, seconds=0.05, threads=1)
    seen: list = []
    body = mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/slow"}, lambda status, headers, exc=None: seen.append((status, headers)))
    assert seen[0][0].startswith("503") and ("Retry-After", "5") in seen[0][1] and b"longer than 0.05 s" in b"".join(body)
    assert not finished.is_set()
    release.set()  # the work goes on after the 503 and ends
    assert finished.wait(30)
    fast = RequestTimeout(slow_app, seconds=30, threads=1)
    body = fast({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda status, headers, exc=None: seen.append((status, headers)))
    assert seen[-1][0] == "200 OK" and b"".join(body) == b"done"
