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


# ---------------------------------------------------------------- outputs: never overwritten silently, never half-written


@pytest.fixture(scope="module")
def coded_stays(tmp_path_factory):
    import numpy as np

    from core.geo.meshcode import latlon_to_code
    from core.simulation.synthetic import synthetic_city

    d = tmp_path_factory.mktemp("coded")
    df = synthetic_city(40, 60, seed=3).stays
    rng = np.random.default_rng(0)
    codes = np.unique(latlon_to_code(35.15 + rng.random(80) * 0.01, 136.9 + rng.random(80) * 0.01, 50))[:30]
    df = df[df["mesh_id"] < len(codes)].copy()
    df["code"] = codes[df["mesh_id"].to_numpy()]
    p = d / "s.csv"
    df.drop(columns=["mesh_id"]).to_csv(p, index=False)
    return p


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def train(src, out, *extra):
    return main(["train", str(src), "--out", str(out), "--free", "--quiet", "--epochs", "5", *extra])


def test_train_refuses_to_overwrite_a_run(coded_stays, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(coded_stays, out) == 0
    before = snapshot(out)
    assert train(coded_stays, out, "--seed", "1") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert snapshot(out) == before
    assert train(coded_stays, out, "--seed", "1", "--overwrite") == 0
    assert snapshot(out)["embeddings.csv"] != before["embeddings.csv"]


def test_train_refuses_a_folder_with_other_files(coded_stays, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert train(coded_stays, out, "--overwrite") == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep me"


def test_a_save_failing_part_way_leaves_the_old_run_intact(coded_stays, tmp_path, monkeypatch, capsys):
    import core.area2vec.embeddings as E

    out = tmp_path / "run"
    assert train(coded_stays, out) == 0
    before = snapshot(out)

    def broken(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(E, "save_state_dict", broken)  # embeddings.csv is written first, then this fails
    assert train(coded_stays, out, "--seed", "2", "--overwrite") == 2
    assert "No space left" in capsys.readouterr().err
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left beside it


def test_failed_train_leaves_no_output_folder(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("stay_time,day_of_week,arrival_time,is_holiday,mesh_id\n5,Funday,09:00,False,1\n")
    out = tmp_path / "a" / "b"
    assert train(bad, out) == 2
    assert not (tmp_path / "a").exists()


def test_export_refuses_to_overwrite_a_dataset(coded_stays, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(coded_stays, run) == 0
    release = tmp_path / "data" / "mine"
    args = ["export", str(run), "--release", str(release), "--name", "kobe_2016_10"]
    assert main(args) == 0
    gj = release / "japan_city" / "geojson" / "kobe_2016_10.geojson"
    before = gj.read_bytes()
    gj.write_bytes(before + b" ")  # mark it
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err and gj.read_bytes() == before + b" "
    assert main([*args, "--overwrite"]) == 0 and gj.read_bytes() == before


def test_written_files_follow_the_umask(coded_stays, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert train(coded_stays, tmp_path / "run") == 0
    finally:
        os.umask(old)
    assert oct((tmp_path / "run").stat().st_mode & 0o777) == oct(0o755)
    for p in (tmp_path / "run").iterdir():
        assert oct(p.stat().st_mode & 0o777) == oct(0o644), p.name
