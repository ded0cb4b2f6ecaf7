"""The People view's callbacks and its heatmap tiles, without a browser (a stays file under a data folder)."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pandas as pd
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from dashboard import ids

from ..walkers.conftest import commute_frame
from ..walkers.test_explore import mixed_frame

SRC = "rel/stays/mixed"
KEY = "stays:rel/mixed"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import app as app_module

    data = tmp_path_factory.mktemp("people-view")
    frame, truth = mixed_frame()
    frame["date"] = frame["date"] + pd.Timedelta(days=21)  # Monday 26 April to Saturday 1 May: Showa Day on Thursday
    (data / "rel" / "stays").mkdir(parents=True)
    (data / "rel" / "truth").mkdir()
    frame.drop(columns=["place"]).to_parquet(data / "rel" / "stays" / "mixed.parquet", index=False)
    truth.to_parquet(data / "rel" / "truth" / "people_mixed.parquet", index=False)
    commute_frame(4, days=20, seed=2).to_parquet(data / "rel" / "stays" / "long.parquet", index=False)  # three weeks
    return app_module.create_app(data, basemap=None).server.test_client()


CLICK = f"{ids.PEOPLE_SCATTER}.clickData"
WEEK_BOX = f"{ids.PEOPLE_WEEK_NO}.value"


def _triggered(prop_id: str, fn, *args):
    from contextvars import copy_context

    def run():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": None}]))
        return fn(*args)

    return copy_context().run(run)


def _zxy(lat: float = 35.17, lon: float = 136.92, z: int = 12) -> str:
    """The XYZ tile holding a point (the synthetic people live around Nagoya's centre)."""
    import math

    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return f"{z}/{int((lon + 180) / 360 * n)}/{int(y)}"


def _tile(client, url: str):
    return client.get(url.replace("{z}/{x}/{y}", _zxy()))


def test_source_is_found_and_opened(client):
    from dashboard import people as store
    from dashboard.views import people as view

    assert KEY in store.sources()
    options, colour, box, msg = view.open_source(KEY, None, "all", [0, 24])
    assert [o["value"] for o in options] == ["commuter", "activity", "cluster"] and colour == "commuter"
    assert "80 people" in msg and "simple per-person features" in msg
    fig, variance = view.draw_scatter(KEY, "commuter", "pca", 0)
    assert sum(len(t.x) for t in fig.data) == 80 and "Explained variance" in variance
    assert view.draw_scatter("nope", "commuter", "pca", 0)[0] is view.no_update


def test_a_box_selection_drives_tiles_chart_and_summary(client):
    from dashboard import people as store
    from dashboard.views import people as view

    xy = store.projection(KEY, "pca").xy
    box = {"range": {"x": [float(xy[:, 0].min()) - 1, float(np.median(xy[:, 0]))], "y": [-1e3, 1e3]}}
    token = _triggered(f"{ids.PEOPLE_SCATTER}.selectedData", view.remember, box, 0, KEY, "pca")
    assert token is not None and store.selection(token)[1].size == int((xy[:, 0] <= np.median(xy[:, 0])).sum())
    url_all, chart_all, _ = view.show_selection(None, "all", [0, 24], KEY)
    url_sel, chart_sel, summary = view.show_selection(token, "all", [0, 24], KEY)
    assert "sel=" in url_sel and "sel=" not in url_all
    total = lambda spec: sum(float(np.sum(t["y"])) for t in spec["data"])  # noqa: E731
    assert 0 < total(chart_sel) < total(chart_all)
    from PIL import Image

    a = np.asarray(Image.open(BytesIO(_tile(client, url_all).data)))
    b = np.asarray(Image.open(BytesIO(_tile(client, url_sel).data)))
    assert a[..., 3].any() and (a != b).any()
    # the clear button forgets the selection
    assert _triggered(f"{ids.PEOPLE_CLEAR}.n_clicks", view.remember, box, 1, KEY, "pca") is None


def test_a_selection_reaches_another_server_process(client):
    """With several workers the heatmap tile of a selection may reach a process that did not make it:
    the selection is read back from the data folder's cache (the token is its content's digest)."""
    from dashboard import people as store

    rows = np.array([3, 5, 8, 13], dtype=np.int64)
    token = store.remember_selection(KEY, rows)
    with store._LOCK:
        store._SELECTIONS.clear()  # as in another process: nothing in memory
    key, back = store.selection(token)
    assert key == KEY and np.array_equal(back, rows)
    url = f"/tiles/{{z}}/{{x}}/{{y}}.png?mode=people&src={KEY}&sel={token}&day=all&h0=0&h1=24"
    with store._LOCK:
        store._SELECTIONS.clear()
    assert _tile(client, url).status_code == 200
    assert store.selection("0123456789abcdef") is None  # never made: still unknown (the tile says 404)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("mode=people&src=stays:rel/mixed", 200),
        ("mode=people&src=nope", 404),
        ("mode=people&src=stays:rel/mixed&day=friday", 400),
        ("mode=people&src=stays:rel/mixed&h0=5&h1=5", 400),
        ("mode=people&src=stays:rel/mixed&h0=x", 400),
        ("mode=people&src=stays:rel/mixed&h1=25", 400),
        ("mode=people&src=stays:rel/mixed&sel=../../x", 400),
        ("mode=people&src=stays:rel/mixed&sel=0123456789abcdef", 404),
    ],
)
def test_tile_queries_are_validated(client, query, status):
    assert client.get(f"/tiles/{_zxy()}.png?{query}").status_code == status


