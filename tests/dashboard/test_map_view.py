"""The map view's pure parts: match thresholds, search parsing and resolving, URL notes, the hover route."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import knobs
from core.analysis.similarity import top_matches
from core.geo.meshcode import code_bounds, code_centers, latlon_to_code, parent_code
from core.geo.places import find_places, parse_query, read_places, write_places
from core.release.layout import write_dataset
from dashboard import ids
from dashboard.catalog import AppContext, Catalog, install
from dashboard.views import map as map_view

KEY = "rel/nagoya_2019_04"
OSAKA = "rel/osaka_2021_04"


def _as_callback(fn, prop_id: str, *args):
    """Call a callback as Dash would, with ``prop_id`` as the input that fired."""
    from contextvars import copy_context

    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": None}]))
        return fn(*args)

    return copy_context().run(call)


# ------------------------------------------------------------------ thresholds


def test_top_percent_rank_and_distance():
    d = np.array([0.0, 0.5, 0.1, 0.3, 0.2, 0.9, 0.7, 0.4, 0.8, 0.6, 0.05])
    top = top_matches(d, "percent", 10, exclude=0)  # 10 % of 10 candidates: the nearest one
    assert top.index.tolist() == [10] and top.candidates == 10 and top.cutoff == 0.05
    assert top_matches(d, "percent", 30, exclude=0).index.tolist() == [10, 2, 4]
    assert top_matches(d, "percent", 0.01, exclude=0).count == 1  # never empty
    assert top_matches(d, "percent", 100, exclude=0).count == 10
    assert top_matches(d, "rank", 4, exclude=0).index.tolist() == [10, 2, 4, 3]
    assert top_matches(d, "rank", 50, exclude=0).count == 10
    assert top_matches(d, "distance", 0.2, exclude=0).index.tolist() == [10, 2, 4]
    none = top_matches(d, "distance", 0.01, exclude=0)
    assert none.count == 0 and np.isnan(none.cutoff)


def test_top_matches_count_only_candidates():
    d = np.array([0.0, 0.1, 0.1, 0.2, 0.3])
    own = np.array([True, True, False, True, True])  # row 2: a complemented copy of row 1
    top = top_matches(d, "rank", 2, candidates=own, exclude=0)
    assert top.index.tolist() == [1, 3] and top.candidates == 3
    with pytest.raises(ValueError, match="unknown"):
        top_matches(d, "median", 1)
    with pytest.raises(ValueError, match="negative"):
        top_matches(d, "rank", -1)


@pytest.mark.parametrize(
    ("by", "value", "expected"),
    [
        ("percent", 1, ("percent", 1.0)),
        ("percent", 500, ("percent", 100.0)),
        ("percent", -3, ("percent", 0.01)),
        ("percent", "abc", ("percent", 1.0)),
        ("rank", 100, ("rank", 100.0)),
        ("rank", 0, ("rank", 1.0)),
        ("distance", 2.5, ("distance", 2.5)),
        ("distance", None, ("distance", None)),  # no fixed radius: taken from the clicked mesh
        ("bogus", 5, ("percent", 5.0)),
        (None, None, ("percent", knobs.MATCH_PERCENT.default)),
    ],
)
def test_thresholds_from_the_browser_are_validated(by, value, expected):
    assert map_view.match_threshold(by, value) == expected


@pytest.mark.parametrize(
    ("by", "value", "note"),
    [
        ("percent", 0, "top % = '0' is out of range (a number from 0.01 to 100 %); using top % = 0.01."),
        ("percent", 500, "top % = '500' is out of range (a number from 0.01 to 100 %); using top % = 100."),
        ("percent", -3, "top % = '-3' is out of range (a number from 0.01 to 100 %); using top % = 0.01."),
        ("rank", 2.5, "top N = '2.5' is not a whole number (an integer from 1 to 1,000,000); using top N = 2."),
        ("distance", -1, "within distance = '-1' is out of range (a number from 0 to 1e+06); using within distance = 0."),
        ("percent", 1, ""),
        ("percent", None, ""),
        ("rank", 100, ""),
        ("distance", 0.4, ""),
        ("distance", None, ""),
    ],
)
def test_a_threshold_out_of_range_is_clamped_and_noted(by, value, note):
    assert map_view.threshold_note(by, value) == note
    kind, used = map_view.match_threshold(by, value)
    if note:  # the note names the value in force
        assert note.endswith(f"= {used:g}.")


def test_number_boxes_leave_their_range_to_the_server():
    """A browser sends an out-of-range number box as empty (None): the server could not say why."""
    page = map_view.layout([], {"ds": None, "k": 10}, None)
    boxes = {}

    def walk(node):
        if getattr(node, "id", None) in (ids.K_ANY, ids.MATCH_VALUE):
            boxes[node.id] = node
        children = getattr(node, "children", None)
        for child in children if isinstance(children, list) else [children] if children is not None else []:
            walk(child)

    walk(page)
    assert set(boxes) == {ids.K_ANY, ids.MATCH_VALUE}
    for box in boxes.values():
        props = box.to_plotly_json()["props"]
        assert "min" not in props and "max" not in props and props["step"] == "any"


def test_the_any_k_box_is_clamped_and_noted_like_the_url(catalog):
    assert map_view.k_note(catalog, KEY, None, 999) == "k = '999' is out of range (an integer from 2 to 50); using k = 50."
    assert map_view.k_note(catalog, KEY, None, 1) == "k = '1' is out of range (an integer from 2 to 50); using k = 2."
    assert map_view.k_note(catalog, KEY, 10, None) == "" and map_view.k_note(catalog, KEY, None, 13) == ""
    assert map_view.effective_k(None, 999) == 50


def test_threshold_descriptions():
    assert map_view.describe_threshold("percent", 1.0) == "top 1 %"
    assert map_view.describe_threshold("rank", 100.0) == "top 100"
    assert map_view.describe_threshold("distance", 2.0) == "within distance 2"
    text = map_view.match_count_text("top 1 %", 37, 3689, 0.1234, {"demo / osaka 2021-04": 12})
    assert (
        text
        == "Matches (top 1 %): 37 of 3,689 meshes here, distance up to 0.123; as near in other datasets: demo / osaka 2021-04 12."
    )


# ------------------------------------------------------------------ search text


@pytest.mark.parametrize(
    ("text", "kind", "fields"),
    [
        ("523657929010", "code", {"code": 523657929010, "size": 50}),
        (" 5236-6724-14 ", "code", {"code": 5236672414, "size": 250}),
        ("35.17, 136.91", "point", {"lat": 35.17, "lon": 136.91}),
        ("35.17 136.91", "point", {"lat": 35.17, "lon": 136.91}),
        ("136.91, 35.17", "point", {"lat": 35.17, "lon": 136.91}),  # lon, lat: only that order is valid
        ("(35.17N, 136.91E)", "point", {"lat": 35.17, "lon": 136.91}),
        ("33.9S, 151.2E", "point", {"lat": -33.9, "lon": 151.2}),
        ("Sakae Station", "name", {}),
        ("Nishiki 3-chome", "name", {}),
        ("", "empty", {}),
        (None, "empty", {}),
    ],
)
def test_search_text_is_read_as_code_point_or_name(text, kind, fields):
    q = parse_query(text)
    assert q.kind == kind
    for name, value in fields.items():
        assert getattr(q, name) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "why"),
    [("12345", "5 digits"), ("999999999999", "not a valid 50 m mesh code"), ("95.0, 200.0", "not a point")],
)
def test_bad_search_text_says_why(text, why):
    q = parse_query(text)
    assert q.kind == "bad" and why in q.error


PLACES = pd.DataFrame(
    {
        "name": ["Sakae Station", "Sakae shopping district", "Higashi-Sakae", "Nagoya Station", "Osu"],
        "kind": ["station", "shopping", "nightlife", "station", "shopping"],
        "city": "nagoya",
        "lat": [35.17, 35.1685, 35.1655, 35.1709, 35.159],
        "lon": [136.9085, 136.9085, 136.91, 136.8815, 136.902],
    }
)


def test_place_names_rank_exact_then_prefix_then_contained():
    assert find_places(PLACES, "osu")["name"].tolist() == ["Osu"]
    assert find_places(PLACES, "sakae")["name"].tolist() == ["Sakae Station", "Sakae shopping district", "Higashi-Sakae"]
    assert find_places(PLACES, "higashi sakae")["name"].tolist() == ["Higashi-Sakae"]  # spaces and hyphens ignored
    assert find_places(PLACES, "station", limit=1)["name"].tolist() == ["Sakae Station"]
    assert find_places(PLACES, "kyoto").empty and find_places(PLACES, "  ").empty


def test_places_file_round_trip_and_bad_rows_left_out(tmp_path):
    write_places(tmp_path, PLACES)
    assert read_places(tmp_path).equals(PLACES)
    (tmp_path / "places.csv").write_text("name,lat,lon\nGood,35.1,136.9\n,35.0,136.0\nFar,135.0,136.0\nNaN,x,1\n")
    back = read_places(tmp_path)
    assert back["name"].tolist() == ["Good"] and back["kind"].tolist() == [""]
    assert read_places(tmp_path / "none").empty


def test_the_demo_world_names_its_places():
    from core.simulation.world import CITIES, city_places

    nagoya = city_places("nagoya")
    assert nagoya.iloc[0].to_dict() == {"name": "Nagoya", "kind": "city", "city": "nagoya", "lat": 35.165, "lon": 136.9}
    assert {"Nagoya Station", "Sakae Station", "Hisaya Odori Park"} <= set(nagoya["name"])
    assert nagoya["name"].is_unique
    for city in CITIES:  # every hub of every city has a name
        assert all(h.name for h in CITIES[city].hubs)


# ------------------------------------------------------------------ a catalog: search, URL notes, hover


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("mapview")
    rng = np.random.default_rng(5)
    for name, (lat0, lon0) in {"nagoya_2019_04": (35.165, 136.905), "osaka_2021_04": (34.69, 135.50)}.items():
        own = np.unique(latlon_to_code(lat0 + rng.random(300) * 0.01, lon0 + rng.random(300) * 0.01, 50))
        # one 250 m mesh with two complemented 50 m children (the parent's embedding and labels)
        big = parent_code(own[:1], 50, 250)
        own = own[parent_code(own, 50, 250) != big[0]]
        s, w, n, e = (float(v[0]) for v in code_bounds(big, np.array([250])))
        children = latlon_to_code(np.array([s + 0.0001, n - 0.0001]), np.array([w + 0.0001, e - 0.0001]), 50)
        codes = np.r_[own, big, children]
        sizes = np.r_[np.full(len(own), 50), 250, 50, 50]
        n_own = len(own) + 1
        vec = rng.normal(size=(n_own, 8)).astype(np.float32)
        vectors = np.vstack([vec, vec[[-1, -1]]])
        labels = {k: np.r_[np.arange(n_own) % k, [(n_own - 1) % k] * 2] for k in (5, 10, 20)}
        comp = np.r_[np.zeros(n_own, bool), True, True]
        write_dataset(root / "rel", name, codes, sizes, vectors, rng.normal(size=(168, 8)), labels, comp)
    write_places(root / "rel", PLACES)
    cat = Catalog(root)
    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    return cat


def test_complemented_meshes_know_their_parent(catalog):
    ds = catalog.get(KEY)
    parents = catalog.parent_rows(KEY)
    comp = np.flatnonzero(ds.complemented)
    assert len(comp) == 2 and (ds.mesh_sizes[parents[comp]] == 250).all()
    assert (parents[~ds.complemented] == -1).all()
    assert catalog.own_row(KEY, int(comp[0])) == int(parents[comp[0]])


def test_matches_leave_out_complemented_copies_and_the_parent(catalog):
    ds = catalog.get(KEY)
    child = int(np.flatnonzero(ds.complemented)[0])
    parent = catalog.own_row(KEY, child)
    top = catalog.matches(KEY, child, "rank", 1000)
    assert top.candidates == int((~ds.complemented).sum()) - 1  # own meshes, less the parent itself
    assert parent not in top.index and not ds.complemented[top.index].any()
    pct = catalog.matches(KEY, 0, "percent", 1.0)
    assert pct.count == int(np.ceil(pct.candidates * 0.01))


def test_match_layer_colours_selected_matches_and_the_rest(catalog):
    from dashboard.tiles import match_values

    ds = catalog.get(KEY)
    child = int(np.flatnonzero(ds.complemented)[0])
    values = match_values(catalog, KEY, child, "rank", 5)
    parent = catalog.own_row(KEY, child)
    assert values[parent] == 0 and (values[ds.complemented] == 0).all()  # the selected family
    assert (values == 1).sum() == 5
    assert set(np.flatnonzero(values == 1)) == set(catalog.matches(KEY, child, "rank", 5).index.tolist())


def _reference_distances(ds, row: int, space: str) -> np.ndarray:
    """Distances to mesh ``row`` in float64, computed here: Hellinger of the predicted stay patterns, or Euclidean."""
    if space == "embedding":
        return np.linalg.norm(ds.vectors.astype(np.float64) - ds.vectors[row], axis=1)
    logits = ds.vectors.astype(np.float64) @ ds.decoder.astype(np.float64).T
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.sqrt(np.clip(1.0 - np.sqrt(p) @ np.sqrt(p[row]), 0.0, 1.0))


@pytest.mark.parametrize("space", ["pattern", "embedding"])
def test_matches_rank_by_the_chosen_space(catalog, space):
    ds = catalog.get(KEY)
    assert catalog.similarity_space(KEY) == "pattern"  # the knob's default: every dataset here has a model
    assert catalog.similarity_space(KEY, "bogus") == "pattern" and catalog.similarity_space(KEY, "embedding") == "embedding"
    ref = _reference_distances(ds, 3, space)
    ref[ds.complemented] = np.inf
    ref[3] = np.inf
    order = np.argsort(ref, kind="stable")
    assert ref[order[5]] - ref[order[4]] > 1e-5  # no near tie at the cut (the data is seeded)
    top = catalog.matches(KEY, 3, "rank", 5, space)
    assert set(top.index.tolist()) == set(order[:5].tolist())
    assert top.cutoff == pytest.approx(ref[order[4]], abs=1e-4)
    # a distance threshold keeps the OpenUAS distance classes: embedding units whatever the space
    assert catalog.match_space(KEY, "distance", space) == "embedding"


def test_match_tiles_follow_the_space_and_refuse_an_unknown_one(catalog):
    from flask import Flask
    from werkzeug.datastructures import MultiDict
    from werkzeug.exceptions import HTTPException

    from dashboard.tiles import layer_values

    args = {"ds": KEY, "mode": "similar", "sel": "3", "by": "rank", "top": "5"}
    with Flask(__name__).test_request_context():
        for space in ("pattern", "embedding"):
            values, _ = layer_values(catalog, MultiDict({**args, "space": space}))
            assert set(np.flatnonzero(values == 1)) == set(catalog.matches(KEY, 3, "rank", 5, space).index.tolist())
        default, _ = layer_values(catalog, MultiDict(args))
        assert np.array_equal(default, layer_values(catalog, MultiDict({**args, "space": "pattern"}))[0])
        with pytest.raises(HTTPException):
            layer_values(catalog, MultiDict({**args, "space": "cosine"}))


def test_within_distance_defaults_to_the_top_percent_distance_and_hides_empty_classes(catalog):
    row = 3
    selected = {"ds": KEY, "row": row, "code": int(catalog.get(KEY).codes[row])}
    ds = catalog.get(KEY)
    ref = _reference_distances(ds, row, "embedding")
    ref[ds.complemented] = np.inf
    ref[row] = np.inf
    n = int(np.isfinite(ref).sum())
    want = np.sort(ref)[int(np.ceil(n * knobs.MATCH_PERCENT.default / 100)) - 1]  # the top 1 %'s distance
    radius, auto = map_view.resolve_threshold(catalog, KEY, row, "distance", None)
    assert auto and radius == pytest.approx(want, abs=1e-4)
    assert map_view.resolve_threshold(catalog, KEY, row, "distance", 2.5) == (2.5, False)
    *_, similar, _ = map_view.show_selection(selected, 10, None, "distance", None, KEY)
    count = int(np.ceil(n * knobs.MATCH_PERCENT.default / 100))
    assert f"Matches (within distance {radius:.3f}, its top 1 %'s): {count:,} of {n:,} meshes here" in str(similar)
    url, legend_children, *_ = _as_callback(
        map_view.show_map, f"{ids.MATCH_BY}.value", KEY, 10, None, "similar", "distance", None, selected, "sum"
    )
    assert f"thr={radius!r}" in url  # the tiles draw the meshes within the radius in force
    assert "its top 1 %" in str(legend_children)
    # the chart: one panel per distance class holding meshes (here: random embeddings, distances ~4)
    fig = _as_callback(map_view.show_map, f"{ids.MATCH_BY}.value", KEY, 10, None, "similar", "distance", None, selected, "sum")[3]
    classes = np.bincount(catalog.distance_classes(KEY, row), minlength=6)
    panels = [a["text"] for a in fig["layout"]["annotations"] if a["text"].endswith(": weekday")]
    assert len(panels) == int((classes > 0).sum()) < 6
    assert all("(0 meshes)" not in p for p in panels)
    assert ">= 16" in fig["layout"]["title"]["text"] and "no meshes at distance" in fig["layout"]["title"]["text"]


def test_the_lists_say_which_distance_they_show(catalog):
    selected = {"ds": KEY, "row": 3, "code": int(catalog.get(KEY).codes[3])}
    texts = {}
    for space in ("pattern", "embedding"):
        *_, similar, _ = map_view.show_selection(selected, 10, None, "rank", 5, KEY, space)
        texts[space] = str(similar)
    assert "pattern distance" in texts["pattern"] and "Hellinger" in texts["pattern"]
    assert "embedding distance" in texts["embedding"] and "pattern distance" not in texts["embedding"]
    # the nearest in Osaka by pattern: its Hellinger distance, to 3 decimals
    osaka = catalog.get(OSAKA)
    near = catalog.distances_across(KEY, 3, "pattern")[OSAKA]
    best = int(np.argmin(near))
    assert not osaka.complemented[best]
    assert f"{int(osaka.codes[best])} ({int(osaka.mesh_sizes[best])} m) - pattern distance {near[best]:.3f}" in texts["pattern"]


def test_a_trained_dataset_is_named_by_its_label_everywhere_in_the_map_view(tmp_path):
    """A dataset trained here keeps its user's name and its space in the summary, lists and messages."""
    import json

    from dashboard import catalog as catalog_module

    rng = np.random.default_rng(11)
    codes = np.unique(latlon_to_code(35.165 + rng.random(80) * 0.01, 136.905 + rng.random(80) * 0.01, 50))
    vec = rng.normal(size=(len(codes), 8)).astype(np.float32)
    labels = {k: np.arange(len(codes)) % k for k in (5, 10, 20)}
    for release, name in (("demo", "nagoya_2019_04"), ("user", "walkthru_2019-04")):
        write_dataset(tmp_path / release, name, codes, np.full(len(codes), 50), vec, rng.normal(size=(168, 8)), labels)
    metrics = tmp_path / "user" / "japan_city" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "walkthru_2019-04.json").write_text(json.dumps({"anchored": False, "period": "2019-04", "seconds": 1.0}))
    cat = Catalog(tmp_path)
    user = "user/walkthru_2019-04"
    label = cat.label(user)
    assert label.startswith("user / walkthru_2019-04 · ") and label != cat.label("demo/nagoya_2019_04")
    before = catalog_module._CONTEXT
    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    try:
        summary = _as_callback(map_view.show_map, f"{ids.DATASET}.value", user, 10, None, "cluster", "percent", 1, None, "sum")[2]
        code = int(cat.get(user).codes[3])
        facts, *_ = map_view.show_selection({"ds": user, "row": 3, "code": code}, 10, None, "percent", 1, user)
    finally:
        catalog_module._CONTEXT = before
    assert summary.startswith(f"{label}: {len(codes):,} meshes")
    assert label in str(facts) and "nagoya 2019-04" not in summary
    found = map_view.resolve_search(cat, user, str(code))
    assert found["selected"]["row"] == 3 and label in found["message"]


