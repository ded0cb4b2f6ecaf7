"""The diff view's plain functions and callbacks, without a browser: ranking, CSV, address, empty states."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from core.analysis.diff import PeriodDiff, change_csv, change_table, distance_edges
from core.geo.meshcode import latlon_to_code
from core.release.layout import write_dataset
from dashboard.catalog import AppContext, Catalog, install
from dashboard.views import diff as view

A, B = "rel/nagoya_2019_04", "rel/nagoya_2020_04"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Nagoya 2019 and 2020 (mostly the same meshes), Osaka 2021 (same release), and a free Nagoya 2021."""
    root = tmp_path_factory.mktemp("diffview")
    rng = np.random.default_rng(5)
    codes = np.unique(latlon_to_code(35.17 + rng.random(400) * 0.01, 136.9 + rng.random(400) * 0.01, 50))
    n = len(codes)
    decoder = rng.normal(size=(168, 8))
    vec = rng.normal(size=(n, 8))
    labels = {k: np.arange(n) % k for k in (5, 10, 20)}
    write_dataset(root / "rel", "nagoya_2019_04", codes, np.full(n, 50), vec, decoder, labels)
    moved = vec.copy()
    moved[:40] = rng.normal(size=(40, 8)) * 3  # the first 40 meshes change their use
    write_dataset(root / "rel", "nagoya_2020_04", codes, np.full(n, 50), moved, decoder, labels)
    osaka = np.unique(latlon_to_code(34.69 + rng.random(100) * 0.01, 135.5 + rng.random(100) * 0.01, 50))
    m = len(osaka)
    write_dataset(
        root / "rel",
        "osaka_2021_04",
        osaka,
        np.full(m, 50),
        rng.normal(size=(m, 8)),
        decoder,
        {k: np.arange(m) % k for k in (5, 10, 20)},
    )
    write_dataset(root / "user", "nagoya_2021_04", codes, np.full(n, 50), vec, decoder, labels)
    metrics = root / "user" / "japan_city" / "metrics" / "nagoya_2021_04.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps({"anchored": False, "approximation_loss": 0.1}))
    cat = Catalog(root)
    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    return cat


def _diff() -> PeriodDiff:
    """Five meshes by hand: codes 11..15, pattern changes with a tie, clusters 0/1 of k = 2."""
    return PeriodDiff(
        codes=np.array([11, 12, 13, 14, 15]),
        index_a=np.arange(5),
        index_b=np.arange(5),
        distance=np.array([0.1, 0.5, 0.2, 0.9, 0.3]),
        pattern_change=np.array([0.01, 0.30, 0.30, 0.05, 0.60]),
        changed=np.array([False, True, True, False, True]),
        labels_a=np.array([0, 0, 1, 1, 0]),
        labels_b=np.array([0, 1, 1, 0, 1]),
        k=2,
        threshold=0.2,
        sizes=np.array([50, 50, 250, 50, 50]),
    )


def test_ranking_puts_the_most_changed_first_ties_by_code():
    table = change_table(_diff(), ["homes", "offices"])
    assert table["code"].tolist() == [15, 12, 13, 14, 11]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table.iloc[0][["name_a", "name_b", "mesh_size"]].tolist() == ["homes", "offices", 50]
    assert table.iloc[2]["mesh_size"] == 250
    # one transition cell only: A cluster 0 -> B cluster 1 (meshes 12 and 15)
    cell = change_table(_diff(), ["homes", "offices"], (0, 1))
    assert cell["code"].tolist() == [15, 12]


@pytest.mark.parametrize("seed", range(4))
def test_the_top_of_the_ranking_is_the_head_of_the_whole_one(seed):
    """``limit`` ranks only the candidates for the top rows: ties (many) and NaN land exactly as in the full table."""
    rng = np.random.default_rng(seed)
    n = 400
    change = rng.integers(0, 6, n) / 10.0  # many ties
    change[rng.random(n) < 0.05] = np.nan
    labels = rng.integers(0, 3, (2, n))
    d = PeriodDiff(
        codes=rng.permutation(n) + 1000,
        index_a=np.arange(n),
        index_b=np.arange(n),
        distance=rng.random(n),
        pattern_change=change,
        changed=change > 0.25,
        labels_a=labels[0],
        labels_b=labels[1],
        k=3,
        threshold=0.25,
        sizes=np.full(n, 50),
    )
    names = ["a", "b", "c"]
    for cell in (None, (1, 2)):
        whole = change_table(d, names, cell)
        for limit in (1, 7, 20, len(whole), len(whole) + 5):
            pd.testing.assert_frame_equal(change_table(d, names, cell, limit=limit), whole.head(limit))


