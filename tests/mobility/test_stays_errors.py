import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.mobility.stays import read_stays
from tests.conftest import good_rows


def _with(col, values, n=None):
    rows = good_rows(len(values) if n is None else n)
    for r, v in zip(rows, values):
        r[col] = v
    return rows


def test_extra_columns_are_accepted(write_csv):
    rows = good_rows()
    for r in rows:
        r["user_id"] = "u1"
        r["note"] = "anything"
    recs = read_stays(write_csv(rows))
    assert len(recs) == 3 and recs.tokens().tolist() == [28, 28, 28]


def test_unnamed_index_column_is_accepted(official_stays):
    assert len(read_stays(official_stays)) == 40


def test_missing_column(write_csv):
    df = pd.DataFrame(good_rows()).drop(columns=["arrival_time"])
    with pytest.raises(InputError, match=r"stays.csv: missing column 'arrival_time'"):
        read_stays(write_csv(df))


def test_missing_area_key(write_csv):
    df = pd.DataFrame(good_rows()).drop(columns=["mesh_id"])
    with pytest.raises(InputError, match=r"missing column 'mesh_id' \(or 'code'\)"):
        read_stays(write_csv(df))


@pytest.mark.parametrize("bad", ["25:10", "7:5", "", "noon", "12:60"])
def test_bad_arrival_time(write_csv, bad):
    rows = good_rows(4)
    rows[2]["arrival_time"] = bad
    with pytest.raises(InputError) as err:
        read_stays(write_csv(rows))
    msg = str(err.value)
    assert "stays.csv column 'arrival_time'" in msg and "row 3" in msg and "HH:MM" in msg
    assert err.value.rows == [3]


def test_unknown_weekday(write_csv):
    rows = good_rows(5)
    rows[1]["day_of_week"] = "Funday"
    rows[4]["day_of_week"] = "Mondy"
    with pytest.raises(InputError, match=r"column 'day_of_week': unknown weekday name; at row 2 \('Funday'\), row 5 \('Mondy'\)"):
        read_stays(write_csv(rows))


@pytest.mark.parametrize("bad, problem", [(-5, "negative duration"), (float("nan"), "empty value|not a")])
def test_bad_stay_time(write_csv, bad, problem):
    rows = good_rows(3)
    rows[1]["stay_time"] = bad
    with pytest.raises(InputError, match=problem) as err:
        read_stays(write_csv(rows))
    assert err.value.column == "stay_time" and err.value.rows == [2]


@pytest.mark.parametrize("bad", ["abc", 3.5])
def test_non_integer_mesh_id(write_csv, bad):
    rows = good_rows(3)
    rows[2]["mesh_id"] = bad
    with pytest.raises(InputError) as err:
        read_stays(write_csv(rows))
    assert err.value.column == "mesh_id" and err.value.rows == [3]


def test_mesh_id_minus_one_is_skipped(write_csv):
    rows = good_rows(3)
    rows[0]["mesh_id"] = -1
    recs = read_stays(write_csv(rows))
    assert len(recs) == 2 and recs.n_skipped == 1


def test_codes_as_key(write_csv):
    rows = good_rows(3)
    for r, c in zip(rows, [523667005500, 5236670041, 523667005500]):
        del r["mesh_id"]
        r["code"] = c
    counts = read_stays(write_csv(rows)).to_counts()
    assert counts.key_column == "code"
    assert counts.keys.tolist() == [5236670041, 523667005500]
    assert counts.mesh_sizes.tolist() == [250, 50]


@pytest.mark.parametrize("bad", [52366700559, 5236670051, 523667005520, 523687005500, "5236-67", 12])
def test_malformed_mesh_code(write_csv, bad):
    rows = good_rows(3)
    for r in rows:
        del r["mesh_id"]
        r["code"] = "5236670041"
    rows[1]["code"] = bad
    with pytest.raises(InputError, match="malformed mesh code") as err:
        read_stays(write_csv(rows))
    assert err.value.column == "code" and err.value.rows == [2]


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(InputError, match="empty.csv: the file is empty"):
        read_stays(p)


def test_header_only(tmp_path):
    p = tmp_path / "header.csv"
    p.write_text("stay_time,day_of_week,arrival_time,is_holiday,mesh_id\n")
    with pytest.raises(InputError, match="header.csv: has a header but no stays"):
        read_stays(p)


def test_bad_value_late_in_a_large_csv_is_found(tmp_path):
    n = 300_000
    df = pd.DataFrame(
        {
            "stay_time": np.full(n, 10),
            "day_of_week": "Monday",
            "arrival_time": "08:00",
            "is_holiday": False,
            "mesh_id": np.arange(n) % 50,
        }
    )
    df["mesh_id"] = df["mesh_id"].astype(object)
    df.loc[n - 2, "mesh_id"] = "x7"
    p = tmp_path / "big.csv"
    df.to_csv(p, index=False)
    with pytest.raises(InputError) as err:
        read_stays(p)
    assert err.value.rows == [n - 1] and err.value.column == "mesh_id"


def test_parquet_with_time_and_bool_types(tmp_path):
    import datetime as dt

    df = pd.DataFrame(
        {
            "stay_time": [5, 700],
            "day_of_week": ["Saturday", "Tuesday"],
            "arrival_time": [dt.time(13, 43), dt.time(23, 59)],
            "is_holiday": [False, True],
            "mesh_id": [7, 9],
        }
    )
    p = tmp_path / "s.parquet"
    df.to_parquet(p)
    assert read_stays(p).tokens().tolist() == [84 + 42, 84 + 77 + 5]


def test_parquet_bad_weekday(tmp_path):
    df = pd.DataFrame(good_rows(3))
    df.loc[2, "day_of_week"] = "Someday"
    p = tmp_path / "s.parquet"
    df.to_parquet(p)
    with pytest.raises(InputError, match=r"s.parquet column 'day_of_week': unknown weekday name; at row 3 \('Someday'\)"):
        read_stays(p)
