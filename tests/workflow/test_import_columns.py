"""Import: unrecognised column names need a mapping (never guessed into a stay table), the mapping
round-trips through the training request and its command line, and a bad file reports every problem."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from core.cli import build_parser, main
from core.errors import InputError, InputProblems
from core.mobility.columns import ColumnMap, ColumnsNotRecognised, detect_kind
from core.mobility.stays import read_stays
from core.workflow.request import TrainRequest
from core.workflow.userdata import prepare

KOBE = sorted((Path(__file__).resolve().parents[1] / "data" / "kobe").glob("user*.csv"))


@pytest.fixture(scope="module")
def odd_gps(tmp_path_factory) -> Path:
    """The Kobe fixes in one file with unusual column names: id, when, latitude, longitude."""
    from core.mobility.gps import read_fixes

    fx = read_fixes(KOBE)
    when = pd.to_datetime((fx.t * 1e9).astype("int64"), utc=True).tz_convert("Asia/Tokyo").strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path_factory.mktemp("odd") / "odd.csv"
    pd.DataFrame({"id": fx.users[fx.user], "when": when, "latitude": fx.lat, "longitude": fx.lon}).to_csv(path, index=False)
    return path


def test_unusual_gps_names_are_not_taken_for_a_stay_table(odd_gps):
    assert detect_kind(["id", "when", "latitude", "longitude"]) is None
    assert detect_kind(["user_id", "timestamp", "lat", "lon"]) == "gps"
    assert detect_kind(["stay_time", "day_of_week"]) == "stays"  # a stay table missing columns: named as such
    with pytest.raises(ColumnsNotRecognised) as err:
        prepare([odd_gps])
    assert err.value.file_columns == ["id", "when", "latitude", "longitude"]
    assert err.value.suggestion == {"user_id": "id", "time": "when", "lat": "latitude", "lon": "longitude"}
    assert "--columns user_id=id,time=when,lat=latitude,lon=longitude" in str(err.value)
    back = pickle.loads(pickle.dumps(err.value))  # it crosses the preview worker's pipe
    assert isinstance(back, ColumnsNotRecognised) and back.file_columns == err.value.file_columns


def test_a_mapped_gps_file_gives_the_same_stays_as_the_named_one(odd_gps):
    cmap = ColumnMap.parse("user_id=id,time=when,lat=latitude,lon=longitude")
    mapped = prepare([odd_gps], columns=cmap).report
    assert mapped["kind"] == "gps" and mapped["people"] == 11 and mapped["fixes"] == 5074
    assert mapped["columns"] == {"user_id": "id", "time": "when", "lat": "latitude", "lon": "longitude"}
    renamed = odd_gps.with_name("named.csv")
    pd.read_csv(odd_gps).rename(columns={"id": "user_id", "when": "timestamp", "latitude": "lat", "longitude": "lon"}).to_csv(
        renamed, index=False
    )
    named = prepare([renamed]).report
    assert (mapped["stays"], mapped["meshes"], mapped["privacy"]) == (named["stays"], named["meshes"], named["privacy"])


def test_the_mapping_round_trips_through_the_request_and_its_command_line(odd_gps, tmp_path):
    spec = ColumnMap.parse("time=when, lat=latitude,lon=longitude,user_id=id").spec()
    assert spec == "gps:user_id=id,time=when,lat=latitude,lon=longitude"  # roles in a fixed order
    assert ColumnMap.parse(spec) == ColumnMap.parse("user_id=id,time=when,lat=latitude,lon=longitude")
    req = TrainRequest(
        (str(odd_gps),), str(tmp_path), "odd", "2016-10", columns="time=when,lat=latitude,lon=longitude,user_id=id"
    )
    req = req.validated()
    assert req.columns == spec
    argv = req.to_argv()
    assert f"--columns={spec}" in argv
    args = build_parser().parse_args(argv[3:])  # after "python -m core"
    assert TrainRequest.from_args(args) == req
    assert TrainRequest.from_args(args).column_map().as_dict()["time"] == "when"


def test_a_stay_table_with_other_names_is_read_through_a_mapping(write_csv):
    rows = pd.DataFrame(
        {
            "minutes": [30, 45],
            "dow": ["Monday", "Sunday"],
            "arrived": ["08:15", "23:59"],
            "holiday": [False, True],
            "mesh": ["523667024800", "5236670224"],
            "code": ["junk", "junk"],  # a column bearing a schema name but not chosen: set aside, not read
        }
    )
    path = write_csv(rows, "renamed.csv")
    cmap = ColumnMap.parse("stay_time=minutes,day_of_week=dow,arrival_time=arrived,is_holiday=holiday,code=mesh")
    assert cmap.kind == "stays"
    rec = read_stays(path, cmap)
    assert rec.stay_time.tolist() == [30, 45] and rec.weekday.tolist() == [0, 6] and rec.is_holiday.tolist() == [False, True]
    assert rec.mesh_sizes.tolist() == [50, 250]
    rows.to_parquet(path.with_suffix(".parquet"))
    assert read_stays(path.with_suffix(".parquet"), cmap).area_keys.tolist() == rec.area_keys.tolist()
    assert (
        main(
            [
                "train",
                str(path),
                "--out",
                str(path.parent / "run"),
                "--free",
                "--columns",
                cmap.spec(),
                "--epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("time=when,lat=latitude", "no column chosen for lon"),
        ("time=when,lat=when,lon=x", "chosen for two roles"),
        ("time=when,lat=a,lon=b,colour=c", "unknown role 'colour'"),
        ("time", "is not role=column"),
        ("", "is empty"),
        ("stays:stay_time=a,day_of_week=b,arrival_time=c,is_holiday=d", "code or mesh_id"),
    ],
)
def test_bad_mappings_are_refused_with_a_reason(spec, message):
    with pytest.raises(InputError, match=message):
        ColumnMap.parse(spec)


def test_a_mapping_naming_a_column_the_file_lacks_is_refused(odd_gps):
    with pytest.raises(InputError, match="has no column 'stamp'"):
        prepare([odd_gps], columns=ColumnMap.parse("time=stamp,lat=latitude,lon=longitude"))


def test_a_file_with_two_bad_columns_reports_both_with_counts(write_csv):
    rows = [
        {"stay_time": 10, "day_of_week": "Monday", "arrival_time": "08:15", "is_holiday": False, "mesh_id": 1} for _ in range(8)
    ]
    rows[1]["arrival_time"] = "25:99"
    rows[3]["arrival_time"] = "noon"
    rows[2]["stay_time"] = -5
    rows[5]["stay_time"] = "abc"
    rows[6]["stay_time"] = -1
    path = write_csv(rows, "broken.csv")
    with pytest.raises(InputProblems) as err:
        read_stays(path)
    probs = {(p.column, p.problem): (p.n_bad, p.rows) for p in err.value.problems}
    assert probs == {
        ("stay_time", "not a number"): (1, [6]),
        ("stay_time", "negative duration"): (2, [3, 7]),
        ("arrival_time", "not a time of day"): (2, [2, 4]),
    }
    text = str(err.value)
    assert text.startswith("3 problems in 2 columns") and "broken.csv column 'arrival_time'" in text
    back = pickle.loads(pickle.dumps(err.value))
    assert [p.problem for p in back.problems] == [p.problem for p in err.value.problems]


def test_gps_fixes_report_every_bad_column(tmp_path):
    path = tmp_path / "fixes.csv"
    pd.DataFrame(
        {
            "user_id": ["a"] * 4,
            "timestamp": ["2021-04-01 08:00:00", "yesterday", "2021-04-01 08:20:00", "2021-04-01 08:30:00"],
            "lat": [35.0, 95.0, 35.0, 35.0],
            "lon": [139.0, 139.0, 139.0, "east"],
        }
    ).to_csv(path, index=False)
    from core.mobility.gps import read_fixes

    with pytest.raises(InputProblems) as err:
        read_fixes(path)
    assert {(p.column, p.problem, tuple(p.rows)) for p in err.value.problems} == {
        ("timestamp", "not a date and time", (2,)),
        ("lat", "out of range", (2,)),
        ("lon", "not a number", (4,)),
    }