def test_threshold_refags_without_recomputing():
    d = _diff().with_threshold(0.04)
    assert d.changed.tolist() == [False, True, True, True, True] and d.threshold == 0.04
    assert np.array_equal(d.distance, _diff().distance)
    assert _diff().with_threshold(0.7).changed.sum() == 0


def test_csv_content_round_trips():
    text = change_csv(change_table(_diff(), ["homes", "offices"]))
    lines = text.splitlines()
    assert lines[0] == "rank,code,mesh_size,cluster_a,name_a,cluster_b,name_b,pattern_change,distance,changed"
    assert lines[1] == "1,15,50,0,homes,1,offices,0.6,0.3,true"
    back = pd.read_csv(io.StringIO(text))
    assert back["code"].tolist() == [15, 12, 13, 14, 11]
    assert back["changed"].tolist() == [True, True, True, False, False]


def test_distance_classes_follow_the_pairs_quantiles():
    d = np.linspace(0.0, 1.0, 1001)
    edges = distance_edges(d)
    assert edges.tolist() == [0.5, 0.75, 0.9, 0.97]
    diff = PeriodDiff(np.arange(1001), np.arange(1001), np.arange(1001), d, d, d > 2, None, None, 10)
    counts = np.bincount(diff.distance_classes())
    assert counts.tolist() == [500, 250, 150, 70, 31]


def test_legends_explain_each_colouring():
    d = _diff()
    change = view.legend_entries(d, "change", ["homes", "offices"], "b", False, None)
    text = " ".join(t for _, t in change["items"]) + " ".join(change["notes"])
    assert "changed: pattern change above 0.2 (3 meshes)" in text
    assert "unchanged: at or below 0.2 (2 meshes)" in text
    assert "decided from the data" in text
    dist = view.legend_entries(d, "distance", ["homes", "offices"], "b", True, None)
    assert dist["title"] == "Period B: embedding distance to A"
    assert "Pale = the mesh's embedding barely moved" in dist["notes"][0] and "dark red = it moved the most" in dist["notes"][0]
    assert "set by you" in dist["notes"][1]
    assert sum(int(t.split(": ")[1].split(" ")[0]) for _, t in dist["items"]) == 5  # every mesh in one class
    a = view.legend_entries(d, "cluster", ["homes", "offices"], "a", False, (0, 1))
    assert [t for _, t in a["items"]][:2] == ["0: homes (3)", "1: offices (2)"]
    assert a["items"][-1][1] == "grey: outside the highlighted transition 0 -> 1 (3 meshes)"
    none = view.legend_entries(d.with_threshold(math.inf), "change", ["homes", "offices"], "b", False, None)
    assert "Nothing is flagged: the data shows too few compared meshes (5; the rule needs 30)" in " ".join(none["notes"])
    assert "The list below ranks every compared mesh" in " ".join(none["notes"])
    assert view.no_threshold_reason(d) == "too few compared meshes (5; the rule needs 30) to tell changes from noise"
    many = PeriodDiff(*(np.arange(40),) * 3, np.zeros(40), np.full(40, 0.01), np.zeros(40, bool), None, None, 2, math.inf)
    assert view.no_threshold_reason(many) == "no distinct group of changes"


def test_threshold_slider_scale():
    assert view.threshold_from_slider(-2) == 0.01
    assert view.threshold_from_slider(-9) == pytest.approx(1e-4)  # clamped to the knob's range
    assert view.threshold_from_slider("abc") is None and view.threshold_from_slider(float("nan")) is None
    assert view.slider_from_threshold(0.0438) == -1.36
    assert view.slider_from_threshold(math.inf) == view.THR_LOG_HIGH


