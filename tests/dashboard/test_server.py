"""Issue 17: the app serves on waitress, and never on a non-loopback address without an access token."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flask import Flask

from dashboard.serve import ROOT
from dashboard.server import COOKIE, HEADER, TokenRequired, check_binding, install_token_gate, is_loopback

TOKEN = "s3cret-token-of-24-chars"


@pytest.mark.parametrize(
    ("host", "loop"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)]
)
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_non_loopback_needs_a_token():
    check_binding("127.0.0.1", None)
    with pytest.raises(TokenRequired, match="--token or AREA_TOKEN"):
        check_binding("0.0.0.0", None)
    with pytest.raises(TokenRequired, match="too short"):
        check_binding("0.0.0.0", "abc")
    check_binding("0.0.0.0", TOKEN)


def test_app_refuses_to_start_on_all_interfaces_without_token(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--host", "0.0.0.0", "--data", str(tmp_path), "--no-demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode != 0 and "AREA_TOKEN" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "user").exists()


def test_token_gate():
    app = Flask("t")

    @app.route("/")
    def index():
        return "page"

    @app.route("/tiles/x.png")
    def tile():
        return "tile"

    install_token_gate(app, TOKEN)
    c = app.test_client()
    assert c.get("/").status_code == 401 and c.get("/tiles/x.png").status_code == 401
    assert c.get("/?token=wrong").status_code == 401
    first = c.get(f"/?token={TOKEN}&ds=demo/x")
    assert first.status_code == 303 and first.headers["Location"].endswith("/?ds=demo%2Fx")
    assert COOKIE in first.headers["Set-Cookie"] and "HttpOnly" in first.headers["Set-Cookie"]
    assert c.get("/tiles/x.png").data == b"tile"  # the cookie now comes with every request
    other = app.test_client()
    assert other.get("/", headers={HEADER: TOKEN}).data == b"page"


def test_catalog_computes_a_missing_value_once_for_concurrent_requests(tmp_path):
    import threading
    import time

    from dashboard.catalog import Catalog

    cat = Catalog(tmp_path)
    calls = []

    def make():
        calls.append(1)
        time.sleep(0.2)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cat._memo(("x",), make))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8 and len(calls) == 1


def test_two_server_processes_agree_on_the_catalog(data_copy):
    """Several workers each hold a Catalog of one folder: the page's catalog version and the cluster
    names a user gave through one of them mean the same in the other."""
    from dashboard.catalog import Catalog

    a, b = Catalog(data_copy), Catalog(data_copy)
    assert a.version == b.version  # a digest of the datasets' files, not a per-process counter
    key = a.keys()[0]
    before = b.cluster_names(key, 5)  # cached in b
    renamed = a.rename_cluster(key, 5, 0, "harbour offices")
    assert renamed[0] == "harbour offices" != before[0]
    assert b.cluster_names(key, 5)[0] == "harbour offices"
    assert b.cluster_summary(key, 5)[0]["description"] == "harbour offices"


def test_a_dataset_written_elsewhere_is_seen_at_the_next_request(data_copy):
    """Another worker (or a job) writes a dataset: this process's catalog sees it within a second."""
    import shutil
    import time

    from dashboard.catalog import Catalog

    cat = Catalog(data_copy)
    assert cat.refresh_if_stale(60.0) is False  # looks (nothing changed since the catalog was made)
    before = set(cat.keys())
    src = next(p for p in (data_copy / "demo" / "japan_city" / "geojson").glob("*.geojson"))
    shutil.copy(src, src.with_name("copy_2021_04.geojson"))
    assert cat.refresh_if_stale(60.0) is False and set(cat.keys()) == before  # looked less than 60 s ago
    time.sleep(0.05)
    assert cat.refresh_if_stale(0.01) is True and "demo/copy_2021_04" in set(cat.keys()) - before
