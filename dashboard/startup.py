"""The first start: the server answers at once and shows the demo build's progress until the app is ready.

``python app.py`` on a fresh clone has no release to show: it builds the demo release first (a minute
on a quiet 2-core machine, many on a busy one). :class:`Startup` runs that build in a child process
(``python -m core demo --status FILE``, which keeps its latest progress report in a JSON file), then
builds the Dash app in a background thread; meanwhile :class:`StartupApp` (the WSGI app the server
runs) answers every page with a small self-contained progress page (stage, percent, ETA) that polls
``/build-status`` and reloads itself into the real app when it is ready. Other requests (Dash's
callbacks, tiles, assets) get HTTP 503 with ``Retry-After`` until then. A failed build shows its
error on the page (one line, no server paths) and tells the terminal what to do.
"""

from __future__ import annotations

import contextlib
import html
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.progress import StatusFile, format_seconds, public_message, read_status
from dashboard.server import install_token_gate

ROOT = Path(__file__).resolve().parent.parent
STATUS_PATH = "/build-status"
STATUS_FILE = Path(".cache") / "demo-build.json"  # under the data folder
RETRY_S = 2

# What each phase of the demo build does, in words (core.simulation.demo.PHASES names them).
STAGE_LABELS = {
    "stays": "Simulating a month of stays per dataset",
    "anchors": "Building the anchor set",
    "train": "Training each dataset, anchored",
    "cluster": "Joint clusters of the shared space",
    "write": "Writing the release",
    "done": "Build finished",
}
STATE_LABELS = {
    "starting": "Starting",
    "building": "Building the demo release",
    "loading": "Opening the map",
    "ready": "Ready",
    "failed": "The demo build failed",
}
_STATE_MESSAGES = {"starting": "looking for releases in the data folder", "loading": "reading the datasets, building the app"}


def build_status(state: str, report: dict[str, Any] | None, now: float, error: str | None = None) -> dict[str, Any]:
    """The JSON that ``/build-status`` answers: the startup's state and the build's latest report, aged to ``now``.

    Args:
        state: ``starting`` (looking for releases), ``building`` (the demo build runs), ``loading``
            (the Dash app is being built), ``ready`` or ``failed``.
        report: what the build's status file holds (see :class:`core.progress.StatusFile`), if any.
        now: the current time (epoch seconds); the report's ETA and elapsed time are moved on by
            the time since it was written, so the page counts down between reports.
        error: the failure, as one public line.

    Returns:
        ``state``, ``title``, ``stage`` (a phase name), ``label`` (the phase in words), ``message``,
        ``percent`` (0-100 or ``None``), ``eta`` and ``elapsed`` (seconds or ``None``),
        ``eta_text``, and ``error``.
    """
    p = (report or {}).get("progress") or {}
    age = max(now - float((report or {}).get("updated") or now), 0.0)
    fraction = p.get("fraction")
    eta, elapsed = p.get("eta"), p.get("elapsed")
    if state == "building" and report is not None and report.get("state") == "failed":  # before the process is reaped
        state, error = "failed", error or report.get("error")
    if state in ("loading", "ready"):
        fraction, eta = 1.0, 0.0
    elif state == "starting":
        fraction = eta = None
    eta = max(float(eta) - age, 0.0) if eta is not None and state == "building" else eta
    elapsed = float(elapsed) + (age if state == "building" else 0.0) if elapsed is not None else None
    stage = str(p.get("stage") or "")
    if state in ("building", "failed"):
        label = STAGE_LABELS.get(stage, stage) or ("Starting the build" if state == "building" else "The app could not start")
        message = str(p.get("message") or ("" if stage else "loading the simulation and training code"))
    else:
        label, message = STATE_LABELS.get(state, state), _STATE_MESSAGES.get(state, "")
    return {
        "state": state,
        "title": STATE_LABELS.get(state, state),
        "stage": stage,
        "label": label,
        "message": message,
        "percent": None if fraction is None else round(100.0 * min(max(float(fraction), 0.0), 1.0), 1),
        "eta": None if eta is None else round(eta, 1),
        "elapsed": None if elapsed is None else round(elapsed, 1),
        "eta_text": "" if eta is None else format_seconds(eta),
        "error": error if state == "failed" else None,
    }


