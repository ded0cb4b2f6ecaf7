"""Every command turns bad input into one line on stderr and exit status 2: never a traceback."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.csv").write_bytes(b"")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (d / "stays.csv.gz").write_bytes(gzip.compress(b"stay_time,day_of_week\n10,Monday\n"))
    (d / "badrows.csv").write_text(
        "stay_time,day_of_week,arrival_time,is_holiday,mesh_id\n10,Monday,25:10,False,1\n-30,Funday,08:00,False,2\n"
    )
    (d / "gps.csv").write_text("user_id,timestamp,lat,lon\nu1,2021-04-01T08:00:00,35.0,135.0\n")
    (d / "meshes_bad.csv").write_text(
        "user_id,stay_time,day_of_week,arrival_time,is_holiday,lat,lon\nu1,-30,Funday,25:10,False,35.0,135.0\n"
    )
    return d


def bad_invocations(d: Path) -> list[list[str]]:
    nowhere = str(d / "missing.csv")
    out = str(d / "out")
    return [
        ["train", nowhere, "--out", out, "--free"],
        ["train", str(d / "badrows.csv"), "--out", out, "--free", "--quiet"],
        ["train", str(d / "badrows.csv"), "--out", out, "--epochs", "0"],
        ["train", str(d / "binary.csv"), "--out", out, "--free", "--quiet"],
        ["evaluate"],
        ["evaluate", "--misalignment", nowhere, nowhere],
        ["make-anchors", nowhere, "--out", out],
        ["make-anchors", str(d / "badrows.csv"), "--out", out, "--n-anchors", "1"],
        ["cluster", "x.csv", "--k", "0"],
        ["cluster", nowhere, "--k", "5"],
        ["cluster", "--k", "5"],
        ["diff", nowhere, nowhere],
        ["diff", nowhere, nowhere, "--threshold", "-1"],
        ["similar", nowhere, "12"],
        ["similar", nowhere, "not-a-key"],
        ["similar", nowhere, "12", "--space", "cosine"],
        ["demo", "--scale", "huge"],
        ["export", nowhere, "--release", out, "--name", "x"],
        ["stays", str(d / "gps.csv"), "--out", str(d / "s.csv"), "--tz", "Mars/Base"],
        ["stays", nowhere, "--out", str(d / "s.csv")],
        ["stays", str(d / "gps.csv"), "--out", str(d / "s.csv"), "--distance", "-1"],
        ["meshes", str(d / "empty.csv"), "--out", str(d / "m.csv")],
        ["meshes", str(d / "binary.csv"), "--out", str(d / "m.csv")],
        ["meshes", str(d / "stays.csv.gz"), "--out", str(d / "m.csv")],
        ["meshes", str(d / "meshes_bad.csv"), "--out", str(d / "m.csv"), "--min-users", "-5"],
        ["add-dataset", nowhere, "--data", str(d / "data"), "--name", "../x", "--period", "2021-04"],
        ["add-dataset", nowhere, "--data", str(d / "data"), "--name", "ok", "--period", "2021-04", "--free"],
        ["vector", nowhere, "--out", str(d / "m.gpkg")],
        ["walkers", "train", nowhere, "--out", out],
        ["walkers", "evaluate", nowhere, nowhere],
        ["counts", nowhere, "--out", str(d / "c.parquet")],
        ["counts", str(d / "binary.csv"), "--out", str(d / "c.parquet")],
        ["stays", str(d / "gps.csv"), "--out", str(d / "s.csv"), "--engine", "spark"],
        ["regions", "transfer", "--source", nowhere, "--target", nowhere, "--method", "core"],
        ["regions", "transfer", "--source", nowhere, "--target", nowhere, "--method", "magic"],
        ["regions", "embed", "--city", nowhere, "--city", nowhere, "--method", "core", "--out", out],
        ["no-such-command"],
    ]


def test_every_command_is_covered(files):
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    covered = {argv[0] for argv in bad_invocations(files)}
    assert commands <= covered, f"commands without a bad-input case: {sorted(commands - covered)}"


@pytest.mark.parametrize("case", range(len(bad_invocations(Path("/x")))))
def test_bad_input_is_one_line_and_exit_2(files, case, capsys):
    argv = bad_invocations(files)[case]
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), (argv, err)
    assert "Traceback" not in err[0]


def test_the_real_entry_point_from_another_folder(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "core", "cluster", "x.csv", "--k", "0"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error:") and "number of clusters" in res.stderr
    assert "Traceback" not in res.stderr
