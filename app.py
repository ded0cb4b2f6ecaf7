"""Build and run the dashboard: ``python app.py [--host H] [--port P] [--data DIR] [--basemap URL]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dash import Dash

from dashboard.callbacks import register
from dashboard.data import Catalog
from dashboard.layout import make_layout
from dashboard.tileserver import register_tiles

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def ensure_demo(data_dir: Path) -> None:
    """Build the demo release on first start when the data folder has no release at all."""
    from core.release import discover

    if discover(data_dir):
        return
    from core.cli import main as core_main

    print(f"No release under {data_dir}: building the demo release once (about 80 s)...", file=sys.stderr)
    core_main(["demo", "--data", str(data_dir)])


def _initial_state(catalog: Catalog) -> dict:
    """Default view (the URL's ds / k / mesh / view are applied in the browser, see callbacks.sync_state)."""
    keys = catalog.keys()
    ds = "demo/tokyo_2021_04" if "demo/tokyo_2021_04" in catalog.refs else (keys[0] if keys else None)
    return {"ds": ds, "k": 10, "view": "map", "selected": None}


def _diff_pair(catalog: Catalog) -> tuple[str | None, str | None]:
    keys = catalog.keys()
    if "demo/nagoya_2019_04" in catalog.refs and "demo/nagoya_2020_04" in catalog.refs:
        return "demo/nagoya_2019_04", "demo/nagoya_2020_04"
    return (keys[0] if keys else None), (keys[1] if len(keys) > 1 else None)


def create_app(data_dir: str | Path = "data", basemap: str | None = OSM) -> Dash:
    """The Dash app over the releases under ``data_dir``.

    Args:
        data_dir: folder holding releases (any folder with the OpenUAS layout).
        basemap: XYZ tile URL of the background map, or ``None`` for none (offline machines).
    """
    catalog = Catalog(data_dir)
    app = Dash(__name__, title="Area embeddings", assets_folder=str(Path(__file__).parent / "assets"), suppress_callback_exceptions=False)

    def serve_layout():
        from dashboard.callbacks import viewport

        state = _initial_state(catalog)
        pair = _diff_pair(catalog)
        map_view = viewport(catalog, state["ds"]) if state["ds"] else None
        diff_view = viewport(catalog, pair[1]) if pair[1] else None
        return make_layout(catalog.options(), state, pair, basemap, map_view, diff_view)

    app.layout = serve_layout
    register(catalog, basemap)
    register_tiles(app.server, catalog)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve the area-embeddings dashboard.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument("--data", default=str(Path(__file__).parent / "data"), help="data folder holding releases (default: ./data)")
    ap.add_argument("--basemap", default=os.environ.get("BASEMAP_URL", OSM), help="XYZ tile URL of the background map; 'none' for no basemap (default: OpenStreetMap)")
    ap.add_argument("--no-demo", action="store_true", help="do not build the demo release when no release is found")
    args = ap.parse_args(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if not args.no_demo:
        ensure_demo(data)
    create_app(data, None if args.basemap.lower() == "none" else args.basemap).run(host=args.host, port=args.port, debug=False)


if __name__ == "__main__":
    main()