def test_a_matrix_click_toggles_its_cell():
    click = {"points": [{"x": "1: offices", "y": "0: homes", "z": 2}]}
    assert view.toggle_cell(None, click, 2) == (0, 1)
    assert view.toggle_cell([0, 1], click, 2) is None  # the same cell again: cleared
    assert view.toggle_cell([1, 1], click, 2) == (0, 1)
    assert view.toggle_cell([1, 1], {"points": [{"x": "7: far", "y": "0: homes"}]}, 2) == (1, 1)  # out of range: kept
    assert view.toggle_cell(None, {"points": "garbage"}, 2) is None


def test_url_is_parsed_validated_and_falls_back_with_notes(catalog):
    assert view.parse_diff_url("?ds=rel/nagoya_2019_04&k=10", catalog) is None  # nothing about the diff
    state, notes = view.parse_diff_url(f"?view=diff&a={B}&b={A}&dk=20&by=distance&thr=0.05", catalog)
    assert state == {"a": B, "b": A, "k": 20, "by": "distance", "thr": 0.05} and notes == []
    state, notes = view.parse_diff_url("?view=diff&a=rel/nowhere&b=" + B + "&dk=999&by=rainbow&thr=abc", catalog)
    assert state == {"a": A, "b": B, "k": 10, "by": "change", "thr": None}
    assert len(notes) == 4
    assert "period A 'rel/nowhere', which does not exist" in notes[0]
    assert "k = '999'" in notes[1] and "Unknown colouring 'rainbow'" in notes[2] and "Threshold 'abc'" in notes[3]
    state, notes = view.parse_diff_url("?a=" + A + "&thr=5", catalog)  # above the knob's range
    assert state["thr"] is None and "Threshold '5'" in notes[0]


def test_empty_state_decision(catalog):
    assert view.pair_problem(catalog, A, B) is None
    assert "same dataset" in (view.pair_problem(catalog, A, A) or "")
    assert "Nagoya" in (view.pair_problem(catalog, A, "rel/osaka_2021_04") or "") and "one city" in (
        view.pair_problem(catalog, A, "rel/osaka_2021_04") or ""
    )
    free = view.pair_problem(catalog, A, "user/nagoya_2021_04") or ""
    assert "trained free" in free
    assert "Pick two periods" in (view.pair_problem(catalog, None, B) or "")
    assert "no longer exists" in (view.pair_problem(catalog, A, "rel/../x") or "")


def test_show_diff_clears_both_maps_for_an_invalid_pair(catalog):
    out = view.show_diff(A, A, 10, "change", None, None, B)
    url_b, url_a, *_rest = out
    assert url_b == "" and url_a == ""  # no tiles: never the previous pair
    assert "same dataset" in out[5] and out[6] == {"display": "flex"} and out[9] == ""
    assert out[7] == [] and out[8] == [] and out[15] == []


def test_show_diff_counts_follow_the_threshold_and_keeps_the_maps(catalog):
    base = view.show_diff(A, B, 10, "change", None, None, B)
    assert base[2] is view.dash.no_update and base[3] is view.dash.no_update  # same city: maps kept, layers change
    assert "mode=diff" in base[0] and "side=b" in base[0] and "side=a" in base[1] and "thr=" not in base[0]
    d = catalog.diff(A, B, 10)
    assert base[9].startswith(f"{len(d.codes):,} meshes in both; {int(d.changed.sum()):,} changed")
    low = view.show_diff(A, B, 10, "change", 1e-4, None, B)
    assert f"{int((d.pattern_change > 1e-4).sum()):,} changed" in low[9] and "set by you" in low[9]
    assert "thr=0.0001" in low[0]
    dist = view.show_diff(A, B, 10, "distance", None, None, B)
    assert "by=distance" in dist[0] and dist[2] is view.dash.no_update  # colour mode: layers only
    other_city = view.show_diff(A, B, 10, "change", None, None, "rel/osaka_2021_04")
    assert other_city[0] is view.dash.no_update and other_city[4] == B  # new maps on the new city's extent
    cell = view.show_diff(A, B, 10, "change", None, [0, 0], B)
    assert "cell=0-0" in cell[0] and "Highlighted:" in cell[14]


