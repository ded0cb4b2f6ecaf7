"""Raw GPS -> stays -> meshes: hand-made tracks with known stays, bad inputs, the real Kobe sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.mobility.gps import GpsOptions, detect_stays, fixes_from_frame, gps_to_stays, read_fixes, stay_table
from core.mobility.privacy import apply_privacy

KOBE = Path(__file__).resolve().parents[1] / "data" / "kobe"
P = (35.681236, 139.767125)  # Tokyo station
Q = (35.658581, 139.745433)  # Tokyo tower


def offset(point, north_m, east_m):
    lat, lon = point
    return lat + north_m / 111_195.0, lon + east_m / (111_195.0 * math.cos(math.radians(lat)))


def track(user, start, points, step_s=60):
    """Rows for fixes at ``points`` every ``step_s`` seconds from local ``start``."""
    t0 = pd.Timestamp(start)
    return [
        {"user_id": user, "timestamp": (t0 + pd.Timedelta(seconds=i * step_s)).isoformat(sep=" "), "lat": p[0], "lon": p[1]}
        for i, p in enumerate(points)
    ]


def stays_of(rows, **kw):
    opts = GpsOptions(**kw)
    fixes = fixes_from_frame(pd.DataFrame(rows), opts)
    return stay_table(fixes, detect_stays(fixes, opts.distance_m, opts.min_minutes, opts.max_gap_minutes), opts.tz, opts.country)


def walk(a, b, n):
    return [(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n) for k in range(1, n)]


def day_rows(user="u1"):
    """08:00-08:30 at P (31 fixes), a 10-minute trip, 08:41-11:41 at Q every 10 min (19 fixes)."""
    rows = track(user, "2021-04-21 08:00:00", [P] * 31)
    rows += track(user, "2021-04-21 08:31:00", walk(P, Q, 11))
    rows += track(user, "2021-04-21 08:41:00", [Q] * 19, step_s=600)
    return rows


def test_two_known_stays_exact():
    out = stays_of(day_rows())
    assert out[["stay_time", "day_of_week", "arrival_time", "is_holiday"]].values.tolist() == [
        [30, "Wednesday", "08:00", False],
        [180, "Wednesday", "08:41", False],
    ]
    assert np.allclose(out[["lat", "lon"]].to_numpy(), [P, Q])
    assert out["n_fixes"].tolist() == [31, 19]
    assert out["code_50m"].astype(str).str.len().tolist() == [12, 12]
    assert str(out["departure"].iloc[1]) == "2021-04-21 11:41:00"


def test_unsorted_and_duplicate_fixes_give_the_same_stays():
    rows = day_rows()
    shuffled = pd.DataFrame(rows + rows[5:9] + rows[40:42]).sample(frac=1.0, random_state=3)
    fixes = fixes_from_frame(shuffled)
    assert fixes.report["dropped_duplicates"] == 6
    out = stay_table(fixes, detect_stays(fixes))
    pd.testing.assert_frame_equal(out, stays_of(rows))


def test_jitter_stays_one_stay_and_a_far_fix_ends_it():
    rng = np.random.default_rng(0)
    jitter = [offset(P, *rng.uniform(-30, 30, 2)) for _ in range(20)]  # within 43 m of P: within 100 m of the first fix
    out = stays_of(track("u", "2021-04-21 10:00:00", jitter))
    assert out["stay_time"].tolist() == [19]
    broken = jitter[:10] + [offset(P, 150, 0)] + jitter[10:]  # a real step 150 m away, reached at walking speed
    out = stays_of(track("u", "2021-04-21 10:00:00", broken))
    assert out["arrival_time"].tolist() == ["10:00", "10:11"]
    assert out["stay_time"].tolist() == [9, 9]


def test_single_fix_spike_is_dropped():
    pts = [P] * 10 + [offset(P, 50_000, 0)] + [P] * 10  # 50 km away for one minute: impossible
    opts = GpsOptions()
    fixes = fixes_from_frame(pd.DataFrame(track("u", "2021-04-21 10:00:00", pts)), opts)
    assert fixes.report["dropped_spikes"] == 1
    out = stay_table(fixes, detect_stays(fixes))
    assert out["stay_time"].tolist() == [20]


def test_null_island_fixes_are_dropped():
    rows = track("u", "2021-04-21 10:00:00", [P] * 5 + [(0.0, 0.0)] + [P] * 5)
    fixes = fixes_from_frame(pd.DataFrame(rows))
    assert fixes.report["dropped_null_island"] == 1
    assert stay_table(fixes, detect_stays(fixes))["stay_time"].tolist() == [10]


def test_minimum_duration_is_inclusive():
    five = track("u", "2021-04-21 10:00:00", [P, P], step_s=300)
    short = track("v", "2021-04-21 10:00:00", [P, P], step_s=299)
    out = stays_of(five + short)
    assert out["user_id"].tolist() == ["u"]
    assert out["stay_time"].tolist() == [5]


def test_midnight_crossing_counts_on_the_arrival_day():
    # Wed 2021-04-28 23:30 -> Thu 07:00 (Thursday 29 April is Showa Day), then Thursday 08:00-09:00.
    rows = track("u", "2021-04-28 23:30:00", [P] * 2, step_s=450 * 60)
    rows += track("u", "2021-04-29 07:10:00", walk(P, Q, 6))
    rows += track("u", "2021-04-29 08:00:00", [Q] * 7, step_s=600)
    out = stays_of(rows)
    assert out[["day_of_week", "arrival_time", "stay_time", "is_holiday"]].values.tolist() == [
        ["Wednesday", "23:30", 450, False],
        ["Thursday", "08:00", 60, True],
    ]


def test_sparse_logger_two_far_apart_fixes_are_a_stay_unless_a_gap_limit_is_set():
    rows = track("u", "2021-04-21 09:00:00", [P, P], step_s=3 * 3600)
    assert stays_of(rows)["stay_time"].tolist() == [180]
    assert stays_of(rows, max_gap_minutes=60).empty


def test_logger_power_off_splits_runs():
    rows = track("u", "2021-04-21 18:00:00", [P] * 3, step_s=600)
    rows += track("u", "2021-04-22 09:00:00", [P] * 2, step_s=120)
    frame = pd.DataFrame(rows)
    frame["Type"] = [0, 0, -4, -2, 0]
    out = stays_of(frame.to_dict("records"))
    # 18:00-18:20, then the logger was off overnight: the morning run (2 minutes) is too short.
    assert out["arrival_time"].tolist() == ["18:00"] and out["stay_time"].tolist() == [20]
    frame["Type"] = 0
    assert stays_of(frame.to_dict("records"))["stay_time"].tolist() == [902]


def test_time_zones_offsets_and_epoch_seconds_agree():
    local = day_rows()
    utc = [dict(r, timestamp=(pd.Timestamp(r["timestamp"]) - pd.Timedelta(hours=9)).isoformat() + "Z") for r in local]
    offset_text = [dict(r, timestamp=pd.Timestamp(r["timestamp"]).isoformat() + "+09:00") for r in local]
    epoch = [dict(r, timestamp=int((pd.Timestamp(r["timestamp"]).tz_localize("Asia/Tokyo")).timestamp())) for r in local]
    want = stays_of(local)[["arrival_time", "stay_time", "day_of_week"]]
    for rows in (utc, offset_text, epoch):
        pd.testing.assert_frame_equal(stays_of(rows)[["arrival_time", "stay_time", "day_of_week"]], want)
    # The same naive clock read in Berlin, reported in Tokyo time: 7 hours later in April (CEST).
    berlin = GpsOptions(tz="Europe/Berlin")
    fixes = fixes_from_frame(pd.DataFrame(local), berlin)
    out = stay_table(fixes, detect_stays(fixes), tz="Asia/Tokyo")
    assert out["arrival_time"].tolist() == ["15:00", "15:41"]


def test_other_country_calendar():
    rows = track("u", "2021-10-03 10:00:00", [P] * 11)  # Sunday 3 October: German Unity Day
    assert bool(stays_of(rows, country="DE", tz="Europe/Berlin")["is_holiday"].iloc[0]) is True
    assert bool(stays_of(rows)["is_holiday"].iloc[0]) is False  # not a Japanese holiday
    with pytest.raises(InputError, match="country"):
        stays_of(rows, country="XX")


# ---------------------------------------------------------------- bad input


@pytest.fixture
def write(tmp_path):
    def _w(text: str, name: str = "fixes.csv") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _w


GOOD = "user_id,timestamp,lat,lon\nu,2021-04-21 08:00:00,35.0,139.0\nu,2021-04-21 08:10:00,35.0,139.0\n"


def test_good_file_reads(write):
    assert len(read_fixes(write(GOOD))) == 2


def test_missing_column(write):
    with pytest.raises(InputError) as e:
        read_fixes(write("user_id,timestamp,lat\nu,2021-04-21 08:00:00,35.0\n"))
    assert "fixes.csv" in str(e.value) and "longitude" in str(e.value) and "user_id, timestamp, lat" in str(e.value)


def test_unparseable_time_names_rows(write):
    text = GOOD + "u,yesterday,35.0,139.0\nu,2021-04-21 08:20:00,35.0,139.0\nu,2021-13-01 00:00:00,35.0,139.0\n"
    with pytest.raises(InputError) as e:
        read_fixes(write(text))
    err = e.value
    assert err.column == "timestamp" and err.rows == [3, 5] and err.values == ["yesterday", "2021-13-01 00:00:00"]
    assert "fixes.csv" in str(err) and "ISO 8601" in str(err)


@pytest.mark.parametrize(
    "row,column,value",
    [
        ("u,2021-04-21 08:20:00,91.5,139.0", "lat", 91.5),
        ("u,2021-04-21 08:20:00,35.0,-181", "lon", -181),
        ("u,2021-04-21 08:20:00,35.0,east", "lon", "east"),
    ],
)
def test_coordinates_out_of_range_or_not_numbers(write, row, column, value):
    with pytest.raises(InputError) as e:
        read_fixes(write(GOOD + row + "\n"))
    assert e.value.column == column and e.value.rows == [3]
    assert e.value.values[0] in (value, str(value)) and "degrees" in str(e.value)


def test_empty_and_header_only_files(write):
    with pytest.raises(InputError, match="empty"):
        read_fixes(write(""))
    with pytest.raises(InputError, match="no fixes"):
        read_fixes(write("user_id,timestamp,lat,lon\n"))


def test_unknown_time_zone(write):
    with pytest.raises(InputError, match="time zone"):
        read_fixes(write(GOOD), GpsOptions(tz="Mars/Olympus"))


def test_not_utf8(write, tmp_path):
    p = tmp_path / "poi.csv"
    p.write_bytes("緯度,経度\n".encode("cp932"))
    with pytest.raises(InputError, match="UTF-8"):
        read_fixes(p)


# ---------------------------------------------------------------- privacy step


def test_privacy_keeps_only_meshes_with_more_than_n_people():
    rows = []
    for u in range(11):  # 11 people at P: kept at 50 m
        rows += track(f"a{u}", "2021-04-21 09:00:00", [P] * 11)
    for u in range(10):  # 10 people at Q: dropped (not more than 10), even at 250 m
        rows += track(f"b{u}", "2021-04-21 09:00:00", [Q] * 11)
    out, report = apply_privacy(stays_of(rows))
    assert report["stays_in"] == 21 and report["stays_out"] == 11
    assert set(out.columns) == {"stay_time", "day_of_week", "arrival_time", "is_holiday", "code", "mesh_size"}
    assert out["mesh_size"].unique().tolist() == [50]
    with pytest.raises(InputError, match="user_id"):
        apply_privacy(stays_of(rows).drop(columns=["user_id"]))


# ---------------------------------------------------------------- the real Kobe sample


@pytest.fixture(scope="module")
def kobe():
    return gps_to_stays(sorted(KOBE.glob("user*.csv")))


VENUE = (34.6662, 135.2135)  # Kobe International Conference Center, Port Island
SANNOMIYA = (34.694, 135.196)


def near(frame, point, metres):
    dy = (frame["lat"] - point[0]) * 111_195.0
    dx = (frame["lon"] - point[1]) * 111_195.0 * math.cos(math.radians(point[0]))
    return np.hypot(dx, dy) <= metres


def test_kobe_reads_cr_files_and_markers(kobe):
    table, report = kobe
    assert report["fixes_read"] == 5074 and report["users"] == 11
    assert report["columns"]["time"] == "Date + Time" and report["columns"]["marker"] == "Type"


def test_kobe_venue_stays_in_local_daytime(kobe):
    table, _ = kobe
    venue = table[near(table, VENUE, 300)]
    assert venue["user_id"].nunique() == 11  # everybody attended
    hours = venue["arrival"].dt.hour
    assert hours.between(7, 22).all()  # JST: nobody arrives at the venue in the small hours
    monday = venue[venue["arrival"].dt.day == 17]
    assert monday["arrival"].dt.hour.min() in range(9, 12)  # the first morning, local time
    assert (venue["day_of_week"].isin(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])).all()
    assert not table["is_holiday"].any()


def test_kobe_overnight_hotel_stays(kobe):
    table, _ = kobe
    hotel = table[near(table, SANNOMIYA, 1200) & (table["stay_time"] >= 300)]
    assert hotel["user_id"].nunique() >= 5
    hour = hotel["arrival"].dt.hour
    assert ((hour >= 18) | (hour <= 3)).all(), hotel[["user_id", "arrival"]]


def test_kobe_venue_on_both_sides_of_the_first_level_boundary(kobe):
    table, _ = kobe
    venue = table[near(table, VENUE, 300)]
    boundary = 34 + 40 / 60  # 34°40' = first-level row 52 starts
    north = venue["lat"] >= boundary
    assert north.any() and (~north).any()
    code = venue["code_50m"].astype(str)
    assert code[north].str.startswith("5235").all() and code[~north].str.startswith("5135").all()
    # Each stay's 50 m mesh, decoded independently: 2nd-level row 0 north of the line, row 7 south of it.
    assert code[north].str[4].eq("0").all() and code[~north].str[4].eq("7").all()
    # And the raw fixes on both sides of the line land on their own side.
    fixes = read_fixes(sorted(KOBE.glob("user*.csv")))
    from core.geo.meshcode import latlon_to_code

    at_venue = (np.abs(fixes.lat - VENUE[0]) < 0.003) & (np.abs(fixes.lon - VENUE[1]) < 0.003)
    c = latlon_to_code(fixes.lat[at_venue], fixes.lon[at_venue], 50).astype(str)
    up = fixes.lat[at_venue] >= boundary
    assert up.any() and (~up).any()
    assert np.char.startswith(c[up], "5235").all() and np.char.startswith(c[~up], "5135").all()


def test_kobe_privacy_step(kobe):
    table, _ = kobe
    out, report = apply_privacy(table)
    assert 0 < report["stays_out"] < report["stays_in"]
    assert set(out["mesh_size"]) <= {50, 250} and "user_id" not in out.columns and "lat" not in out.columns
    # Every mesh that leaves the step was used by more than 10 people (here: all 11), recounted from the input.
    for code, size in out[["code", "mesh_size"]].drop_duplicates().itertuples(index=False):
        column = "code_50m" if size == 50 else "code_250m"
        assert table.loc[table[column] == code, "user_id"].nunique() == 11
    # The venue is among them, on both sides of the first-level line.
    first = out["code"].astype(str).str[:4]
    assert {"5135", "5235"} <= set(first)


def test_cli_stays_then_meshes(tmp_path):
    from core.cli import main

    stays = tmp_path / "stays.parquet"
    assert main(["stays", *map(str, sorted(KOBE.glob("user*.csv"))), "--out", str(stays)]) == 0
    frame = pd.read_parquet(stays)
    assert {"stay_time", "day_of_week", "arrival_time", "is_holiday", "user_id", "lat", "lon", "code_50m", "code_250m"} <= set(
        frame.columns
    )
    assert len(frame) == len(gps_to_stays(sorted(KOBE.glob("user*.csv")))[0])
    train = tmp_path / "train.csv"
    assert main(["meshes", str(stays), "--out", str(train)]) == 0
    out = pd.read_csv(train)
    assert list(out.columns) == ["stay_time", "day_of_week", "arrival_time", "is_holiday", "code", "mesh_size"]
    from core.mobility.stays import read_stays

    assert len(read_stays(train)) == len(out)  # the training table validates as a stay table
    assert main(["stays", str(KOBE / "user1.csv"), "--out", str(tmp_path / "x.txt")]) == 2  # unknown output type
    assert not (tmp_path / "x.txt").exists()


def test_parquet_timestamps_with_and_without_a_zone(tmp_path):
    local = pd.DataFrame(day_rows())
    want = stays_of(day_rows())[["arrival_time", "stay_time"]]
    aware = local.assign(timestamp=pd.to_datetime(local["timestamp"]).dt.tz_localize("Asia/Tokyo").dt.tz_convert("UTC"))
    naive = local.assign(timestamp=pd.to_datetime(local["timestamp"]))
    for frame, name in ((aware, "aware.parquet"), (naive, "naive.parquet")):
        frame.to_parquet(tmp_path / name)
        fixes = read_fixes(tmp_path / name)
        pd.testing.assert_frame_equal(stay_table(fixes, detect_stays(fixes))[["arrival_time", "stay_time"]], want)