def test_a_renamed_cluster_is_shown_in_the_panel_and_user_text_stays_text(catalog):
    from app import _view_callbacks

    # the panel's callback listens to renames (the legend's did; the panel kept the old name). Dash
    # moves its global registry into the first app set up in the process: read app.py's copy of it.
    panel = next(v for key, v in _view_callbacks()[0].items() if f"{ids.MESH_INFO}.children" in key)
    assert {"id": ids.NAMES_VERSION, "property": "data"} in panel["inputs"]
    row = 3
    c = int(catalog.labels(KEY, 10)[row])
    selected = {"ds": KEY, "row": row, "code": int(catalog.get(KEY).codes[row])}
    catalog.rename_cluster(KEY, 10, c, "Nightlife <b>strip</b> & bars")
    try:
        facts, *_ = map_view.show_selection(selected, 10, None, "percent", 1, KEY, None, 1)
        fig = _as_callback(
            map_view.show_map, f"{ids.NAMES_VERSION}.data", KEY, 10, None, "cluster", "percent", 1, selected, "sum", 1
        )[3]
    finally:
        catalog.rename_cluster(KEY, 10, c, "")
    assert f"{c} of 10: Nightlife <b>strip</b> & bars" in str(facts)  # a Dash text node: shown as typed
    title = fig["layout"]["title"]["text"]
    assert f"cluster {c}: Nightlife &lt;b&gt;strip&lt;/b&gt; &amp; bars (sum" in title and "<b>" not in title