def test_csv_export_and_pick_panel(catalog):
    sent = view.export_changes(1, A, B, 10, None, None)
    frame = pd.read_csv(io.StringIO(sent["content"]))
    d = catalog.diff(A, B, 10)
    assert len(frame) == len(d.codes) and frame["pattern_change"].is_monotonic_decreasing
    assert sent["filename"] == "changes_rel_nagoya_2019_04_to_nagoya_2020_04_k10.csv"
    code = int(frame["code"].iloc[0])
    panel, outline_a, outline_b = view.show_pick({"code": code, "size": 50}, A, B, 10, None)
    assert outline_a["features"][0]["properties"]["code"] == code
    graphs = [c for c in _walk(panel) if type(c).__name__ == "Graph"]
    assert len(graphs) == 2
    assert graphs[0].figure["layout"]["yaxis"]["range"] == graphs[1].figure["layout"]["yaxis"]["range"]  # one scale
    osaka = int(catalog.get("rel/osaka_2021_04").codes[0])
    miss, *_ = view.show_pick({"code": osaka, "size": 50}, A, B, 10, None)
    assert "is not compared" in miss.children
    bad, outline, _ = view.show_pick({"code": 5339, "size": 50}, A, B, 10, None)
    assert "is not a mesh code" in bad.children and outline is None
    forged, *_ = view.show_pick({"code": "x"}, A, B, 10, None)
    assert "Click a mesh" in forged.children


def test_period_slider_lists_the_citys_periods_in_its_space(catalog):
    assert catalog.periods(A) == [A, B]  # not Osaka, not the free Nagoya 2021
    top, marks, value, note = view.show_periods(A, B)
    assert top == 1 and value == 1 and "2 periods of Nagoya" in note
    assert {i: m["label"] for i, m in marks.items()} == {0: "2019-04", 1: "2020-04"}


def _walk(node):
    """Every component under ``node`` (a component or a list of them)."""
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child)
        return
    yield node
    children = getattr(node, "children", None)
    if children is not None and not isinstance(children, str):
        yield from _walk(children)


def test_the_period_slider_sets_b_and_ignores_garbage(catalog):
    assert view.on_period(1, A, A) == B
    assert view.on_period(1, A, B) is view.dash.no_update  # already there
    assert view.on_period(7, A, A) is view.dash.no_update and view.on_period("1", A, A) is view.dash.no_update


def test_user_cluster_names_are_text_in_the_diff_chart_titles(catalog):
    """A name with markup reads as typed in plotly's titles (plotly reads a subset of HTML there).

    The transition matrix's axes are not covered: its names are category data (escaping them would
    change the data, the clicks and the hover); its tick text is built in dashboard/figures.py."""
    d = catalog.diff(A, B, 10)
    i = 0
    la = int(d.labels_a[i])
    catalog.rename_cluster(A, 10, la, "Nightlife <b>strip</b>")
    try:
        out = view.show_diff(A, B, 10, "change", None, None, B)
        panel, *_ = view.show_pick(
            {"code": int(d.codes[i]), "size": int(catalog.get(A).mesh_sizes[d.index_a[i]])}, A, B, 10, None
        )
    finally:
        catalog.rename_cluster(A, 10, la, "")
    assert "stayed in their cluster" in out[9]
    titles = json.dumps([c.figure["layout"]["title"] for c in _walk(panel) if type(c).__name__ == "Graph"])
    assert "Nightlife &lt;b&gt;strip&lt;/b&gt;" in titles and "<b>strip" not in titles


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    """Nagoya 2019 / 2020 with 50 m meshes, and 250 m meshes with their complemented 50 m children (as released);
    in 2019 only, a kept 50 m mesh at the centre of the first 250 m mesh."""
    from core.geo.meshcode import code_centers
    from core.mobility.privacy import with_complemented

    root = tmp_path_factory.mktemp("coarse")
    rng = np.random.default_rng(8)
    fine = np.unique(latlon_to_code(35.17 + rng.random(60) * 0.005, 136.9 + rng.random(60) * 0.005, 50))
    big = np.unique(latlon_to_code(35.19 + rng.random(6) * 0.02, 136.93 + rng.random(6) * 0.02, 250))
    codes = np.r_[fine, big]
    sizes = np.r_[np.full(len(fine), 50), np.full(len(big), 250)]
    decoder = rng.normal(size=(168, 8))
    vec = rng.normal(size=(len(codes), 8))
    labels = {k: np.arange(len(codes)) % k for k in (5, 10, 20)}
    lat, lon = code_centers(big[:1], 250)
    inside = latlon_to_code(lat, lon, 50)
    for name, v in (("nagoya_2019_04", vec), ("nagoya_2020_04", vec + rng.normal(size=vec.shape))):
        c, z, w, lab = codes, sizes, v, labels
        if name == "nagoya_2019_04":
            c, z, w = np.r_[codes, inside], np.r_[sizes, 50], np.vstack([v, v[:1]])
            lab = {k: np.r_[v_, 0] for k, v_ in labels.items()}
        all_codes, all_sizes, all_vec, all_labels, comp = with_complemented(c, z, w, lab)
        write_dataset(root / "rel", name, all_codes, all_sizes, all_vec, decoder, all_labels, comp)
    return Catalog(root), big


