"""Dashboard pieces without a browser: catalog, figures, tile layers, app factory."""

import numpy as np
import pytest

from core.geo.meshcode import latlon_to_code
from core.release.layout import write_dataset


def _release(root, name="nagoya_2019_04", seed=0):
    rng = np.random.default_rng(seed)
    codes = np.unique(latlon_to_code(35.17 + rng.random(300) * 0.01, 136.9 + rng.random(300) * 0.01, 50))
    n = len(codes)
    labels = {5: np.arange(n) % 5, 10: np.arange(n) % 10, 20: np.arange(n) % 20}
    comp = np.arange(n) % 7 == 0
    write_dataset(root / "rel", name, codes, np.full(n, 50), rng.normal(size=(n, 8)), rng.normal(size=(168, 8)), labels, comp)
    return codes, labels, comp


def test_catalog_labels_summary_and_diff(tmp_path):
    from dashboard.catalog import Catalog

    codes, labels, comp = _release(tmp_path)
    codes_b, _, comp_b = _release(tmp_path, "nagoya_2020_04", seed=1)
    cat = Catalog(tmp_path)
    assert cat.keys() == ["rel/nagoya_2019_04", "rel/nagoya_2020_04"]
    assert [o["label"] for o in cat.options()] == ["rel / nagoya 2019-04", "rel / nagoya 2020-04"]
    assert np.array_equal(cat.labels("rel/nagoya_2019_04", 5), labels[5])
    seven = cat.labels("rel/nagoya_2019_04", 7)  # computed, OpenUAS order
    assert seven.max() == 6 and len(seven) == len(codes)
    summary = cat.cluster_summary("rel/nagoya_2019_04", 5)
    assert [s["meshes"] for s in summary] == np.bincount(labels[5]).tolist()
    d = cat.diff("rel/nagoya_2019_04", "rel/nagoya_2020_04", 10)
    common = np.intersect1d(codes[~comp], codes_b[~comp_b])
    assert np.array_equal(d.codes, common) and len(common) > 0  # complemented meshes are not compared


def test_transition_matrix_by_hand():
    from core.analysis.diff import PeriodDiff

    # Mesh 1 stays in cluster 0, mesh 2 moves 0 -> 2, mesh 3 moves 1 -> 0; k = 3.
    z = np.zeros(3)
    d = PeriodDiff(
        np.array([1, 2, 3]), np.arange(3), np.arange(3), z, z, np.zeros(3, bool), np.array([0, 0, 1]), np.array([0, 2, 0]), 3
    )
    assert d.transitions().tolist() == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]


def test_figures():
    import plotly.graph_objects as go

    from dashboard.figures import pattern_chart, transition_heatmap

    chart = np.zeros((2, 12, 7))
    chart[1, 3, 6] = 5.0
    fig = go.Figure(pattern_chart(chart, "t"))
    assert len(fig.data) == 14 and fig.layout.barmode == "stack"
    holiday_long = [t for t in fig.data if t.xaxis == "x2" and t.name == "> 12 h"][0]
    assert list(holiday_long.y)[3] == 5.0
    hm = go.Figure(transition_heatmap(np.array([[3, 1], [0, 2]]), "a", "b"))
    assert [list(r) for r in hm.data[0].z] == [[3, 1], [0, 2]] and "6 meshes" in hm.layout.title.text


def test_tile_layers_and_validation(tmp_path):
    from flask import Flask
    from werkzeug.datastructures import MultiDict
    from werkzeug.exceptions import HTTPException

    from dashboard.catalog import Catalog
    from dashboard.tiles import layer_values

    codes, labels, comp = _release(tmp_path)
    cat = Catalog(tmp_path)
    with Flask(__name__).test_request_context():
        values, colours = layer_values(cat, MultiDict({"ds": "rel/nagoya_2019_04", "mode": "cluster", "k": "5"}))
        assert np.array_equal(values, labels[5] + 5 * comp) and colours.shape == (10, 4)
        assert (colours[5:, 3] < colours[:5, 3]).all()  # complemented meshes paler
        values, _ = layer_values(cat, MultiDict({"ds": "rel/nagoya_2019_04", "mode": "similar", "sel": "0", "thr": "0"}))
        assert values[0] == 0 and (values[1:] == -1).all()  # only the mesh itself within distance 0
        for bad in (
            {"ds": "../etc/passwd"},
            {"ds": "rel/nagoya_2019_04", "mode": "similar", "sel": "99999"},
            {"ds": "rel/nagoya_2019_04", "k": "0"},
        ):
            with pytest.raises(HTTPException):
                layer_values(cat, MultiDict(bad))


def test_tile_route_serves_png(tmp_path):
    import app as app_module

    _release(tmp_path)
    client = app_module.create_app(tmp_path, basemap=None).server.test_client()
    from dashboard.catalog import Catalog

    s, w, n, e = Catalog(tmp_path).index("rel/nagoya_2019_04").bounds
    z = 16
    x = int(((w + e) / 2 + 180) / 360 * 2**z)
    y = int((1 - np.arcsinh(np.tan(np.radians((s + n) / 2))) / np.pi) / 2 * 2**z)
    r = client.get(f"/tiles/{z}/{x}/{y}.png?ds=rel/nagoya_2019_04&mode=cluster&k=10")
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data[:4] == b"\x89PNG"
    assert client.get(f"/tiles/{z}/{x}/{y}.png?ds=nope").status_code == 404
    assert client.get("/tiles/40/0/0.png?ds=rel/nagoya_2019_04").status_code == 404


