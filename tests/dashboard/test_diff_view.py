"""The diff view's plain functions and callbacks, without a browser: ranking, CSV, address, empty states."""

from __future__ import annotations

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
    assert "unchanged: at or below the threshold (2 meshes)" in text
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
    assert "no distinct group of changes" in " ".join(none["notes"])


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
    assert top == 1 and marks == {0: "2019-04", 1: "2020-04"} and value == 1 and "2 periods of Nagoya" in note


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