def test_the_chart_and_summary_count_national_holidays(client):
    from dashboard.views import people as view

    _, chart, summary = view.show_selection(None, "all", [0, 24], KEY)
    panels = [a["text"] for a in chart["layout"]["annotations"]]
    assert panels == ["weekday", "holiday"]
    holiday_bars = sum(float(np.sum(t["y"])) for t in chart["data"] if t["xaxis"] == "x2")
    assert holiday_bars > 0
    text = str(summary)
    # 80 people x 2 stays on Showa Day and on the Saturday
    assert "Weekend / holiday stays: 320 (160 on national holidays, JP calendar)" in text
    *_, msg = view.open_source(KEY, None, "all", [0, 24])
    assert "national holiday (JP calendar)" in msg


def test_clicking_a_person_shows_their_week(client):
    from dashboard.views import people as view

    fig, style, week = _triggered(CLICK, view.show_person, {"points": [{"customdata": 3}]}, 99, KEY, "pca")
    assert style == {"display": "block"} and sum(len(t.x) for t in fig.data) == 12 and week == 1
    assert "week 1 of 1 (2021-04-26 to 2021-05-02)" in fig.layout.title.text
    assert "2021-04-29 (Thu, holiday)" in {y for t in fig.data for y in t.y}
    assert _triggered(CLICK, view.show_person, {"points": [{"customdata": 10**9}]}, 1, KEY, "pca")[0] is view.no_update
    assert _triggered(CLICK, view.show_person, {"points": [{"customdata": "x"}]}, 1, KEY, "pca")[0] is view.no_update


def test_a_click_as_the_browser_sends_it_finds_the_person(client):
    """plotly.js sends a scattergl click without the (typed) customdata: the clicked x, y name the person."""
    from dashboard import people as store
    from dashboard.views import people as view

    fig, _ = view.draw_scatter(KEY, "commuter", "pca", 0)
    trace = fig.data[1]
    row, x, y = int(trace.customdata[5]), float(trace.x[5]), float(trace.y[5])
    assert np.array_equal(store.projection(KEY, "pca").xy[row], [x, y])
    click = {"points": [{"curveNumber": 1, "pointNumber": 5, "x": x, "y": y}]}
    by_xy, _, _ = _triggered(CLICK, view.show_person, click, 1, KEY, "pca")
    by_row, _, _ = _triggered(CLICK, view.show_person, {"points": [{"customdata": row}]}, 1, KEY, "pca")
    assert by_xy.layout.title.text == by_row.layout.title.text
    assert by_xy.layout.title.text.startswith(f"Person {store.get(KEY).uids[row]}:")


@pytest.mark.parametrize(("asked", "week", "days"), [(2, 2, 7), ("3", 3, 6), (7, 3, 6), (-1, 1, 7), (None, 1, 7), ("x", 1, 7)])
def test_the_week_is_chosen_and_clamped_on_the_server(client, asked, week, days):
    from dashboard.views import people as view

    # the week box fired (a person is shown): its value is clamped to the weeks the source spans
    fig, _, got = _triggered(WEEK_BOX, view.show_person, {"points": [{"customdata": 1}]}, asked, "stays:rel/long", "pca")
    assert got == week and f"week {week} of 3" in fig.layout.title.text
    assert len({y for t in fig.data for y in t.y}) == days  # one row per day of that week


def test_a_newly_clicked_person_opens_on_their_first_week_with_stays(client):
    """The week box may hold another person's week; a click opens the new person's first week with stays."""
    from dashboard import people as store
    from dashboard.views import people as view

    people = store.get("stays:rel/long")
    fig, _, week = _triggered(CLICK, view.show_person, {"points": [{"customdata": 1}]}, 3, "stays:rel/long", "pca")
    assert week == 1 and len({y for t in fig.data for y in t.y}) > 0
    assert fig.layout.title.text.startswith(f"Person {people.uids[1]}: week 1 of 3")