class DemoBuild:
    """The demo release built by ``python -m core demo`` in a child process, reporting to a status file.

    The child owns the terminal's progress bar; this side only reads its status file. A child that
    outlives the server would keep building, so :meth:`stop` interrupts it (it then removes its
    half-built folder) and the server stops it when it stops itself.
    """

    def __init__(self, data_dir: Path, scale: str) -> None:
        self.data_dir = data_dir.resolve()
        self.scale = scale
        self.status_path = self.data_dir / STATUS_FILE
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.status_path.unlink(missing_ok=True)  # a previous build's report is not this one's
        argv = ["demo", "--data", str(self.data_dir), "--scale", self.scale, "--status", str(self.status_path)]
        # ``python -m core demo ...``, with Ctrl-C's default handler even where the server was started
        # with SIGINT ignored (a background job of a script): :meth:`stop` relies on it to clean up.
        code = (
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"from core.cli import main; sys.exit(main({argv!r}))"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)

    def report(self) -> dict[str, Any] | None:
        return read_status(self.status_path)

    def wait(self, poll_s: float = 0.2) -> int:
        """Wait until the build is done (0) or its process ended (its exit status).

        The build is done when its status file says so: its release is in place by then, and the
        process's own exit (freeing its memory) may take seconds more on a busy machine.
        """
        assert self.proc is not None
        while (code := self.proc.poll()) is None:
            if (self.report() or {}).get("state") == "done":
                return 0
            time.sleep(poll_s)
        return code

    def stop(self, grace: float = 5.0) -> None:
        """Interrupt the build (Ctrl-C: it cleans up), kill it if it has not stopped after ``grace`` seconds."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class FollowedBuild:
    """A demo build that another process runs (the main process of several server workers): read its status file.

    The main process starts the build before it starts the workers and records a failure the build
    could not write itself (killed, out of memory), so the file's ``done`` or ``failed`` ends the wait.
    """

    def __init__(self, data_dir: Path, scale: str) -> None:
        self.data_dir = data_dir.resolve()
        self.scale = scale
        self.status_path = self.data_dir / STATUS_FILE

    def report(self) -> dict[str, Any] | None:
        return read_status(self.status_path)

    def wait(self, poll_s: float = 0.2) -> int:
        """0 once the status file says ``done``, 1 once it says ``failed``."""
        while (state := (self.report() or {}).get("state")) not in ("done", "failed"):
            time.sleep(poll_s)
        return 0 if state == "done" else 1

    def stop(self, grace: float = 5.0) -> None:
        """Nothing to stop here: the main process owns the build."""


class Startup:
    """Find a release, build the demo when there is none, then build the app; report each step.

    Args:
        data_dir: the data folder.
        make_app: builds the Dash app (reads the catalog): called once, in the background thread.
        demo_scale: the demo scale to build when the folder has no release; ``None``: never build.
        prepare: work that does not need the data (imports), run while the demo builds.
        url: where the server answers, for the terminal's messages.
        token: access token required by every page (``None``: none).
        follow: this is one of several server workers and the main process runs the demo build
            (see :meth:`begin_build`): show its progress from its status file, say nothing on the terminal.
    """

    def __init__(
        self,
        data_dir: Path,
        make_app: Callable[[], Any],
        demo_scale: str | None,
        url: str,
        token: str | None = None,
        prepare: Callable[[], object] | None = None,
        follow: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.make_app = make_app
        self.prepare = prepare
        self.url = url
        self.follow = follow
        self.build: DemoBuild | FollowedBuild | None = None
        if demo_scale:
            self.build = FollowedBuild(data_dir, demo_scale) if follow else DemoBuild(data_dir, demo_scale)
        self._t0 = 0.0
        self.state = "starting"
        self.error: str | None = None
        self.app = StartupApp(self.status, token)
        self._thread = threading.Thread(target=self._run, name="startup", daemon=True)

    def status(self) -> dict[str, Any]:
        """The ``/build-status`` answer now (see :func:`build_status`)."""
        report = self.build.report() if self.build is not None and self.state in ("building", "failed") else None
        return build_status(self.state, report, time.time(), self.error)

    def start(self) -> None:
        """Start the background work (returns at once)."""
        self._thread.start()

    def wait_ready(self) -> None:
        """Wait until the background work has ended (the app is ready, or the start failed)."""
        self._thread.join()

    def stop(self) -> None:
        """Stop a running demo build (when the server stops)."""
        if self.build is not None:
            self.build.stop()

    def _say(self, text: str) -> None:
        if not self.follow:  # the main process tells the terminal, once
            print(text, file=sys.stderr, flush=True)

    def _run(self) -> None:
        try:
            if self.needs_demo() and not self._build_demo():
                return
            self.state = "loading"
            app = self.make_app()
            self.app.ready(app.server)
            self.state = "ready"
        except Exception as exc:  # the page shows one line; the terminal gets the whole story
            import traceback

            traceback.print_exc()
            self.stop()  # a build still running would be for nothing
            self.error = public_message(exc)
            self.state = "failed"
            self._say(f"error: the app could not start: {exc}")

    def needs_demo(self) -> bool:
        """Whether there is no release yet and the demo release is to be built."""
        if self.build is None:
            return False
        if self.follow:  # the main process found no release and started the build
            return True
        if not _may_hold_a_release(self.data_dir):  # a fresh folder: start the build without importing anything
            return True
        from core.release.layout import discover

        return not discover(self.data_dir)

    def _build_demo(self) -> bool:
        self.begin_build()
        if self.prepare is not None:
            self.prepare()  # beside the build: it needs a core for a few seconds, the build runs for minutes
        assert self.build is not None
        return self.end_build(self.build.wait())

    def begin_build(self) -> None:
        """Start the demo build (in a child process) and tell the terminal; :meth:`end_build` takes its outcome.

        The main process of several workers calls these itself, before starting the workers (which
        follow the build's status file), and checks the build from its supervising loop.
        """
        assert self.build is not None
        self._say(
            f"No release under {self.data_dir}: building the demo release ({self.build.scale} scale) in a child process. "
            f"Open {self.url} to watch its progress; the map opens there when it is done."
        )
        self._t0 = time.perf_counter()
        self.state = "building"
        if isinstance(self.build, DemoBuild):
            self.build.start()

    def poll_build(self) -> int | None:
        """The build's outcome as :meth:`DemoBuild.wait` gives it, or ``None`` while it runs (main process)."""
        assert isinstance(self.build, DemoBuild) and self.build.proc is not None
        code = self.build.proc.poll()
        if (self.build.report() or {}).get("state") == "done":
            return 0
        return code

    def end_build(self, code: int) -> bool:
        """Record the build's exit ``code`` (0: done), tell the terminal; a failure the build could not
        record itself (a signal) goes into its status file, for workers that follow it."""
        assert self.build is not None
        if code == 0:
            self._say(f"Demo release built in {time.perf_counter() - self._t0:.0f} s; opening the map at {self.url}")
            return True
        report = self.build.report() or {}
        if code < 0:
            why = f"the build process was stopped by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            why = report.get("error") or f"the build process ended with exit status {code}"
        self.error = str(why)
        self.state = "failed"
        if isinstance(self.build, DemoBuild) and report.get("state") != "failed":
            StatusFile(self.build.status_path).fail(str(why))
        self._say(
            f"error: the demo build failed: {why}\n"
            f"  What to do: run `python -m core demo --data {self.data_dir} --scale {self.build.scale}` to see its full output "
            "(a smaller --scale needs less memory and time); or serve a folder that already holds a release "
            "with `python app.py --data DIR`, or start without the demo with `--no-demo`.\n"
            f"  The page at {self.url} shows this error until the server is stopped."
        )
        return False


def _may_hold_a_release(data_dir: Path, depth: int = 5) -> bool:
    """Whether any ``.geojson`` file lies under ``data_dir`` (hidden folders skipped): cheap, no imports.

    Without one there is certainly no release (:func:`core.release.layout.discover` finds datasets
    by their GeoJSON files), so a first start can begin the build at once.
    """
    base = len(data_dir.parts)
    for root, dirs, files in os.walk(data_dir):
        if any(f.endswith(".geojson") for f in files):
            return True
        dirs[:] = [] if len(Path(root).parts) - base >= depth else [d for d in dirs if not d.startswith(".")]
    return False


class StartupApp:
    """The WSGI app served from the first second: the progress page until :meth:`ready`, then the real app.

    ``/build-status`` always answers here (JSON), so a page that polls it during the switch gets
    ``ready``. Every request, the progress page and ``/build-status`` included, passes the access
    token check when a token is set.
    """

    def __init__(self, status: Callable[[], dict[str, Any]], token: str | None = None) -> None:
        from flask import Flask, Response, jsonify, request

        self.token = token
        self.target: Any = None
        self.waiting = Flask("startup", static_folder=None)

        @self.waiting.route(STATUS_PATH)
        def _status() -> Any:
            resp = jsonify(status())
            resp.headers["Cache-Control"] = "no-store"
            return resp

        @self.waiting.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST"])
        @self.waiting.route("/<path:path>", methods=["GET", "HEAD", "POST"])
        def _any(path: str) -> Any:
            page = request.method in ("GET", "HEAD") and not path.startswith(("_dash", "_reload", "tiles/", "assets/"))
            if page and "text/html" in request.headers.get("Accept", "text/html"):
                return Response(progress_page(status()), mimetype="text/html", headers={"Cache-Control": "no-store"})
            return Response(
                "the app is starting: try again in a moment\n",
                status=503,
                mimetype="text/plain",
                headers={"Retry-After": str(RETRY_S), "Cache-Control": "no-store"},
            )

        if token:
            install_token_gate(self.waiting, token)

    def ready(self, server: Any) -> None:
        """Switch every later request (but ``/build-status``) to ``server``, the Dash app's Flask server."""
        if self.token:
            install_token_gate(server, self.token)
        self.target = server

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = self.target
        if target is not None and environ.get("PATH_INFO") != STATUS_PATH:
            return target(environ, start_response)
        return self.waiting(environ, start_response)


def progress_page(status: dict[str, Any]) -> str:
    """The progress page: self-contained HTML + JS (no assets), filled in from ``status`` and then from polling."""
    percent = status.get("percent")
    width = 0.0 if percent is None else float(percent)
    failed = status.get("state") == "failed"
    if failed:
        eta = ""
    elif status.get("eta_text"):
        eta = f"about {status['eta_text']} left"
    else:
        eta = "estimating the time left"
    return _PAGE.format(
        title=html.escape(status.get("title") or ""),
        label=html.escape(status.get("label") or ""),
        message=html.escape(status.get("message") or ""),
        percent="" if percent is None else f"{percent:.0f} %",
        width=f"{width:.1f}",
        eta=eta,
        error=html.escape(f"{status.get('error')} {_SEE_TERMINAL}" if failed else ""),
        error_display="block" if failed else "none",
        status_path=STATUS_PATH,
        see_terminal=_SEE_TERMINAL,
        retry_s=RETRY_S,
    )


_SEE_TERMINAL = "(the terminal running app.py says what to do)"
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Area embeddings: starting</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:#1f2933;margin:0}}
main{{max-width:560px;margin:12vh auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px #0002;padding:28px 32px}}
h1{{font-size:20px;margin:0 0 4px}} .sub{{color:#52606d;font-size:14px;margin:0 0 20px}}
.stage{{font-weight:600;margin:0 0 4px}} .msg{{color:#52606d;font-size:14px;min-height:1.3em;margin:0 0 14px}}
.track{{background:#e4e7eb;border-radius:6px;height:14px;overflow:hidden}}
.bar{{background:#2f80ed;height:100%;transition:width .4s}}
.row{{display:flex;justify-content:space-between;font-size:14px;margin-top:8px;color:#323f4b}}
.error{{background:#fde8e8;color:#9b1c1c;border-radius:6px;padding:12px 14px;margin-top:18px;font-size:14px}}
.note{{color:#7b8794;font-size:12px;margin-top:18px}}
</style></head>
<body><main>
<h1 id="build-title">{title}</h1>
<p class="sub">The first start builds the synthetic demo release once; this page follows it and opens the map when it is ready.</p>
<p class="stage" id="build-stage">{label}</p>
<p class="msg" id="build-message">{message}</p>
<div class="track"><div class="bar" id="build-bar" style="width:{width}%"></div></div>
<div class="row"><span id="build-percent">{percent}</span><span id="build-eta">{eta}</span></div>
<div class="row"><span id="build-elapsed"></span></div>
<div class="error" id="build-error" style="display:{error_display}">{error}</div>
<p class="note">This page refreshes itself; no need to reload.</p>
</main>
<script>
(function () {{
  var got = null, at = 0, stopped = false;
  function $(id) {{ return document.getElementById(id); }}
  function fmt(s) {{
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
  }}
  function tick() {{
    if (!got) return;
    var moved = (Date.now() - at) / 1000, building = got.state === "building";
    if (got.eta !== null && got.state !== "failed") {{
      $("build-eta").textContent = "about " + fmt(building ? got.eta - moved : got.eta) + " left";
    }} else if (got.state !== "failed") {{
      $("build-eta").textContent = "estimating the time left";
    }}
    if (got.elapsed !== null) $("build-elapsed").textContent = "running for " + fmt(got.elapsed + (building ? moved : 0));
  }}
  function show(s) {{
    got = s; at = Date.now();
    $("build-title").textContent = s.title;
    $("build-stage").textContent = s.label;
    $("build-message").textContent = s.message || "";
    if (s.percent !== null) {{
      $("build-percent").textContent = Math.floor(s.percent) + " %";
      $("build-bar").style.width = s.percent + "%";
    }}
    if (s.state === "failed") {{
      $("build-error").style.display = "block";
      $("build-error").textContent = s.error + " {see_terminal}";
      $("build-eta").textContent = "";
      $("build-bar").style.background = "#d64545";
    }}
    tick();
  }}
  function poll() {{
    if (stopped) return;
    fetch("{status_path}", {{cache: "no-store", credentials: "same-origin"}})
      .then(function (r) {{ return r.ok ? r.json() : null; }})
      .then(function (s) {{
        if (s) {{
          show(s);
          if (s.state === "ready") {{ stopped = true; window.location.reload(); return; }}
          if (s.state === "failed") {{ stopped = true; return; }}
        }}
        setTimeout(poll, 1000);
      }})
      .catch(function () {{ setTimeout(poll, {retry_s} * 1000); }});
  }}
  setInterval(tick, 250);
  poll();
}})();
</script>
</body></html>
"""
