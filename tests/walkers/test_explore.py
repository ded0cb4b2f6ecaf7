"""The People explorer's logic (core.walkers.explore): projection, selections, heatmap counts, chart, summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.walkers.explore import (
    FEATURES,
    StayFilter,
    attribute_options,
    clamp_week,
    clicked_row,
    day_panels,
    first_week,
    heat_classes,
    in_polygon,
    n_weeks,
    pattern,
    people_from_trajectories,
    person_stays,
    project,
    region_counts,
    select,
    separation,
    stay_mask,
    summary,
    token_histogram,
    week_label,
)
from core.walkers.trajectories import trajectories_from_frame

from .conftest import commute_frame


def mixed_frame(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 commuters (work 3 km east) and 40 people who stay near home all day, and their truth."""
    a = commute_frame(40, days=6, seed=seed)
    b = commute_frame(40, days=6, seed=seed + 1)
    b["user_id"] += 40
    home = b["place"] == "home"
    b.loc[~home, "lon"] -= 3.0 / (111.32 * np.cos(np.radians(35.17)))  # 'work' at home
    b.loc[~home, "arrival_time"] = "11:00"  # and at another time of day
    frame = pd.concat([a, b], ignore_index=True)
    truth = pd.DataFrame({"user_id": np.arange(80), "commuter": np.arange(80) < 40})
    return frame, truth


@pytest.fixture(scope="module")
def people():
    frame, truth = mixed_frame()
    traj = trajectories_from_frame(frame, "mixed")
    attrs = pd.DataFrame(
        {"activity": np.bincount(traj.uid), "commuter": truth.set_index("user_id").loc[traj.users, "commuter"].to_numpy()}
    )
    return people_from_trajectories(traj, attrs=attrs, name="mixed"), frame


def test_people_hold_features_and_every_stay(people):
    p, frame = people
    assert p.encoder == FEATURES and p.n == 80 and p.embeddings.shape == (80, 12)
    assert len(p.person) == len(frame) and (np.diff(p.person) >= 0).all()
    assert p.weekday_known and set(np.unique(p.hour)) == {8, 11, 18}


def test_projection_standardises_and_reports_variance_per_component(people):
    p, _ = people
    proj = project(p.embeddings)
    assert proj.xy.shape == (80, 2) and proj.method == "pca"
    assert np.isclose(proj.explained.sum(), 1.0) and (np.diff(proj.explained) <= 1e-12).all()
    # standardised: scaling one feature by 1000 changes nothing
    scaled = p.embeddings.copy()
    scaled[:, 0] *= 1000
    assert np.allclose(project(scaled).xy, proj.xy, atol=1e-3)
    assert np.allclose(project(p.embeddings).xy, proj.xy)  # deterministic, signs included


def test_commuters_separate_in_the_projection(people):
    p, _ = people
    xy = project(p.embeddings).xy
    y = p.attrs["commuter"].to_numpy()
    assert separation(xy, y) > 0.9
    rng = np.random.default_rng(0)
    assert separation(rng.normal(size=(80, 2)), y) < 0.75  # noise does not
    assert np.isnan(separation(xy, np.zeros(80, bool)))


def test_box_and_lasso_select_the_points_inside():
    xy = np.array([[0, 0], [1, 1], [2, 2], [5, 5], [0.5, 1.8]], np.float32)
    box = {"range": {"x": [0.5, 2.5], "y": [0.5, 2.5]}, "points": []}
    assert select(xy, box).tolist() == [1, 2, 4]
    tri = {"lassoPoints": {"x": [-1, 3, -1], "y": [-1, 3, 3]}}  # above the diagonal y = x
    assert select(xy, tri).tolist() == [4]
    assert in_polygon(xy, np.array([-1, 3, 3, -1.0]), np.array([-1, -1, 3, 3.0])).tolist() == [True, True, True, False, True]


@pytest.mark.parametrize(
    "forged",
    [
        None,
        "x",
        {},
        {"range": {"x": ["a", "b"], "y": [0, 1]}},
        {"range": {"x": [0, float("nan")], "y": [0, 1]}},
        {"range": {"x": [0, 1, 2], "y": [0, 1]}},
        {"lassoPoints": {"x": [0, 1], "y": [0, 1]}},
        {"lassoPoints": {"x": [0, 1, 2], "y": [0, 1]}},
        {"lassoPoints": {"x": [[0, 1], [2, 3]], "y": [0, 1]}},
        {"lassoPoints": {"x": list(range(10**6)), "y": list(range(10**6))}},
    ],
)
def test_forged_selections_select_nothing(forged):
    assert select(np.zeros((3, 2), np.float32), forged) is None


def test_a_long_lasso_is_thinned_not_refused():
    t = np.linspace(0, 2 * np.pi, 20_000)
    lasso = {"lassoPoints": {"x": np.cos(t).tolist(), "y": np.sin(t).tolist()}}
    assert select(np.array([[0, 0], [2, 0]], np.float32), lasso).tolist() == [0]