@pytest.mark.parametrize("by", ["cluster", "change", "distance"])
@pytest.mark.parametrize("cell", [None, "0-0"])
def test_compared_250m_meshes_are_drawn_through_their_50m_cells(coarse, by, cell):
    """A 250 m mesh's 25 cells are all 50 m meshes (smaller meshes are drawn on top): those not compared
    themselves (complemented, or kept in one period only) take its colour, paler, as on the cluster map."""
    from flask import Flask
    from werkzeug.datastructures import MultiDict

    from core.geo.meshcode import code_centers
    from core.geo.tiles import render_tile
    from dashboard.tiles import layer_values

    cat, big = coarse
    a, b = "rel/nagoya_2019_04", "rel/nagoya_2020_04"
    d = cat.diff(a, b, 10)
    assert set(big) <= set(d.codes[d.sizes == 250].tolist())  # the 250 m meshes are compared
    lat, lon = code_centers(big, 250)
    for side, key, index in (("a", a, d.index_a), ("b", b, d.index_b)):
        args = {"ds": key, "other": b if side == "a" else a, "side": side, "by": by, "k": "10"}
        with Flask(__name__).test_request_context():
            values, table = layer_values(cat, MultiDict({**args, "mode": "diff", **({"cell": cell} if cell else {})}))
        enclosing, comp = cat.enclosing_rows(key), cat.parent_rows(key) >= 0
        compared = np.zeros(len(values), bool)
        compared[index] = True
        under = (enclosing >= 0) & ~compared
        half = len(table) // 2
        assert comp.sum() == 25 * len(big) - (side == "a") and (under & ~comp).sum() == (side == "a")
        assert np.array_equal(values[under], values[enclosing[under]] + half)  # the 250 m mesh's colour ...
        assert (table[half:, :3] == table[:half, :3]).all() and (table[half:, 3] < table[:half, 3]).all()  # ... paler
        assert (values[index] >= 0).all() and (values[index] < half).all()
        # what a tile shows at each 250 m mesh's centre: a 50 m cell (the kept one in 2019), coloured
        rows = cat.index(key).lookup(lat, lon)
        assert (cat.get(key).mesh_sizes[rows] == 50).all() and (values[rows] >= half).all()
        tile = render_tile(cat.index(key), values, table, 14, *_tile_xy(float(lat[0]), float(lon[0]), 14))
        assert tile is not None and (tile[..., 3] > 0).sum() > 0
    notes = " ".join(view.legend_entries(d, "change", [str(c) for c in range(10)], "b", False, None)["notes"])
    assert f"Paler: a compared 250 m mesh ({len(big)} here), drawn on its 50 m cells" in notes


