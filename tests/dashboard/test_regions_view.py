"""The Regions view's adapters (dashboard.regions) and callbacks, on small generated cities, without a browser."""

from __future__ import annotations

import json
import os
from contextvars import copy_context
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from core.errors import InputError
from core.progress import Progress
from core.regions.config import EPOCHS, METHOD, SEED
from core.regions.evaluate import scores
from core.regions.explore import nearest_regions, predicted_vs_true
from dashboard import ids
from dashboard import regions as store
from dashboard.catalog import AppContext, Catalog, install
from dashboard.views import regions as view
from tests.regions.synthetic import write_city

A, B, D = "regions/alpha", "regions/beta", "demo/town_2020_01"


def _stays(n_people: int = 60, seed: int = 0) -> pd.DataFrame:
    """Stays of people moving between a few 1 km meshes around Nagoya, in the demo's stays columns."""
    rng = np.random.default_rng(seed)
    per = 8
    user = np.repeat(np.arange(n_people), per)
    spots = np.array([[35.170, 136.900], [35.181, 136.912], [35.192, 136.925], [35.160, 136.930], [35.200, 136.890]])
    at = spots[rng.integers(0, len(spots), user.size)] + rng.uniform(0, 0.002, (user.size, 2))
    return pd.DataFrame(
        {
            "user_id": user,
            "lat": at[:, 0],
            "lon": at[:, 1],
            "date": pd.Timestamp("2020-01-06") + pd.to_timedelta(np.tile(np.arange(per) // 2, n_people), unit="D"),
            "arrival_time": np.tile(np.where(np.arange(per) % 2 == 0, "08:00", "18:00"), n_people),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data folder: two generated LibCity cities, a folder that is not a city, and one demo stays file."""
    root = tmp_path_factory.mktemp("regions-view") / "data"
    write_city(root / "regions" / "alpha", "alpha", 30, 1)
    write_city(root / "regions" / "beta", "beta", 36, 2)
    (root / "regions" / "notes").mkdir(parents=True)
    (root / "regions" / "notes" / "readme.txt").write_text("not a city")
    (root / "demo" / "stays").mkdir(parents=True)
    _stays().to_parquet(root / "demo" / "stays" / "town_2020_01.parquet", index=False)
    install(AppContext(catalog=Catalog(root), basemap=None, upload_cap=2**20))
    return root


@pytest.fixture(scope="module")
def trained(data) -> store.Selection:
    """Procrustes on alpha -> beta, 3 epochs, trained once through the job's function."""
    sel = store.Selection.from_browser(data, A, B, "procrustes", 0, 3)
    seen: list[Progress] = []
    out = store.fit_and_cache(data, sel, seen.append)
    assert out["state"] == "done" and not out["cached"] and seen and seen[-1].step == 3
    return sel


def test_cities_lists_city_folders_and_demo_stays_only(data):
    found = store.cities(data)
    assert list(found) == [A, B, D]
    assert found[A].kind == "folder" and found[D].kind == "stays" and found[D].path.suffix == ".parquet"


def test_a_demo_city_becomes_a_mesh_graph_cached_on_disk(data):
    g = store.load_graph(data, D)
    assert g.n >= 3 and set(g.labels) == {"stays"} and g.geometry is not None
    assert g.labels["stays"].sum() == len(_stays())
    cached = list((data / ".cache" / "regions" / "graphs").glob("town_2020_01-1000m-*.npz"))
    assert len(cached) == 1
    store._GRAPHS.clear()  # read back from the disk cache
    again = store.load_graph(data, D)
    for k in ("region_ids", "area_km2", "origin", "destination", "weight"):
        np.testing.assert_array_equal(getattr(again, k), getattr(g, k))
    np.testing.assert_array_equal(again.labels["stays"], g.labels["stays"])
    assert list(again.geometry) == list(g.geometry)


def test_selection_accepts_only_offered_cities_and_clamps_numbers(data):
    with pytest.raises(InputError, match="unknown city"):
        store.Selection.from_browser(data, "regions/../../etc", B, "core", 0, 10)
    with pytest.raises(InputError, match="unknown city"):
        store.Selection.from_browser(data, "regions/notes", B, "core", 0, 10)
    with pytest.raises(InputError, match="twice"):
        store.Selection.from_browser(data, A, A, "core", 0, 10)
    sel = store.Selection.from_browser(data, A, B, "magic", -4, 10**9)
    assert (sel.method, sel.seed, sel.epochs) == (METHOD.default, SEED.low, EPOCHS.high)
    sel = store.Selection.from_browser(data, A, B, "affine", None, "")
    assert (sel.method, sel.seed, sel.epochs) == ("affine", SEED.default, EPOCHS.default)
    assert store.Selection.from_browser(data, A, B, "core", "x", 0).epochs == EPOCHS.low


def test_the_cache_key_follows_the_choice_and_the_cities_files(data, tmp_path):
    sel = store.Selection.from_browser(data, A, B, "core", 0, 10)
    path = sel.cache_path(data)
    assert path == sel.cache_path(data)
    assert path.parent == data / ".cache" / "regions" / "embeddings"
    others = {
        store.Selection.from_browser(data, B, A, "core", 0, 10).cache_path(data),
        store.Selection.from_browser(data, A, B, "individual", 0, 10).cache_path(data),
        store.Selection.from_browser(data, A, B, "core", 1, 10).cache_path(data),
        store.Selection.from_browser(data, A, B, "core", 0, 11).cache_path(data),
    }
    assert path not in others and len(others) == 4
    label = data / "regions" / "beta" / "gdp_beta_sum.npy"
    st = label.stat()
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert sel.cache_path(data) != path  # a changed city is trained again
    finally:
        os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_training_is_cached_and_the_metrics_row_is_the_evaluation(data, trained):
    z_s, z_t, info = store.cached_embeddings(data, trained)
    assert z_s.shape == (30, 128) and z_t.shape == (36, 128) and info["regions"] == [30, 36]
    again = store.fit_and_cache(data, trained, lambda p: pytest.fail("a cached choice must not train"))
    assert again["cached"] and again["path"] == trained.cache_path(data).name

    table, rows = store.transfer_table(data, trained, "gdp", "density")
    source, target = store.load_graph(data, A), store.load_graph(data, B)
    expected = predicted_vs_true(source, target, z_s, z_t, "gdp", "density")
    pd.testing.assert_frame_equal(table, expected)
    assert [r["method"] for r in rows] == ["procrustes", "mean", "area"]
    assert rows[0]["mae"] == pytest.approx(scores(expected["true"].to_numpy(), expected["predicted"].to_numpy())["mae"])
    assert np.isnan(rows[1]["spearman"])  # a constant prediction has no rank
    with pytest.raises(InputError, match="unknown label"):
        store.transfer_table(data, trained, "stays", "sum")
    untrained = store.Selection.from_browser(data, A, B, "core", 0, 7)
    assert store.cached_embeddings(data, untrained) is None
    with pytest.raises(InputError, match="not trained yet"):
        store.transfer_table(data, untrained, "gdp", "sum")


def test_nearest_regions_find_a_planted_correspondence(data):
    """Target = source with its regions shuffled: every source region's nearest target region is its copy."""
    sel = store.Selection.from_browser(data, A, B, "affine", 5, 1)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 16)).astype(np.float32)
    perm = rng.permutation(30)
    z_t = np.vstack([z[perm], rng.normal(size=(6, 16)).astype(np.float32)])  # beta has 36 regions
    path = sel.cache_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, source=z, target=z_t, info=np.array(json.dumps({"seconds": 0.0, "regions": [30, 36]})))
    inverse = np.argsort(perm)
    beta = store.load_graph(data, B)
    for region in (0, 7, 29):
        near = store.nearest_table(data, sel, store.Pick(0, region), k=3)
        assert near["region"].iloc[0] == inverse[region]
        assert near["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-5)
        assert near["region_id"].iloc[0] == beta.region_ids[inverse[region]]
        pd.testing.assert_frame_equal(near.drop(columns="region_id"), nearest_regions(z, region, z_t, 3))
    back = store.nearest_table(data, sel, store.Pick(1, int(inverse[4])), k=2)
    assert back["region"].iloc[0] == 4


def test_clicks_are_validated(data):
    assert store.Pick.from_map({"properties": {"region": 3}}, 36) == store.Pick(1, 3)
    for bad in (None, {}, {"properties": {"region": 36}}, {"properties": {"region": -1}}, {"properties": {"region": "x"}}):
        assert store.Pick.from_map(bad, 36) is None
    assert store.Pick.from_projection({"points": [{"customdata": [0, 29]}]}, (30, 36)) == store.Pick(0, 29)
    for bad in (None, {"points": []}, {"points": [{"customdata": [0, 30]}]}, {"points": [{"customdata": [2, 1]}]}):
        assert store.Pick.from_projection(bad, (30, 36)) is None
    assert store.Pick.from_store({"side": 1, "region": 35}, (30, 36)) == store.Pick(1, 35)
    assert store.Pick.from_store({"side": 1, "region": 36}, (30, 36)) is None
    assert store.Pick.from_store("1,3", (30, 36)) is None


def test_colour_scales():
    colours, legend = store.colour_scale(np.array([0.0, 1.0, 2.0, np.nan, 100.0]), limits=(0.0, 2.0))
    assert colours[0] == store.SEQUENTIAL[0] and colours[2] == store.SEQUENTIAL[-1]
    assert colours[3] == store.NO_VALUE and colours[4] == store.SEQUENTIAL[-1] and legend["clipped_high"]
    colours, legend = store.colour_scale(np.array([-3.0, 0.0, 3.0]), diverging=True)
    assert legend["low"] == -legend["high"]
    assert colours == [store.DIVERGING[0], store.DIVERGING[len(store.DIVERGING) // 2], store.DIVERGING[-1]]


def test_predicted_and_true_share_one_scale(data, trained):
    table, _ = store.transfer_table(data, trained, "gdp", "sum")
    target = store.load_graph(data, B)
    table.loc[0, "predicted"] = table.loc[1, "true"]
    pred, legend_p = store.map_colours(table, target, "gdp", "sum", "predicted")
    true, legend_t = store.map_colours(table, target, "gdp", "sum", "true")
    assert pred[0] == true[1] and (legend_p["low"], legend_p["high"]) == (legend_t["low"], legend_t["high"])
    err, legend_e = store.map_colours(table, target, "gdp", "sum", "error")
    assert len(err) == target.n and legend_e["low"] < 0 < legend_e["high"]
    grey, none = store.map_colours(None, target, None, "sum", "true")
    assert set(grey) == {store.NO_VALUE} and none is None


def test_region_shapes_from_wkt_and_from_area(data):
    shapes = store.region_shapes(data, B)
    assert len(shapes["features"]) == 36
    assert [f["properties"]["region"] for f in shapes["features"]] == list(range(36))
    assert shapes["features"][0]["geometry"]["type"] == "Polygon"
    g = store.load_graph(data, B)
    x0, y0 = np.array(shapes["features"][5]["geometry"]["coordinates"][0]).mean(axis=0)
    assert abs(x0 - g.lon[5]) < 0.01 and abs(y0 - g.lat[5]) < 0.01
    assert [f["properties"]["region"] for f in store.subset(shapes, [4, 2, 99])["features"]] == [4, 2]


def test_projection_figure_has_one_colour_per_city_and_click_data(data, trained):
    frame = store.projection(data, trained)
    assert len(frame) == 66 and set(frame["side"]) == {0, 1}
    ids_ = (store.load_graph(data, A).region_ids, store.load_graph(data, B).region_ids)
    fig = store.projection_figure(frame, ("alpha", "beta"), ids_, None, None)
    assert [len(t.x) for t in fig.data] == [30, 36]
    assert fig.data[0].marker.color != fig.data[1].marker.color
    assert list(fig.data[1].customdata[0]) == [1, 0]
    near = store.nearest_table(data, trained, store.Pick(1, 2), 4)
    fig = store.projection_figure(frame, ("alpha", "beta"), ids_, store.Pick(1, 2), near)
    assert [t.name for t in fig.data][2:] == ["nearest in alpha", "picked (beta)"]
    assert [c[0] for c in fig.data[2].customdata] == [0] * 4 and [list(c) for c in fig.data[3].customdata] == [[1, 2]]


def test_progress_text_is_absolute(data):
    sel = store.Selection.from_browser(data, A, B, "core", 0, 300)
    value, text = store.progress_text(sel, Progress("core", 150, 300, loss=2.5, fraction=0.5, eta=12.0))
    assert value == 50 and "epoch 150/300" in text and "loss 2.500" in text and "12 s left" in text


# ---------------------------------------------------------------------------------------------------
# Callbacks (called directly, Dash's unit-test pattern)


def _triggered(prop_id: str, fn, *args):
    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": None}]))
        return fn(*args)

    return copy_context().run(call)


def test_labels_offered_are_those_both_cities_carry(data):
    assert view.choose_cities(A, B, None) == (["gdp", "population"], "gdp")
    assert view.choose_cities(A, B, "population") == (["gdp", "population"], "population")
    assert view.choose_cities(A, D, "gdp") == ([], None)  # no common label
    assert view.choose_cities("regions/../x", B, "gdp") == ([], None)


def test_show_before_and_after_training(data, trained):
    hideout, legend, metrics, msg = view.show(A, B, "core", 0, 9, "gdp", "sum", "predicted", None)
    assert len(hideout["fill"]) == 36 and metrics == [] and "Not trained yet" in str(msg)
    failed = {"state": "failed", "message": "out of memory", "selection": [A, B, "core", 0, 9]}
    assert "Problem: out of memory" in str(view.show(A, B, "core", 0, 9, "gdp", "sum", "true", failed)[3])
    assert "Not trained yet" in str(view.show(A, B, "core", 1, 9, "gdp", "sum", "true", failed)[3])  # another choice
    hideout, legend, metrics, msg = view.show(A, B, "procrustes", 0, 3, "gdp", "log", "error", None)
    assert len(hideout["fill"]) == 36 and "trained in" in str(msg) and "MAE" in str(metrics)
    hideout, _, metrics, msg = view.show(A, A, "procrustes", 0, 3, "gdp", "sum", "true", None)
    assert hideout == {"fill": []} and metrics == [] and "twice" in str(msg)
    # a forged scale, colour or label falls back; nothing raises
    hideout, _, metrics, _ = view.show(A, B, "procrustes", 0, 3, "<script>", "cubic", "blue", None)
    assert len(hideout["fill"]) == 36 and metrics == []


def test_a_click_picks_a_region_and_lists_its_neighbours(data, trained):
    args = (A, B, "procrustes", 0, 3)
    picked = _triggered(f"{ids.REGIONS_LAYER}.clickData", view.pick, {"properties": {"region": 4}}, None, *args)
    assert picked == {"side": 1, "region": 4}
    point = {"points": [{"customdata": [0, 7]}]}
    assert _triggered(f"{ids.REGIONS_PROJECTION}.clickData", view.pick, None, point, *args) == {"side": 0, "region": 7}
    forged = {"points": [{"customdata": [0, 999]}]}
    assert _triggered(f"{ids.REGIONS_PROJECTION}.clickData", view.pick, None, forged, *args) is None
    assert _triggered(f"{ids.REGIONS_SOURCE}.value", view.pick, {"properties": {"region": 4}}, None, *args) is None

    fig, listing, outline = view.nearest({"side": 0, "region": 7}, None, *args)
    near = store.nearest_table(data, trained, store.Pick(0, 7))
    assert f"beta region {near['region_id'].iloc[0]}" in str(listing)
    assert [f["properties"]["region"] for f in outline["features"]] == near["region"].tolist()
    assert len(fig.data) == 4
    fig, listing, outline = view.nearest(None, None, *args)
    assert len(fig.data) == 2 and outline is None and "Click a region" in listing
    fig, _, _ = view.nearest(None, None, A, B, "core", 0, 9)  # not trained: an empty figure, no error
    assert fig["data"] == []


def test_layout_offers_the_cities_and_the_declared_choices(data):
    page = str(view.layout(data, None))
    for text in ("'value': 'regions/alpha'", "'value': 'demo/town_2020_01'", "'value': 'procrustes'", "'value': 'density'"):
        assert text in page
    assert "regions/notes" not in page


def test_area2vec_aligns_two_demo_cities_through_the_release_anchor_set(tmp_path):
    """The view's area2vec choice on demo cities: token counts cached with the graph, the demo's anchors used."""
    from core.area2vec.anchors import build_anchor_set
    from core.mobility.stays import stays_from_frame
    from core.release.layout import ANCHOR_DIR
    from core.simulation.synthetic import synthetic_city

    root = tmp_path / "data"
    stays_dir = root / "demo" / "stays"
    stays_dir.mkdir(parents=True)
    frames = []
    for i, name in enumerate(("east_2021_04", "west_2021_04")):
        city = synthetic_city(300, 60, seed=40 + i).stays
        frames.append(city)
        at = np.asarray(_stays()[["lat", "lon"]])[np.arange(len(city)) % len(_stays())]
        city = city.assign(
            user_id=np.arange(len(city)) % 50,
            lat=at[:, 0] + 0.01 * (city["mesh_id"].to_numpy() % 7),
            lon=at[:, 1] + 0.01 * (city["mesh_id"].to_numpy() // 7 % 7),
            date=pd.Timestamp("2021-04-05") + pd.to_timedelta(np.arange(len(city)) // 40, unit="D"),
        )
        city.to_parquet(stays_dir / f"{name}.parquet", index=False)
    anchors = build_anchor_set([stays_from_frame(f) for f in frames], n_anchors=16, records_per_anchor=500, seed=0)
    anchors.save(root / "demo" / ANCHOR_DIR)
    g = store.load_graph(root, "demo/east_2021_04")
    assert g.token_counts is not None and g.token_counts.sum() == g.labels["stays"].sum()
    sel = store.Selection.from_browser(root, "demo/east_2021_04", "demo/west_2021_04", "area2vec", 0, 30)
    out = store.fit_and_cache(root, sel, lambda p: None)
    assert out["state"] == "done"
    z = store.cached_embeddings(root, sel)
    assert z is not None and z[0].shape[1] == anchors.dim and np.isfinite(z[0]).all()


def test_a_flat_prediction_and_few_regions_are_called_out():
    """The walk's case: six regions each, a ridge on embeddings with no signal predicts ~the mean for
    every region; tiny differences rank perfectly (Spearman 1) while the MAE is the mean baseline's."""
    true = np.array([1013.0, 2500.0, 4000.0, 5200.0, 7000.0, 11090.0])
    flat = pd.DataFrame({"true": true, "predicted": 4170.0 + np.arange(6) * 1e-6})
    notes = store.transfer_notes(flat, (6, 6), "CoRE")
    assert len(notes) == 2
    assert "Only 6 regions" in notes[0]
    assert "nearly constant" in notes[1] and "CoRE" in notes[1] and "under 0.01 %" in notes[1]  # never 8.8e-08 %
    # A real prediction on big enough cities: no note.
    good = pd.DataFrame({"true": true, "predicted": true * 0.8 + 300.0})
    assert store.transfer_notes(good, (120, 160), "CoRE") == []
    # Nothing to compare against when the truth itself is constant: no "flat" claim.
    assert store.transfer_notes(pd.DataFrame({"true": np.ones(4), "predicted": np.ones(4)}), (40, 40), "CoRE") == []


def test_numbers_read_the_same_in_tables_and_legends():
    assert store.format_value(11090.4) == "11,090"
    assert store.format_value(1013.0) == "1,013"
    assert store.format_value(4.2345) == "4.23"
    assert store.format_value(0.371412) == "0.371"
    assert store.format_value(-0.2881) == "-0.288"
    assert store.format_value(0.0) == "0"
    assert store.format_value(float("nan")) == "–"
    assert "e" not in store.format_value(123456789.0)