def test_filters_are_clamped():
    assert StayFilter.clamp("holiday", [20, 6]) == StayFilter("holiday", 6, 20)
    assert StayFilter.clamp("weekend", [0, 24]) == StayFilter("all", 0, 24)  # the day kinds are weekday and holiday
    assert StayFilter.clamp("friday", [-5, 99]) == StayFilter("all", 0, 24)
    assert StayFilter.clamp(None, "x") == StayFilter("all", 0, 24)
    assert StayFilter.clamp("weekday", [float("nan"), 3]) == StayFilter("weekday", 0, 24)


def test_heatmap_counts_match_a_pandas_group_by(people):
    p, frame = people
    rows = np.array([0, 3, 41, 79])
    flt = StayFilter("weekday", 6, 12)
    counts = region_counts(p, stay_mask(p, rows, flt))
    chosen = frame[frame["user_id"].isin(p.uids[rows])]
    hour = chosen["arrival_time"].str.slice(0, 2).astype(int)
    weekday = pd.to_datetime(chosen["date"]).dt.day_of_week < 5
    kept = chosen[weekday & (hour >= 6) & (hour < 12)]
    from core.geo.meshcode import latlon_to_code

    expected = pd.Series(latlon_to_code(kept["lat"].to_numpy(), kept["lon"].to_numpy(), 50)).value_counts()
    got = pd.Series(counts, index=p.codes)
    got = got[got > 0]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    cls = heat_classes(counts)
    assert (cls[counts == 0] == -1).all() and cls[counts.argmax()] == 7 and cls.max() <= 7


def test_pattern_chart_and_summary_of_a_selection(people):
    p, frame = people
    everyone = stay_mask(p, None)
    commuters = np.arange(40)
    mask = stay_mask(p, commuters)
    chart = pattern(p, mask)
    assert chart.shape == (2, 12, 7)
    # commuters arrive at 08 and 18, never at 11: the 10-12 h bin of weekdays has no arrivals of theirs,
    # while everyone's chart has 11:00 arrivals (its long stays cover that bin too, so compare counts of arrivals)
    from core.walkers.explore import token_histogram

    hist = token_histogram(p, mask).reshape(2, 12, 7)
    assert hist[:, 5].sum() == 0 and token_histogram(p, everyone).reshape(2, 12, 7)[:, 5].sum() > 0
    info = summary(p, commuters, mask)
    assert info["people"] == 40 and info["stays"] == int(mask.sum()) == 40 * 12
    assert info["commuter_share"] == 1.0
    assert summary(p, None, everyone)["commuter_share"] == 0.5
    assert info["top_places"][0]["stays"] >= info["top_places"][-1]["stays"] > 0