def _tile_xy(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.mark.parametrize("where", ["a complemented cell", "a 50 m mesh of 2019 only"])
def test_a_click_on_a_50m_cell_drawn_as_its_250m_mesh_picks_it(coarse, catalog, where):
    from contextvars import copy_context

    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from core.geo.meshcode import code_centers

    cat, big = coarse
    a, b = "rel/nagoya_2019_04", "rel/nagoya_2020_04"
    lat, lon = code_centers(big[:1], 250)
    off = (0.0004, -0.0006) if where == "a complemented cell" else (0.0, 0.0)  # the centre: the kept 50 m mesh
    click = {"latlng": {"lat": float(lat[0]) + off[0], "lng": float(lon[0]) + off[1]}}

    def run():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "diff-map-a.clickData", "value": click}]))
        return view.on_pick(None, click, [], a, b, 14, 10)

    install(AppContext(catalog=cat, basemap=None, upload_cap=2**20))
    try:
        pick, _ = copy_context().run(run)
    finally:
        install(AppContext(catalog=catalog, basemap=None, upload_cap=2**20))
    assert pick == {"code": int(big[0]), "size": 250}


def test_period_marks_tell_datasets_of_one_period_apart(tmp_path):
    """A dataset trained here for a period the release has, two of them, and one without a period in its name."""
    rng = np.random.default_rng(2)
    codes = np.unique(latlon_to_code(35.17 + rng.random(80) * 0.01, 136.9 + rng.random(80) * 0.01, 50))
    n, decoder = len(codes), rng.normal(size=(168, 8))
    labels = {k: np.arange(n) % k for k in (5, 10, 20)}
    names = {
        "rel": ["nagoya_2019_04", "nagoya_2020_04"],
        "user": ["nagoya_2019_04", "walk2_2019-04", "mine"],
        "other": ["nagoya_2019_04"],
    }
    for release, datasets in names.items():
        for name in datasets:
            write_dataset(tmp_path / release, name, codes, np.full(n, 50), rng.normal(size=(n, 8)), decoder, labels)
            if release != "rel":  # trained here, anchored to rel: one space
                metrics = tmp_path / release / "japan_city" / "metrics" / f"{name}.json"
                metrics.parent.mkdir(parents=True, exist_ok=True)
                metrics.write_text(json.dumps({"anchored": True, "anchor_release": "rel", "approximation_loss": 0.1}))
    cat = Catalog(tmp_path)
    keys = cat.periods("rel/nagoya_2019_04")
    assert len(keys) == 6
    marks = view.period_marks(cat, keys)
    assert len(set(marks.values())) == len(keys)  # no two alike
    by_key = {key: marks[i] for i, key in enumerate(keys)}
    assert by_key["rel/nagoya_2020_04"] == "2020-04" and by_key["user/mine"] == "mine"  # a period of its own: as before
    assert by_key["user/nagoya_2019_04"] == "2019-04 (yours: nagoya_2019_04)"
    assert by_key["user/walk2_2019-04"] == "2019-04 (yours: walk2_2019-04)"
    assert by_key["rel/nagoya_2019_04"] == "2019-04 (rel)" and by_key["other/nagoya_2019_04"] == "2019-04 (other)"
    # Drawn on two lines, the tag cut short: neighbouring marks of one period do not run into each other.
    drawn = view.slider_marks(marks)
    labels = {key: drawn[i]["label"] for i, key in enumerate(keys)}
    assert labels["user/walk2_2019-04"] == "2019-04\n(yours: walk2_…)" and labels["rel/nagoya_2020_04"] == "2020-04"
    assert all(len(line) <= 16 for m in drawn.values() for line in m["label"].split("\n"))
    assert all(m["style"]["whiteSpace"] == "pre-line" for m in drawn.values())


