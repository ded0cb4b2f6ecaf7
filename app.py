"""Build and run the dashboard: ``python app.py [--host H] [--port P] [--data DIR] [--basemap URL]``.

The server answers from the first second: while the demo release is built (first start) and the
app is set up, every page shows their progress (:mod:`dashboard.startup`). Dash and the views are
imported only then, in the background, so nothing heavy runs before the port is open.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import functools
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import knobs
from dashboard.server import THREADS, can_fork, check_binding, listening_socket, refuse_unknown_paths, run_workers, serve

if TYPE_CHECKING:
    from dash import Dash

    from dashboard.catalog import Catalog

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@functools.cache
def _view_callbacks() -> tuple[Any, Any]:
    """The views' callbacks, registered by importing them (module-level ``dash.callback``).

    Dash moves that global registry into the first app it sets up; keep a copy so that every app of
    this process gets them.
    """
    import dash._callback as _dash_callbacks

    # The modules the app is made of; importing them registers every view's callbacks.
    import dashboard.catalog
    import dashboard.components
    import dashboard.layout
    import dashboard.tiles
    import dashboard.views.people
    import dashboard.views.regions
    import dashboard.views.training  # noqa: F401

    return copy.deepcopy((_dash_callbacks.GLOBAL_CALLBACK_MAP, _dash_callbacks.GLOBAL_CALLBACK_LIST))


def _import_request_modules() -> None:
    """Import now, in one thread, what requests would otherwise import lazily in several at once.

    Threads importing a package with circular imports at the same moment can be handed a partly
    initialised module (Python's import deadlock avoidance): under load the first tiles of a page
    failed with "partially initialized module 'PIL.Image' has no attribute 'Image'" (HTTP 500).
    """
    import scipy.sparse  # noqa: F401 - joint clusters' pooled patterns
    import sklearn.cluster  # noqa: F401 - joint clusters at a new k
    from PIL import Image

    Image.preinit()  # the PNG encoder of the tiles (PIL loads its plugins on first save otherwise)


def _initial_state(catalog: Catalog) -> dict:
    """Default view (the URL's ds / k / mesh / view are applied in the browser, see callbacks.sync_state)."""
    keys = catalog.keys()
    ds = "demo/tokyo_2021_04" if "demo/tokyo_2021_04" in catalog.refs else (keys[0] if keys else None)
    return {"ds": ds, "k": knobs.K.default, "view": "map", "selected": None}


def _diff_pair(catalog: Catalog) -> tuple[str | None, str | None]:
    keys = catalog.keys()
    if "demo/nagoya_2019_04" in catalog.refs and "demo/nagoya_2020_04" in catalog.refs:
        return "demo/nagoya_2019_04", "demo/nagoya_2020_04"
    return (keys[0] if keys else None), (keys[1] if len(keys) > 1 else None)


def upload_body_limit(cap: int) -> int:
    """The largest request body: uploads arrive base64-encoded inside a callback request (cap plus overhead)."""
    return int(cap * 1.4) + 4 * 2**20


def create_app(
    data_dir: str | Path = "data",
    basemap: str | None = OSM,
    upload_cap_mb: float = knobs.UPLOAD_CAP.default,
    people_files: tuple[str | Path, ...] = (),
) -> Dash:
    """The Dash app over the releases under ``data_dir``.

    Args:
        data_dir: folder holding releases (any folder with the OpenUAS layout).
        basemap: XYZ tile URL of the background map, or ``None`` for none (offline machines).
        upload_cap_mb: largest browser upload; bigger files go into ``data_dir/inbox``.
        people_files: HuMob / LYMob or stay files the People view lists beside the data folder's.
    """
    import dash._callback as _dash_callbacks
    import diskcache
    from dash import Dash, DiskcacheManager

    from core.workflow.jobs import JobRegistry
    from core.workflow.userdata import USER_RELEASE, cleanup_incomplete, cleanup_uploads
    from dashboard.catalog import AppContext, Catalog, install
    from dashboard.components import viewport
    from dashboard.guard import install_input_guard
    from dashboard.layout import make_layout
    from dashboard.tiles import register_tiles
    from dashboard.views import people as people_view
    from dashboard.views import regions as regions_view
    from dashboard.views import training as training_view

    view_callbacks = _view_callbacks()

    data_dir = Path(data_dir)
    # A job killed with the previous server leaves a stale lock and partial files: close and clean them now.
    if JobRegistry(data_dir / USER_RELEASE).current() is None:
        cleanup_incomplete(data_dir / USER_RELEASE)
    JobRegistry(data_dir / USER_RELEASE).prune()
    cleanup_uploads(data_dir)
    catalog = Catalog(data_dir)
    cap = int(upload_cap_mb * 2**20)
    install(
        AppContext(catalog=catalog, basemap=basemap, upload_cap=cap, people_files=tuple(Path(p).resolve() for p in people_files))
    )
    manager = DiskcacheManager(diskcache.Cache(str(data_dir / ".cache" / "background-jobs")))
    app = Dash(
        __name__,
        title="Area embeddings",
        assets_folder=str(Path(__file__).parent / "assets"),
        suppress_callback_exceptions=False,
        background_callback_manager=manager,
    )
    # Uploads arrive base64-encoded inside a callback request: allow the cap plus encoding overhead, refuse more.
    app.server.config["MAX_CONTENT_LENGTH"] = upload_body_limit(cap)

    def serve_layout():
        catalog.refresh_if_changed()
        state = _initial_state(catalog)
        pair = _diff_pair(catalog)
        map_view = viewport(catalog, state["ds"]) if state["ds"] else None
        diff_view = viewport(catalog, pair[1]) if pair[1] else None
        train = training_view.layout(training_view.anchor_options(data_dir), training_view.inbox_options(data_dir), cap)
        people = people_view.layout(basemap)
        regions = regions_view.layout(data_dir, basemap)
        return make_layout(catalog.options(), state, pair, basemap, map_view, diff_view, train, catalog.version, people, regions)

    app.layout = serve_layout
    # Dash's setup consumes (and edits) the global registry: hand each app a fresh copy of the views' callbacks.
    callbacks, listed = copy.deepcopy(view_callbacks)
    _dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
    _dash_callbacks.GLOBAL_CALLBACK_MAP.update(callbacks)
    _dash_callbacks.GLOBAL_CALLBACK_LIST[:] = listed

    @app.server.before_request
    def _see_new_datasets() -> None:
        """A dataset written through another worker (or a job) is seen at the next request, not the next poll."""
        catalog.refresh_if_stale()

    register_tiles(app.server)
    refuse_unknown_paths(app.server, app.config.routes_pathname_prefix + "<path:path>")
    install_input_guard(app)
    _import_request_modules()
    _render_page_once(app)
    return app


def _render_page_once(app: Dash) -> None:
    """Render the page once, in-process, before serving.

    Dash sets itself up on its first request and records the script files it may serve only when it
    renders the page. With several worker processes the browser can get the page from one worker and
    its scripts from another that has never rendered it: that one refused them (HTTP 500 "dash is not
    a registered library"). Doing it here also sets the app up while its callbacks are the ones just
    installed.
    """
    answer = app.server.test_client().get("/")
    if answer.status_code != 200:
        raise RuntimeError(f"the dashboard page could not be rendered (HTTP {answer.status_code})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve the area-embeddings dashboard.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument("--data", default=str(Path(__file__).parent / "data"), help="data folder holding releases (default: ./data)")
    ap.add_argument(
        "--basemap",
        default=os.environ.get("BASEMAP_URL", OSM),
        help="XYZ tile URL of the background map; 'none' for no basemap (default: OpenStreetMap)",
    )
    ap.add_argument("--no-demo", action="store_true", help="do not build the demo release when no release is found")
    knobs.DEMO_SCALE.add_to(ap, "--demo-scale", metavar="SCALE")
    knobs.UPLOAD_CAP.add_to(ap, "--upload-cap-mb")
    ap.add_argument(
        "--people",
        action="append",
        default=[],
        metavar="FILE",
        help="a HuMob / LYMob (uid,d,t,x,y) or stay file for the People view (repeatable; also found: DATA/inbox, DATA/walkers/*)",
    )
    ap.add_argument(
        "--token",
        default=os.environ.get("AREA_TOKEN") or None,
        help="access token (default: $AREA_TOKEN); required to serve a non-loopback --host; open the address with ?token=... once",
    )
    ap.add_argument("--threads", type=int, default=THREADS, help=f"requests served at once per process (default {THREADS})")
    knobs.WORKERS.add_to(ap, "--workers", metavar="N")
    knobs.REQUEST_TIMEOUT.add_to(ap, "--timeout", metavar="SECONDS")
    args = ap.parse_args(argv)
    check_binding(args.host, args.token)  # before anything else: refuse early
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    basemap = None if args.basemap.lower() == "none" else args.basemap
    people = tuple(args.people)
    threads = max(1, args.threads)
    body = upload_body_limit(int(args.upload_cap_mb * 2**20))
    url = f"http://{args.host}:{args.port}"
    workers = args.workers if can_fork() else 1

    from dashboard.startup import Startup

    def startup_for(follow: bool, demo: str | None) -> Startup:
        return Startup(
            data,
            lambda: create_app(data, basemap, args.upload_cap_mb, people),
            demo,
            url=url,
            token=args.token,
            prepare=_view_callbacks,
            follow=follow,
        )

    demo_scale = None if args.no_demo else args.demo_scale
    if workers == 1:
        startup = startup_for(False, demo_scale)
        # A demo build outliving the server would keep building: stop it with the server, however that stops.
        atexit.register(startup.stop)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        startup.start()
        serve(startup.app, args.host, args.port, args.token, threads, body, timeout=args.timeout)
        return
    # Several processes accept on one socket. This one builds the demo release (once) and supervises;
    # the first worker shows the build's progress from its status file; every worker builds its own
    # app and caches, and the others accept requests only once theirs is ready.
    sock = listening_socket(args.host, args.port)
    main_startup = startup_for(False, demo_scale)
    building = main_startup.needs_demo()
    if building:
        main_startup.begin_build()
        atexit.register(main_startup.stop)
    outcome: list[int] = []

    def tick() -> None:  # the supervisor's loop: has the build ended?
        if building and not outcome and (code := main_startup.poll_build()) is not None:
            outcome.append(code)
            main_startup.end_build(code)

    # The first worker's app is ready: the others wait for it (see work).
    first_ready = Path(tempfile.gettempdir()) / f"area-server-{os.getpid()}-first-ready"
    first_ready.unlink(missing_ok=True)
    atexit.register(first_ready.unlink, missing_ok=True)

    def work(i: int, first: bool) -> None:
        startup = startup_for(True, demo_scale if building else None)
        startup.start()
        if building and i == 0 and first:
            # While the demo builds, the first worker answers alone: its progress page (503 for the rest).
            def mark() -> None:
                startup.wait_ready()
                first_ready.touch()

            threading.Thread(target=mark, name="first-ready", daemon=True).start()
        else:
            # Every other worker (all of them when there is no build) takes requests only once its app
            # is ready: a page one worker rendered must never get its scripts or callbacks answered 503
            # by another still starting. Connections wait in the socket's queue meanwhile.
            startup.wait_ready()
            if startup.state != "ready":  # it said why on the terminal; the supervisor starts it again
                raise SystemExit(1)
            deadline = time.monotonic() + 600
            while building and first and not first_ready.exists() and time.monotonic() < deadline:
                time.sleep(0.2)  # after a build, the first worker (still showing progress) goes first
        serve(startup.app, args.host, args.port, args.token, threads, body, timeout=args.timeout, sock=sock, worker_header=True)

    print(
        f"Serving on {url} ({workers} processes x {threads} threads){' with an access token' if args.token else ''}", flush=True
    )
    code = run_workers(workers, work, tick)
    main_startup.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