def test_unknown_paths_get_404_and_the_app_routes_still_answer(tmp_path):
    import app as app_module

    _release(tmp_path)
    client = app_module.create_app(tmp_path, basemap=None).server.test_client()
    for path in ("/nonexistent-page", "/map/extra", "/api/nothing", "/tiles/a/b/c.png"):
        r = client.get(path)
        assert r.status_code == 404 and b"not found" in r.data, path
    assert client.get("/").status_code == 200
    assert client.get("/?ds=rel/nagoya_2019_04&k=999").status_code == 200
    assert client.get("/_dash-layout").status_code == 200 and client.get("/_dash-dependencies").status_code == 200
    assert client.get("/assets/style.css").status_code == 200
    assert client.get("/api/mesh-at?ds=rel/nagoya_2019_04&k=10&lat=35.175&lon=136.905").status_code == 200


def test_mesh_across_periods(tmp_path):
    from dashboard.catalog import Catalog

    codes, labels, comp = _release(tmp_path)
    codes_b, labels_b, _ = _release(tmp_path, "nagoya_2020_04", seed=1)
    cat = Catalog(tmp_path)
    both = np.intersect1d(codes, codes_b)[0]
    only_a = np.setdiff1d(codes, codes_b)[0]
    rows = cat.across_periods("rel/nagoya_2019_04", int(both), 50, 10)
    assert [r["period"] for r in rows] == ["2019-04", "2020-04"]
    assert rows[0]["distance"] == 0.0 and rows[0]["cluster"] == int(labels[10][np.flatnonzero(codes == both)[0]])
    assert rows[1]["cluster"] == int(labels_b[10][np.flatnonzero(codes_b == both)[0]])
    missing = cat.across_periods("rel/nagoya_2019_04", int(only_a), 50, 10)
    assert missing[1]["cluster"] is None


def test_distance_class_charts_and_small_multiples(tmp_path):
    import plotly.graph_objects as go

    from dashboard.catalog import Catalog
    from dashboard.figures import DISTANCE_LABELS, class_charts

    _release(tmp_path)
    cat = Catalog(tmp_path)
    key = "rel/nagoya_2019_04"
    charts = cat.distance_class_charts(key, 0, "sum")
    assert charts.shape == (6, 2, 12, 7)
    # class 0 is the clicked mesh alone: its chart is the mesh's own chart
    assert np.allclose(charts[0], cat.mesh_pattern(key, 0), atol=1e-5)
    # the classes partition the meshes: their charts add up to the chart of all meshes
    assert np.allclose(charts.sum(axis=0), cat.cluster_charts(key, 5, "sum").sum(axis=0), rtol=1e-4)
    fig = go.Figure(class_charts(charts, DISTANCE_LABELS, "sum"))
    assert len(fig.data) == 6 * 2 * 7 and fig.layout.annotations[0].text == "the mesh: weekday"


def test_figures_built_without_validation_are_valid_plotly():
    """The per-click figures are plain specs (no plotly objects, for speed): every spec must pass plotly's
    validation and reach the browser as the same JSON as the validated figure, plotly's template included."""
    import json

    import plotly.graph_objects as go
    from dash._utils import to_json

    from dashboard.figures import class_charts, pattern_chart, pattern_pair, transition_heatmap

    chart = np.random.default_rng(0).random((2, 12, 7))
    a, b = pattern_pair(chart, 2 * chart, "before", "after")
    figs = [
        pattern_chart(chart, "t"),
        a,
        b,
        class_charts(np.random.default_rng(1).random((5, 2, 12, 7)), ("a", "b", "c", "d", "e"), "sum"),
        transition_heatmap(np.arange(16).reshape(4, 4), "A", "B", ["w", "x", "y", "z"], cell=(1, 2)),
    ]
    for i, spec in enumerate(figs):
        assert isinstance(spec, dict)
        go.Figure(spec)  # raises ValueError on any invalid property
        # Dash sends what it sent for the unvalidated plotly figure these specs replace (plotly adds its template).
        layout = {k: v for k, v in spec["layout"].items() if k != "template"}
        plain = go.Figure({"data": spec["data"], "layout": layout}, _validate=False)
        assert json.loads(to_json(spec)) == json.loads(to_json(plain)), i
        assert spec["layout"]["template"]["layout"]["colorway"]
    figs = [go.Figure(spec) for spec in figs]
    a, b = figs[1], figs[2]
    assert a.layout.yaxis.range == b.layout.yaxis.range and b.layout.yaxis.range[1] >= 2 * chart.sum(axis=-1).max()
    five = figs[3]
    assert len(five.data) == 5 * 2 * 7 and len(five.layout.annotations) == 10
    assert {t.xaxis for t in five.data} == {"x"} | {f"x{i}" for i in range(2, 11)}


def test_the_app_imports_what_requests_need_before_serving(tmp_path):
    """Lazy imports raced between request threads (a 500 under load): create_app imports them first."""
    import subprocess
    import sys

    from dashboard.serve import ROOT

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import app; app.create_app(sys.argv[2], basemap=None); "
        "missing = [m for m in ('PIL.Image', 'PIL.PngImagePlugin', 'sklearn.cluster', 'scipy.sparse') if m not in sys.modules]; "
        "print(missing); sys.exit(1 if missing else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