def test_places_of_a_dataset_are_its_release_places_and_cities_within_its_extent(catalog):
    names = set(catalog.places(KEY)["name"])
    assert {"Sakae Station", "Higashi-Sakae", "Nagoya"} <= names
    assert "Osu" not in names and "Osaka" not in names  # south of these meshes; another city
    assert set(catalog.places(OSAKA)["name"]) == {"Osaka"}  # the release's places are all in Nagoya


def test_search_a_place_in_another_dataset_switches_and_selects(catalog):
    found = map_view.resolve_search(catalog, OSAKA, "sakae st")
    assert found["ds"] == KEY and "Sakae Station" in found["message"]
    assert found["focus"]["center"] == [35.17, 136.9085] and found["focus"]["ds"] == KEY
    if found["selected"] is not None:  # a mesh under the station: that one is selected
        assert found["selected"] == map_view.pick_mesh(catalog, KEY, 35.17, 136.9085)


def test_search_a_code_and_a_point(catalog):
    ds = catalog.get(KEY)
    code = int(ds.codes[7])
    found = map_view.resolve_search(catalog, KEY, str(code))
    assert found["selected"] == {"ds": KEY, "row": 7, "code": code} and found["ds"] == KEY
    lat, lon = code_centers(ds.codes[7:8], ds.mesh_sizes[7:8])
    found = map_view.resolve_search(catalog, OSAKA, f"{lat[0]:.6f}, {lon[0]:.6f}")
    assert found["ds"] == KEY and found["selected"]["row"] == 7 and "in rel / nagoya 2019-04" in found["message"]
    # a 50 m code inside a 250 m mesh selects the 250 m mesh (the mesh under its centre)
    big = int(np.flatnonzero(ds.mesh_sizes == 250)[0])
    s, w, n, e = (float(v[0]) for v in code_bounds(ds.codes[big : big + 1], ds.mesh_sizes[big : big + 1]))
    inside = int(latlon_to_code(np.array([(s + n) / 2]), np.array([(w + e) / 2]), 50)[0])
    assert inside not in ds.codes
    assert map_view.resolve_search(catalog, KEY, str(inside))["selected"]["row"] == big


