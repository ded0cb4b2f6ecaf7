"""Build and run the dashboard: ``python app.py [--host H] [--port P] [--data DIR] [--basemap URL]``."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import dash._callback as _dash_callbacks
from dash import Dash

from core import knobs
from core.workflow.userdata import DEFAULT_UPLOAD_CAP
from dashboard.catalog import AppContext, Catalog, install
from dashboard.components import viewport
from dashboard.guard import install_input_guard
from dashboard.layout import make_layout
from dashboard.server import THREADS, check_binding, serve
from dashboard.tiles import register_tiles
from dashboard.views import people as people_view
from dashboard.views import regions as regions_view
from dashboard.views import training as training_view

# Importing the views registers their callbacks (module-level ``dash.callback``). Dash moves that
# global registry into the first app it sets up; keep a copy so that every app of this process gets them.
_VIEW_CALLBACKS = copy.deepcopy((_dash_callbacks.GLOBAL_CALLBACK_MAP, _dash_callbacks.GLOBAL_CALLBACK_LIST))

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def ensure_demo(data_dir: Path) -> None:
    """Build the demo release on first start when the data folder has no release at all."""
    from core.release.layout import discover

    if discover(data_dir):
        return
    from core.cli import main as core_main

    print(f"No release under {data_dir}: building the demo release once (about 80 s)...", file=sys.stderr)
    core_main(["demo", "--data", str(data_dir)])


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


def create_app(
    data_dir: str | Path = "data",
    basemap: str | None = OSM,
    upload_cap_mb: float = DEFAULT_UPLOAD_CAP / 2**20,
    people_files: tuple[str | Path, ...] = (),
) -> Dash:
    """The Dash app over the releases under ``data_dir``.

    Args:
        data_dir: folder holding releases (any folder with the OpenUAS layout).
        basemap: XYZ tile URL of the background map, or ``None`` for none (offline machines).
        upload_cap_mb: largest browser upload; bigger files go into ``data_dir/inbox``.
        people_files: HuMob / LYMob or stay files the People view lists beside the data folder's.
    """
    import diskcache
    from dash import DiskcacheManager

    from core.workflow.jobs import JobRegistry
    from core.workflow.userdata import USER_RELEASE, cleanup_incomplete, cleanup_uploads

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
    app.server.config["MAX_CONTENT_LENGTH"] = int(cap * 1.4) + 4 * 2**20

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
    callbacks, listed = copy.deepcopy(_VIEW_CALLBACKS)
    _dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
    _dash_callbacks.GLOBAL_CALLBACK_MAP.update(callbacks)
    _dash_callbacks.GLOBAL_CALLBACK_LIST[:] = listed
    register_tiles(app.server)
    install_input_guard(app)
    return app


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
    ap.add_argument(
        "--upload-cap-mb",
        type=float,
        default=DEFAULT_UPLOAD_CAP / 2**20,
        help="largest browser upload in MB (default 50); bigger files go into DATA/inbox/ and are picked from a list",
    )
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
    ap.add_argument("--threads", type=int, default=THREADS, help=f"requests served at once (default {THREADS})")
    args = ap.parse_args(argv)
    check_binding(args.host, args.token)  # before the demo build: refuse early
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if not args.no_demo:
        ensure_demo(data)
    app = create_app(data, None if args.basemap.lower() == "none" else args.basemap, args.upload_cap_mb, tuple(args.people))
    serve(app, args.host, args.port, args.token, max(1, args.threads))


if __name__ == "__main__":
    main()
