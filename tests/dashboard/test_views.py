"""Callback logic of the views, called without a browser (Dash's documented unit-test pattern)."""

from contextvars import copy_context
from pathlib import Path

import numpy as np
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from core.geo.meshcode import code_bounds, latlon_to_code
from core.release.layout import write_dataset
from core.workflow.request import TrainRequest
from dashboard import ids
from dashboard.catalog import AppContext, Catalog, install
from dashboard.views import map as map_view
from dashboard.views import training as training_view

KEY = "rel/nagoya_2019_04"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(3)
    codes = np.unique(latlon_to_code(35.17 + rng.random(200) * 0.01, 136.9 + rng.random(200) * 0.01, 50))
    n = len(codes)
    labels = {k: np.arange(n) % k for k in (5, 10, 20)}
    write_dataset(
        root / "rel", "nagoya_2019_04", codes, np.full(n, 50), rng.normal(size=(n, 8)), rng.normal(size=(168, 8)), labels
    )
    cat = Catalog(root)
    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    return cat


def _centre(cat: Catalog, row: int) -> tuple[float, float]:
    ds = cat.get(KEY)
    s, w, n, e = (float(v[0]) for v in code_bounds(ds.codes[row : row + 1], ds.mesh_sizes[row : row + 1]))
    return (s + n) / 2, (w + e) / 2


def test_a_click_selects_the_mesh_under_it(catalog):
    ds = catalog.get(KEY)
    for row in (0, 7, ds.n_meshes - 1):
        lat, lng = _centre(catalog, row)
        picked = map_view.on_map_click({"latlng": {"lat": lat, "lng": lng}}, KEY)
        assert picked == {"ds": KEY, "row": row, "code": int(ds.codes[row])}


def test_a_click_outside_every_mesh_or_forged_selects_nothing(catalog):
    assert map_view.on_map_click({"latlng": {"lat": 43.0, "lng": 141.3}}, KEY) is None  # Sapporo: no mesh here
    assert map_view.pick_mesh(catalog, KEY, "abc", None) is None
    assert map_view.pick_mesh(catalog, KEY, float("nan"), 136.9) is None
    assert map_view.on_map_click({"latlng": "x"}, KEY) is map_view.dash.no_update
    assert map_view.on_map_click({"latlng": {"lat": 35.17, "lng": 136.9}}, "rel/../etc") is map_view.dash.no_update


def test_url_state_is_parsed_and_clamped(catalog):
    ds = catalog.get(KEY)
    code = int(ds.codes[5])
    st = map_view.parse_url_state(f"?ds={KEY}&k=7&mesh={code}&view=diff", catalog)
    assert st == {"ds": KEY, "k": 7, "selected": {"ds": KEY, "row": 5, "code": code}, "view": "diff", "notes": []}
    assert map_view.parse_url_state(f"?ds={KEY}&k=999", catalog)["k"] == 50
    assert map_view.parse_url_state(f"?ds={KEY}&k=abc", catalog)["k"] == 10
    assert map_view.parse_url_state(f"?ds={KEY}&mesh=abc", catalog)["selected"] is None
    assert map_view.parse_url_state("?ds=nope", catalog)["ds"] is None
    assert map_view.parse_url_state("?view=train", catalog) == {
        "ds": None,
        "k": None,
        "selected": None,
        "view": "train",
        "notes": [],
    }
    for tab in ("people", "regions"):  # every tab a link may open
        st = map_view.parse_url_state(f"?ds={KEY}&view={tab}", catalog)
        assert st["view"] == tab and st["notes"] == []


def test_the_url_callback_sets_dataset_and_k_radio_or_box(catalog):
    def run(search):
        def call():
            context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{ids.URL}.search", "value": search}]))
            return map_view.on_url_or_k(search, None, None)

        return copy_context().run(call)

    ds, k, k_any, selected, tab, focus, note = run(f"?ds={KEY}&k=20")
    assert (ds, k, k_any, selected, tab, note) == (KEY, 20, None, None, "map", "")
    ds, k, k_any, _, _, _, _ = run(f"?ds={KEY}&k=13")
    assert (k, k_any) == (None, 13)
    # a link to a mesh selects it and moves the map to it
    code = int(catalog.get(KEY).codes[3])
    _, _, _, selected, _, focus, _ = run(f"?ds={KEY}&k=10&mesh={code}")
    assert selected == {"ds": KEY, "row": 3, "code": code}
    assert focus["ds"] == KEY and focus["zoom"] == 16 and np.allclose(focus["center"], _centre(catalog, 3))
    # a URL asking for what does not exist is answered with a visible note
    *_, note = run("?ds=demo/atlantis_2021_04&k=10")
    assert "atlantis" in note and "not in the data folder" in note


def test_a_url_without_a_dataset_gets_notes_about_the_one_shown(catalog):
    def run(search):
        def call():
            context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{ids.URL}.search", "value": search}]))
            return map_view.on_url_or_k(search, None, None, KEY)

        return copy_context().run(call)

    ds, k, k_any, selected, _, _, note = run("?k=999")
    assert ds is map_view.dash.no_update and (k, k_any) == (None, 50)
    assert note == "k = '999' is out of range (an integer from 2 to 50); showing k = 50."
    *_, note = run("?mesh=abc")
    assert note == "mesh 'abc' is not a mesh code (8 to 12 digits)."
    code = int(catalog.get(KEY).codes[2])
    ds, k, _, selected, _, focus, note = run(f"?mesh={code}")
    assert selected == {"ds": KEY, "row": 2, "code": code} and focus["ds"] == KEY and note == ""
    assert k is map_view.dash.no_update  # no k asked: the radio is left as it is

    def pick(prop, value):
        def call():
            context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{prop}.value", "value": value}]))
            return map_view.on_url_or_k("?k=999", value if prop == ids.K else None, value if prop == ids.K_ANY else None, KEY)

        return copy_context().run(call)

    # The user picks a k: the URL's note about k goes (it no longer explains what is shown).
    assert pick(ids.K, 20)[-1] == "" and pick(ids.K_ANY, 7)[-1] == ""


def test_the_training_form_becomes_a_checked_request(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "stays.csv"
    f.write_text("x")
    req = training_view.build_request(
        data,
        [f],
        None,
        "free",
        None,
        " kobe ",
        "2016-10",
        dim="999",
        tol=None,
        schedule="bogus",
        epochs="-3",
        min_users="0",
        tz="",
        distance="1e9",
        minutes=None,
    )
    assert isinstance(req, TrainRequest)
    assert (req.name, req.period, req.anchors) == ("kobe", "2016-10", None)
    assert req.dim == 64 and req.epochs == 1 and req.schedule == "exponential" and req.min_users == 1
    assert req.tz == "Asia/Tokyo" and req.distance == 100_000.0 and req.min_duration == 5.0
    argv = req.to_argv(Path("/s.json"), Path("/c"), under_job=True)
    assert argv[1:4] == ["-m", "core", "add-dataset"] and "--free" in argv and "--under-job" in argv
    assert "--dim=64" in argv and "--min-users=1" in argv and "--status-file=/s.json" in argv
    # The worker reads the same request back from that command line.
    from core.cli import build_parser

    back = TrainRequest.from_args(build_parser().parse_args(argv[3:]))
    assert back == req
    with pytest.raises(Exception, match="anchor set"):
        training_view.build_request(data, [f], None, "anchored", None, "kobe", "2016-10")