def _metres(lat, lon, c_lat, c_lon):
    return 111_320.0 * np.hypot(c_lat - lat, (c_lon - lon) * np.cos(np.radians(lat)))


def test_search_a_code_names_it_once_with_the_dataset_label(catalog):
    code = int(catalog.get(KEY).codes[7])
    message = map_view.resolve_search(catalog, OSAKA, str(code))["message"]
    assert message == f"mesh {code} in rel / nagoya 2019-04."


def test_a_point_or_place_beside_the_meshes_selects_the_nearest_within_300_m(catalog, monkeypatch):
    ds = catalog.get(KEY)
    c_lat, c_lon = code_centers(ds.codes, ds.mesh_sizes)
    south = int(np.argmin(c_lat))
    lat, lon = float(c_lat[south]) - 0.0013, float(c_lon[south])  # about 145 m south of the southernmost centre
    d = _metres(lat, lon, c_lat, c_lon)
    best = int(np.argmin(d))
    assert 50 < d[best] < 300 and map_view.pick_mesh(catalog, KEY, lat, lon) is None  # between meshes, close to one
    found = map_view.resolve_search(catalog, OSAKA, f"{lat:.6f}, {lon:.6f}")
    assert found["ds"] == KEY and found["selected"] == {"ds": KEY, "row": best, "code": int(ds.codes[best])}
    assert found["message"].endswith(f"in rel / nagoya 2019-04: nearest mesh {int(ds.codes[best])}, {d[best]:.0f} m away.")
    # places: one 145 m beside the meshes (selected), one about 600 m west of them (shown, not selected)
    west = int(np.argmin(c_lon))
    far_lat, far_lon = float(c_lat[west]), float(c_lon[west]) - 600 / (111_320.0 * np.cos(np.radians(c_lat[west])))
    far_d = _metres(far_lat, far_lon, c_lat, c_lon).min()
    places = pd.DataFrame(
        {"name": ["Near Corner", "Far Corner"], "kind": "park", "city": "nagoya", "lat": [lat, far_lat], "lon": [lon, far_lon]}
    ).assign(key=KEY)
    monkeypatch.setattr(catalog, "all_places", lambda: places)
    near = map_view.resolve_search(catalog, OSAKA, "near corner")
    assert near["selected"]["row"] == best and f"nearest mesh {int(ds.codes[best])}, {d[best]:.0f} m away" in near["message"]
    far = map_view.resolve_search(catalog, OSAKA, "far corner")
    assert far["ds"] == KEY and far["selected"] is None
    assert (
        far["message"] == f"Far Corner (park) in rel / nagoya 2019-04: no mesh within 300 m (the nearest is {far_d:,.0f} m away)."
    )
    # the view holds both the place and its nearest mesh (half way between them)
    assert far["focus"]["center"][1] == pytest.approx((far_lon + c_lon[west]) / 2, abs=0.002)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type a mesh code"),
        ("12345", "not a mesh code"),
        ("Atlantis", "No place called 'Atlantis'"),
        ("43.06, 141.35", "No dataset has a mesh at or within 300 m of 43.06000, 141.35000."),
    ],
)
def test_search_that_finds_nothing_says_so(catalog, text, message):
    found = map_view.resolve_search(catalog, KEY, text)
    assert message in found["message"] and found["selected"] is None


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ("?ds=rel/atlantis_2021_04", "dataset 'rel/atlantis_2021_04', which is not in the data folder"),
        (f"?ds={KEY}&k=999", "k = '999' is out of range (an integer from 2 to 50); showing k = 50."),
        (f"?ds={KEY}&k=abc", "k = 'abc' is not a number of clusters; showing k = 10."),
        (f"?ds={KEY}&mesh=abc", "mesh 'abc' is not a mesh code"),
        (f"?ds={KEY}&mesh=523657929010", "mesh 523657929010 is not in rel / nagoya 2019-04."),
        (f"?ds={KEY}&view=settings", "view 'settings', which does not exist; showing the map"),
    ],
)
def test_urls_asking_for_what_does_not_exist_get_a_note(catalog, query, note):
    notes = map_view.parse_url_state(query, catalog)["notes"]
    assert len(notes) == 1 and note in notes[0]


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ("?k=999", "k = '999' is out of range (an integer from 2 to 50); showing k = 50."),
        ("?k=-1", "k = '-1' is out of range (an integer from 2 to 50); showing k = 2."),
        ("?k=abc", "k = 'abc' is not a number of clusters; showing k = 10."),
        ("?mesh=abc", "mesh 'abc' is not a mesh code"),
        ("?mesh=523657929010", "mesh 523657929010 is not in rel / nagoya 2019-04."),
        ("?ds=rel/atlantis_2021_04&k=999", "k = '999' is out of range"),
    ],
)
def test_urls_without_a_dataset_are_checked_against_the_one_shown(catalog, query, note):
    state = map_view.parse_url_state(query, catalog, current=KEY)
    assert state["ds"] is None and any(note in n for n in state["notes"]), state["notes"]


