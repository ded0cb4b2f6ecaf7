"""The first start's status logic and its WSGI switch (no server, no build: fakes and Flask's test client)."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask
from werkzeug.test import Client

from dashboard.server import COOKIE
from dashboard.startup import STATUS_PATH, StartupApp, build_status, progress_page

TOKEN = "s3cret-token-of-24-chars"


def _report(fraction, eta, elapsed, updated, stage="anchors", state="running", error=None):
    progress = {"stage": stage, "step": 120, "total": 800, "fraction": fraction, "eta": eta, "elapsed": elapsed}
    return {
        "state": state,
        "updated": updated,
        "progress": {**progress, "message": "fit 1 of 2, decoder 120/800"},
        "error": error,
    }


def test_status_while_building_counts_down_from_the_last_report():
    st = build_status("building", _report(0.412, 57.6, 40.0, updated=1000.0), now=1010.0)
    assert st["state"] == "building" and st["label"] == "Building the anchor set"
    assert st["message"] == "fit 1 of 2, decoder 120/800" and st["percent"] == 41.2
    assert st["eta"] == pytest.approx(47.6) and st["elapsed"] == pytest.approx(50.0) and st["eta_text"] == "48 s"
    late = build_status("building", _report(0.9, 5.0, 80.0, updated=1000.0), now=1030.0)
    assert late["eta"] == 0.0  # never below zero
    assert build_status("building", _report(0.01, None, 1.0, updated=1000.0), now=1000.5)["eta_text"] == ""


def test_status_before_during_and_after_the_build():
    assert build_status("starting", None, now=5.0)["percent"] is None
    early = build_status("building", None, now=5.0)  # the child has not reported yet
    assert early["percent"] is None and early["label"] == "Starting the build" and "loading" in early["message"]
    loading = build_status("loading", _report(1.0, 0.0, 70.0, updated=1.0, stage="done"), now=5.0)
    assert loading["percent"] == 100.0 and loading["label"] == "Opening the map"
    assert build_status("ready", None, now=5.0)["state"] == "ready"


def test_a_failed_build_shows_its_public_error():
    failed = _report(
        0.3, 20.0, 12.0, updated=1.0, stage="stays", state="failed", error="OSError: No space left on device: 'x.parquet'"
    )
    st = build_status("building", failed, now=2.0)  # the child wrote 'failed' before the server saw it exit
    assert st["state"] == "failed" and st["error"].startswith("OSError: No space left") and st["percent"] == 30.0
    assert build_status("failed", None, now=2.0, error="the build process was stopped by signal 9")["error"].endswith("signal 9")
    assert build_status("building", _report(0.3, 20.0, 12.0, updated=1.0), now=2.0)["error"] is None


def _dash_like() -> Flask:
    real = Flask("real")

    @real.route("/")
    def index():
        return "the real app"

    @real.route("/_dash-update-component", methods=["POST"])
    def update():
        return "{}"

    return real


def test_every_page_shows_progress_until_ready_then_the_app():
    state = {"s": build_status("building", _report(0.412, 57.6, 40.0, updated=1000.0), now=1000.0)}
    gate = StartupApp(lambda: state["s"])
    c = Client(gate)
    for path in ("/", "/?ds=demo/osaka_2021_04&k=10", "/some/page"):
        page = c.get(path, headers={"Accept": "text/html"})
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and "Building the anchor set" in text and "41 %" in text and "about 58 s left" in text
        assert page.headers["Cache-Control"] == "no-store"
    for method, path in (("POST", "/_dash-update-component"), ("GET", "/_dash-layout"), ("GET", "/tiles/demo/1/2/3.png")):
        busy = c.open(path, method=method)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert json.loads(c.get(STATUS_PATH).get_data())["percent"] == 41.2

    gate.ready(_dash_like())
    state["s"] = build_status("ready", None, now=1100.0)
    assert c.get("/").get_data(as_text=True) == "the real app"
    assert c.post("/_dash-update-component").status_code == 200
    assert json.loads(c.get(STATUS_PATH).get_data())["state"] == "ready"  # still answered, for pages polling at the switch


def test_the_token_guards_the_progress_page_the_status_and_the_app():
    gate = StartupApp(lambda: build_status("starting", None, now=0.0), token=TOKEN)
    c = Client(gate)
    assert c.get("/").status_code == 401 and c.get(STATUS_PATH).status_code == 401
    first = c.get(f"/?token={TOKEN}")
    assert first.status_code == 303 and COOKIE in first.headers["Set-Cookie"]
    assert c.get("/").status_code == 200 and c.get(STATUS_PATH).status_code == 200  # the cookie now
    gate.ready(_dash_like())
    assert Client(gate).get("/").status_code == 401  # the real app checks it too
    assert c.get("/").get_data(as_text=True) == "the real app"


def test_progress_page_escapes_what_it_shows():
    st = build_status("failed", None, now=0.0, error="<script>alert(1)</script>")
    page = progress_page({**st, "message": "<b>x</b>"})
    assert "<b>x</b>" not in page and "&lt;b&gt;" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; (the terminal running app.py" in page


def _fake_build(monkeypatch, script: str) -> None:
    """Replace the demo build's child process by ``script`` (Python, given the status file as ``PATH``)."""
    import subprocess
    import sys

    from dashboard.startup import ROOT, DemoBuild

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-c", f"PATH = {str(self.status_path)!r}\n" + script], cwd=ROOT)

    monkeypatch.setattr(DemoBuild, "start", start)