def test_the_transition_matrix_is_lightest_at_zero_and_darkest_at_the_largest_count():
    from dashboard.figures import transition_heatmap

    def luminance(colour: str) -> float:
        r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    trace = transition_heatmap(np.array([[109, 0], [3, 40]]), "a", "b")["data"][0]
    scale = trace["colorscale"]
    assert scale[0][0] == 0 and scale[-1][0] == 1
    shades = [luminance(c) for _, c in scale]
    assert shades == sorted(shades, reverse=True)  # darker with every step
    assert trace["zmin"] == 0 and trace["zmax"] == 109  # 0 meshes: the lightest; 109: the darkest
    assert "textfont" not in trace or "color" not in trace["textfont"]  # Plotly's contrast: light text on dark cells


def test_without_a_threshold_the_legend_says_so():
    d = _diff().with_threshold(float("nan"))
    texts = [t for _, t in view.legend_entries(d, "change", ["homes", "offices"], "b", False, None)["items"]]
    assert texts == ["changed: none flagged (0 meshes)", "unchanged: no threshold, none flagged (5 meshes)"]


def test_counts_in_this_view_are_singular_for_one():
    d = _diff().with_threshold(0.5)  # one mesh changed (0.60)
    change = view.legend_entries(d, "change", ["homes", "offices"], "b", True, (1, 0))
    texts = [t for _, t in change["items"]]
    assert texts[0] == "changed: pattern change above 0.5 (1 mesh)"
    assert texts[1] == "unchanged: at or below 0.5 (4 meshes)"
    assert "1 of 5 meshes." in change["notes"][-2]
    from dashboard.figures import count_of

    assert count_of(1, "mesh", "meshes") == "1 mesh" and count_of(1_200, "period") == "1,200 periods"
    assert count_of(0, "mesh", "meshes") == "0 meshes"
    one = view.highlight_text(1, 0, (1, 0), ["homes", "offices"])
    assert one == "Highlighted: 1 mesh went from 1: offices to 0: homes (its stay pattern did not change)."
    assert view.highlight_text(3, 1, (0, 1), ["homes", "offices"]).endswith("(1 of them changed their stay pattern).")
    dist = PeriodDiff(
        np.arange(4), np.arange(4), np.arange(4), np.array([0.1, 0.2, 0.3, 9.0]), np.zeros(4), np.zeros(4, bool), None, None, 2
    )
    items = [t for _, t in view.legend_entries(dist, "distance", ["a", "b"], "b", False, None)["items"]]
    assert any(t.endswith(": 1 mesh (25%)") for t in items)
    from dashboard.figures import transition_heatmap

    trace = transition_heatmap(np.array([[1, 0], [0, 0]]), "a", "b")
    assert trace["data"][0]["customdata"] == [["mesh", "meshes"], ["meshes", "meshes"]]
    assert "1 mesh in both" in trace["layout"]["title"]["text"]


def test_a_city_with_one_period_says_so_in_the_singular(catalog):
    _top, _marks, _value, note = view.show_periods("rel/osaka_2021_04", None)
    assert note == "Period B: 1 period of Osaka (only one: nothing to step through)"


def test_without_a_group_the_view_says_why_and_links_the_datas_split():
    from core.analysis.diff import ChangeRule

    why = "no distinct group of changes (the larger ones, typically 0.0757, are 2.5x the noise's 0.0302; a distinct group sits 3x above it)"
    d = PeriodDiff(*(np.arange(40),) * 3, np.zeros(40), np.full(40, 0.01), np.zeros(40, bool), None, None, 2, math.inf)
    d = dataclasses.replace(d, rule=ChangeRule(math.inf, why, 0.0302, 0.0757, 0.038712))
    assert view.no_threshold_reason(d) == why
    assert view.suggested_threshold(d) == 0.0387
    assert view.suggested_threshold(d.with_threshold(0.05)) == 0.0387  # the rule goes with the diff
    status = view._threshold_status("0 changed", 0.0387, A, B, 10, "change")
    link = status[1]
    assert link.children == "flag above 0.0387"
    assert "thr=0.0387" in link.href and "a=rel%2Fnagoya_2019_04" in link.href and "dk=10" in link.href
    found = dataclasses.replace(d, threshold=0.04, rule=ChangeRule(0.04, "", 0.01, 0.08, 0.04))
    assert view.suggested_threshold(found) is None and view._threshold_status("3 changed", None, A, B, 10, "change") == [
        "3 changed"
    ]