def test_a_url_without_a_dataset_applies_k_and_mesh_to_the_one_shown(catalog):
    code = int(catalog.get(KEY).codes[4])
    state = map_view.parse_url_state(f"?k=20&mesh={code}", catalog, current=KEY)
    assert state == {"ds": None, "k": 20, "selected": {"ds": KEY, "row": 4, "code": code}, "view": "map", "notes": []}
    assert map_view.parse_url_state("?view=diff", catalog, current=KEY)["k"] is None  # no k asked: none set


def test_a_good_url_has_no_note(catalog):
    code = int(catalog.get(KEY).codes[0])
    assert map_view.parse_url_state(f"?ds={KEY}&k=10&mesh={code}", catalog)["notes"] == []


def test_hover_route_answers_code_cluster_and_name_and_refuses_bad_values(catalog):
    from flask import Flask

    from dashboard.tiles import register_tiles

    server = Flask(__name__)
    register_tiles(server)
    client = server.test_client()
    ds = catalog.get(KEY)
    lat, lon = code_centers(ds.codes[4:5], ds.mesh_sizes[4:5])
    got = client.get(f"/api/mesh-at?ds={KEY}&k=10&lat={lat[0]}&lon={lon[0]}").get_json()
    cluster = int(catalog.labels(KEY, 10)[4])
    assert got["code"] == int(ds.codes[4]) and got["cluster"] == cluster
    assert got["name"] == catalog.cluster_names(KEY, 10)[cluster] and got["size"] == 50
    assert client.get(f"/api/mesh-at?ds={KEY}&k=10&lat=43.0&lon=141.3").get_json() == {}
    assert client.get(f"/api/mesh-at?ds=nope&k=10&lat={lat[0]}&lon={lon[0]}").status_code == 404
    for bad in (
        "k=abc&lat=35&lon=136",
        "k=10&lat=abc&lon=136",
        "k=10&lat=nan&lon=136",
        "k=99&lat=35&lon=136",
        "k=10&lat=95&lon=136",
    ):
        assert client.get(f"/api/mesh-at?ds={KEY}&{bad}").status_code == 400, bad