def test_a_failed_build_is_shown_and_the_terminal_says_what_to_do(tmp_path, monkeypatch, capsys):
    from dashboard.startup import Startup

    (tmp_path / "README.md").write_text("a data folder without a release")
    _fake_build(
        monkeypatch,
        "from core.progress import Progress, StatusFile\n"
        "s = StatusFile(PATH)\n"
        "s(Progress('stays', 1, 3, fraction=0.05, message='tokyo_2021_04: a month of stays'))\n"
        "s.fail(OSError(28, 'No space left on device', '/srv/area/data/.demo.x.tmp/stays/tokyo_2021_04.parquet'))\n"
        "raise SystemExit(2)\n",
    )
    startup = Startup(tmp_path, lambda: pytest.fail("no app after a failed build"), "quick", url="http://127.0.0.1:8050")
    startup._run()  # what the background thread runs
    st = startup.status()
    assert st["state"] == "failed" and st["percent"] == 5.0 and st["label"] == "Simulating a month of stays per dataset"
    assert st["error"] == "OSError: [Errno 28] No space left on device: 'tokyo_2021_04.parquet'"
    page = Client(startup.app).get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "The demo build failed" in page and "No space left on device" in page and "/srv" not in page
    err = capsys.readouterr().err
    assert f"python -m core demo --data {tmp_path.resolve()} --scale quick" in err and "--no-demo" in err


def test_the_app_opens_once_the_build_reports_done(tmp_path, monkeypatch):
    from dashboard.startup import Startup

    # The child reports 'done' and takes its time to exit (as a big build freeing its memory does).
    _fake_build(monkeypatch, "from core.progress import StatusFile\nimport time\nStatusFile(PATH).done()\ntime.sleep(60)\n")
    prepared: list[int] = []
    startup = Startup(tmp_path, _dash_like_app, "quick", url="http://x", prepare=lambda: prepared.append(1))
    try:
        t0 = time.monotonic()
        startup._run()
        assert time.monotonic() - t0 < 30 and startup.status()["state"] == "ready" and prepared == [1]
        assert Client(startup.app).get("/").get_data(as_text=True) == "the real app"
    finally:
        startup.stop()
    assert startup.build is not None and startup.build.proc is not None and startup.build.proc.poll() is not None


def test_a_folder_with_a_release_is_served_without_a_build(tmp_path, monkeypatch):
    from dashboard.startup import DemoBuild, Startup, _may_hold_a_release

    assert not _may_hold_a_release(tmp_path)
    (tmp_path / ".cache" / "x").mkdir(parents=True)
    (tmp_path / ".cache" / "x" / "a.geojson").write_text("{}")  # hidden folders do not count
    assert not _may_hold_a_release(tmp_path)
    gj = tmp_path / "rel" / "japan_city" / "geojson"
    gj.mkdir(parents=True)
    (gj / "tokyo_2021_04.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    assert _may_hold_a_release(tmp_path)
    monkeypatch.setattr(DemoBuild, "start", lambda self: pytest.fail("no build over a release"))
    startup = Startup(tmp_path, _dash_like_app, "quick", url="http://x")
    startup._run()
    assert startup.status()["state"] == "ready"


class _DashLike:
    def __init__(self) -> None:
        self.server = _dash_like()


def _dash_like_app() -> _DashLike:
    return _DashLike()
