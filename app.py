"""Build and run the dashboard: ``python app.py [--host H] [--port P] [--data DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dash import Dash

from dashboard.callbacks import register
from dashboard.data import Catalog
from dashboard.layout import make_layout


def ensure_demo(data_dir: Path) -> None:
    """Build the demo release on first start when the data folder has no release at all."""
    from core.release import discover

    if discover(data_dir):
        return
    from core.cli import main as core_main

    print(f"No release under {data_dir}: building the demo release once (about 70 s)...", file=sys.stderr)
    core_main(["demo", "--data", str(data_dir)])


def create_app(data_dir: str | Path = "data") -> Dash:
    """The Dash app over the releases under ``data_dir``."""
    catalog = Catalog(data_dir)
    app = Dash(__name__, title="Area embeddings", assets_folder=str(Path(__file__).parent / "assets"))
    app.layout = make_layout(catalog.keys())
    register(catalog)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve the area-embeddings dashboard.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument("--data", default=str(Path(__file__).parent / "data"), help="data folder holding releases (default: ./data)")
    ap.add_argument("--no-demo", action="store_true", help="do not build the demo release when no release is found")
    args = ap.parse_args(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if not args.no_demo:
        ensure_demo(data)
    create_app(data).run(host=args.host, port=args.port, debug=False)


if __name__ == "__main__":
    main()
