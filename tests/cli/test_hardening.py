"""Issue 17: the command line cannot be fooled by blank people or bad stays, and never half-writes."""

from __future__ import annotations

import pytest

from core.cli import main

HEADER = "user_id,stay_time,day_of_week,arrival_time,is_holiday,lat,lon\n"
LAT, LON = 34.6913, 135.1956  # Kobe


def write(tmp_path, rows, name="stays.csv"):
    p = tmp_path / name
    p.write_text(HEADER + "".join(rows))
    return p


def test_meshes_rejects_bad_stay_values_naming_rows(tmp_path, capsys):
    rows = [f"p{i},30,Monday,09:00,False,{LAT},{LON}\n" for i in range(12)]
    rows[4] = f"p4,-30,Funday,25:10,False,{LAT},{LON}\n"
    src = write(tmp_path, rows)
    out = tmp_path / "training.csv"
    assert main(["meshes", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stays.csv column 'stay_time'" in err and "row 5" in err
    assert not out.exists()


def test_meshes_blank_user_is_not_a_person(tmp_path, capsys):
    rows = [f"p{i},30,Monday,09:00,False,{LAT},{LON}\n" for i in range(10)]
    rows += [f",30,Monday,10:00,False,{LAT},{LON}\n"] * 3
    src = write(tmp_path, rows)
    out = tmp_path / "training.csv"
    main(["meshes", str(src), "--out", str(out)])
    # 10 real people are not MORE than 10: nothing may be published
    assert not out.exists() or out.read_text().count("\n") <= 1
    assert '"stays_without_person": 3' in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-5", "0"])
def test_counts_refuses_threshold_below_one(tmp_path, capsys, bad):
    src = write(tmp_path, [f"p{i},30,Monday,09:00,False,{LAT},{LON}\n" for i in range(12)])
    assert main(["counts", str(src), "--out", str(tmp_path / "c.parquet"), "--min-users", bad]) == 2
    assert "privacy threshold" in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()