def test_a_persons_week(people):
    p, _ = people
    st = person_stays(p, 5)
    assert len(st) == 12 and st["day"].min() == 0 and st["day"].max() == 5
    assert set(st["minute"] // 60) == {8, 18}


def test_a_humob_file_opens_with_its_truth(tmp_path):
    from core.simulation.humob import generate_humob
    from core.walkers.explore import load_people

    records, truth = generate_humob(n_people=60, days=4, seed=1, masked_share=0.2, masked_days=1)
    records.to_csv(tmp_path / "h.csv", index=False)
    truth.to_csv(tmp_path / "h_people.csv", index=False)
    p = load_people(tmp_path / "h.csv")
    assert not p.weekday_known and not p.weekend.any() and set(p.sizes) == {250}
    assert (records["x"] == 999).any() and p.embeddings.shape == (p.n, 12) and np.isfinite(p.embeddings).all()
    com = truth.set_index("uid").loc[p.uids, "commuter"].to_numpy()
    assert (p.attrs["commuter"].to_numpy() == com).all()
    assert stay_mask(p, None, StayFilter("holiday")).sum() == 0
    assert p.day0 is None and not p.holiday.any() and "no calendar dates" in day_panels(p)[1]


def _showa_day_frame() -> pd.DataFrame:
    """Six days from Monday 2021-04-26: Thursday 29 April is Showa Day (a national holiday), Saturday 1 May a weekend day."""
    frame = commute_frame(10, days=6, seed=3)
    frame["date"] = frame["date"] + pd.Timedelta(days=21)
    return frame


def test_holidays_come_from_the_calendar_for_sources_with_dates():
    frame = _showa_day_frame()
    p = people_from_trajectories(trajectories_from_frame(frame, "showa"))
    dates = pd.to_datetime(frame.sort_values(["user_id", "date", "arrival_time"])["date"]).dt.strftime("%m-%d").to_numpy()
    assert p.dates_known and p.country == "JP" and str(np.datetime64(p.day0, "D")) == "2021-04-26"
    assert (p.holiday == (dates == "04-29")).all() and (p.weekend == (dates == "05-01")).all()
    # 10 people x 2 stays a day: Showa Day and the Saturday are the chart's holiday panel, as for clusters
    hist = token_histogram(p, stay_mask(p, None)).reshape(2, 12, 7)
    assert hist[1].sum() == 10 * 2 * 2 and hist[0].sum() == 10 * 2 * 4
    assert stay_mask(p, None, StayFilter("holiday")).sum() == 40 and stay_mask(p, None, StayFilter("weekday")).sum() == 80
    info = summary(p, None, stay_mask(p, None))
    assert info["holiday_stays"] == 40 and info["national_holiday_stays"] == 20
    assert day_panels(p) == ("weekday", "holiday")
    week = person_stays(p, 0)
    assert "2021-04-29 (Thu, holiday)" in set(week["label"]) and "2021-05-01 (Sat)" in set(week["label"])


def test_local_timestamps_decide_the_holiday():
    """An arrival at 00:30 local time on 29 April is on Showa Day; 23:30 the evening before is not."""
    arrivals = ["2021-04-28T23:30:00+09:00", "2021-04-29T00:30:00+09:00", "2021-04-30T08:00:00+09:00"]
    frame = pd.DataFrame(
        {"user_id": [1, 1, 2], "lat": [35.0] * 3, "lon": [139.0] * 3, "arrival": arrivals, "stay_time": [30, 30, 30]}
    )
    p = people_from_trajectories(trajectories_from_frame(frame, "tz"))
    assert p.holiday.tolist() == [False, True, False]


def test_weekdays_without_dates_say_the_panel_holds_weekends_only():
    import dataclasses

    frame = _showa_day_frame()
    traj = dataclasses.replace(trajectories_from_frame(frame, "showa"), day0=None)
    p = people_from_trajectories(traj)
    assert not p.holiday.any() and p.weekend.sum() == 20
    assert token_histogram(p, stay_mask(p, None)).reshape(2, 12, 7)[1].sum() == 20
    assert day_panels(p) == ("weekday", "weekend (no calendar dates in this source)")
    assert person_stays(p, 0)["label"].iloc[0] == "day 0 (Mon)"


def test_a_week_of_the_source_is_chosen_and_clamped():
    frame = commute_frame(4, days=20, seed=2)  # 2021-04-05 (Monday) to 2021-04-24: weeks 1-3
    p = people_from_trajectories(trajectories_from_frame(frame, "long"))
    assert n_weeks(p) == 3
    for value, week in [(2, 2), ("2", 2), (2.7, 2), (99, 3), (-4, 1), (0, 1), (None, 1), ("x", 1), (float("nan"), 1), ([2], 1)]:
        assert clamp_week(p, value) == week, value
    two, three = person_stays(p, 1, 2), person_stays(p, 1, 3)
    assert len(two) == 14 and set(two["day"]) == set(range(7, 14)) and len(three) == 12 and three["day"].max() == 19
    assert week_label(p, 2) == "week 2 of 3 (2021-04-12 to 2021-04-18)"
    assert len(person_stays(p, 1)) == 40


def test_a_clicked_person_is_found_by_row_or_by_position():
    xy = np.array([[0.1, 0.2], [1.5, -2.25], [1.5, 3.0]], np.float32)
    assert clicked_row(xy, {"points": [{"customdata": 2, "x": 0.1, "y": 0.2}]}) == 2  # the row when it came along
    # as plotly.js sends a scattergl click: the drawn float32 position, printed as a double
    assert clicked_row(xy, {"points": [{"x": float(xy[0, 0]), "y": float(xy[0, 1])}]}) == 0
    assert clicked_row(xy, {"points": [{"x": 1.5, "y": -2.25}]}) == 1
    for forged in [
        None,
        "x",
        {},
        {"points": []},
        {"points": ["a"]},
        {"points": [{"customdata": 3}]},
        {"points": [{"customdata": -1}]},
        {"points": [{"customdata": True}]},
        {"points": [{"x": 0.1000001, "y": 0.2}]},
        {"points": [{"x": "0.1", "y": 0.2}]},
        {"points": [{"x": float("nan"), "y": 0.2}]},
    ]:
        assert clicked_row(xy, forged) is None, forged


def test_the_default_colouring_tells_people_apart():
    """A truth column that is the same for everybody (no commuters in a small city) is not the default."""
    frame, truth = mixed_frame()
    traj = trajectories_from_frame(frame, "mixed")
    act = np.bincount(traj.uid)
    varying = people_from_trajectories(traj, attrs=pd.DataFrame({"activity": act, "commuter": traj.users < 40}), name="v")
    assert attribute_options(varying)[0] == "commuter"
    flat = pd.DataFrame(
        {"activity": act, "commuter": np.zeros(len(act), bool), "role": np.where(traj.users < 40, "worker", "student")}
    )
    options = attribute_options(people_from_trajectories(traj, attrs=flat, name="flat"))
    assert options == ["role", "activity", "cluster", "commuter"]


def test_a_person_opens_on_their_first_week_with_stays(people):
    p, _ = people
    off = p.offsets()
    for row in (0, p.n - 1):
        start = p.start[off[row] : off[row + 1]]
        week = first_week(p, row)
        assert week == int(start.min() // (24 * 60)) // 7 + 1
        assert len(person_stays(p, row, week)) > 0