def test_similar_tile_parameters_are_checked(catalog):
    from flask import Flask

    from dashboard.tiles import register_tiles

    server = Flask(__name__)
    register_tiles(server)
    client = server.test_client()
    base = f"/tiles/12/3600/1612.png?ds={KEY}&mode=similar&sel=0"
    assert client.get(base + "&by=percent&top=1").status_code == 200
    assert client.get(base + "&by=rank&top=100").status_code == 200
    for bad in ("&by=percent&top=abc", "&by=percent&top=500", "&by=rank&top=1.5", "&by=median&top=1", "&by=rank&top=0"):
        assert client.get(base + bad).status_code == 400, bad


def test_a_space_with_a_dataset_without_model_file_is_searched_by_embedding(tmp_path):
    rng = np.random.default_rng(9)
    for name, (lat0, lon0) in {"nagoya_2019_04": (35.165, 136.905), "osaka_2021_04": (34.69, 135.50)}.items():
        codes = np.unique(latlon_to_code(lat0 + rng.random(60) * 0.01, lon0 + rng.random(60) * 0.01, 50))
        vec = rng.normal(size=(len(codes), 8)).astype(np.float32)
        labels = {k: np.arange(len(codes)) % k for k in (5, 10, 20)}
        write_dataset(tmp_path / "rel", name, codes, np.full(len(codes), 50), vec, rng.normal(size=(168, 8)), labels)
    (tmp_path / "rel" / "japan_city" / "model" / "osaka_2021_04.pth").unlink()  # Osaka: no model file
    cat = Catalog(tmp_path)
    assert cat.similarity_space(KEY) == "embedding" and cat.similarity_space(KEY, "pattern") == "embedding"
    top = cat.matches(KEY, 0, "rank", 3)
    ds = cat.get(KEY)
    ref = np.linalg.norm(ds.vectors.astype(np.float64) - ds.vectors[0], axis=1)
    ref[0] = np.inf
    assert set(top.index.tolist()) == set(np.argsort(ref)[:3].tolist())
    from dashboard import catalog as catalog_module

    before = catalog_module._CONTEXT
    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    try:
        *_, similar, _ = map_view.show_selection({"ds": KEY, "row": 0, "code": int(ds.codes[0])}, 10, None, "rank", 3, KEY)
    finally:
        catalog_module._CONTEXT = before  # the other tests' app
    text = str(similar)
    assert "embedding distance" in text and "pattern distance" not in text and "has no model file" in text
