from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def official_stays() -> Path:
    return DATA / "stay_df.csv"


@pytest.fixture
def write_csv(tmp_path):
    """Write rows (list of dicts or a DataFrame) to a CSV in tmp_path and return its path."""

    def _write(rows, name: str = "stays.csv") -> Path:
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _write


def good_rows(n: int = 3) -> list[dict]:
    return [
        {"stay_time": 10 + i, "day_of_week": "Monday", "arrival_time": "08:15", "is_holiday": False, "mesh_id": i}
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def small_anchor_set():
    """An anchor set built from three synthetic cities (64 anchors x 2,000 records)."""
    from core.area2vec.anchors import build_anchor_set
    from core.mobility.stays import stays_from_frame
    from core.simulation.synthetic import synthetic_city

    cities = [stays_from_frame(synthetic_city(600, 120, seed=s).stays) for s in (10, 11, 12)]
    return build_anchor_set(cities, n_anchors=64, records_per_anchor=2000, seed=0)


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory):
    """A tiny demo data folder (Osaka only, 64 anchors): read-only; copy it before writing into it."""
    from core.simulation.demo import build_demo

    d = tmp_path_factory.mktemp("tiny-release")
    build_demo(d, scale="tiny", only=("osaka_2021_04",))
    return d


@pytest.fixture
def data_copy(tiny_release, tmp_path):
    """A writable copy of :func:`tiny_release`."""
    import shutil

    dst = tmp_path / "data"
    shutil.copytree(tiny_release, dst)
    return dst


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by playwright (``.ci/run`` installs both; outside CI a missing one skips)."""
    import os
    import shutil

    from dashboard.serve import CHROMIUM_ARGS

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        sync_playwright = None
    if sync_playwright is None or not Path(exe).exists():
        if os.environ.get("CI"):
            raise RuntimeError("CI needs chromium and playwright for the browser tests")
        pytest.skip("needs chromium and playwright (installed by .ci/run)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
