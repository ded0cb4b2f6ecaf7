"""`python -m core walkers ...`: the HuMob generator, train -> embed -> evaluate, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.cli import main

SMALL = ["--steps", "15", "--d-model", "16", "--n-heads", "2", "--n-layers", "1", "--context", "24", "--batch-size", "16"]


@pytest.fixture(scope="module")
def humob_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("humob") / "city.csv.gz"
    assert main(["walkers", "humob", "--out", str(out), "--people", "60", "--days", "20", "--seed", "1"]) == 0
    return out


def test_generator_writes_the_format_with_masks(humob_file):
    df = pd.read_csv(humob_file)
    assert list(df.columns) == ["uid", "d", "t", "x", "y"]
    assert df["d"].between(0, 19).all() and df["t"].between(0, 47).all()
    masked = df["x"] == 999
    assert (df.loc[masked, "y"] == 999).all()
    assert df.loc[~masked, ["x", "y"]].stack().between(1, 200).all()
    # The last 20 % of people (uid 48..59) lose their final 15 days, nobody else.
    assert set(df.loc[masked, "uid"]) <= set(range(48, 60)) and masked.any()
    assert (df.loc[masked, "d"] >= 5).all()
    people = pd.read_csv(humob_file.with_name("city_people.csv"))
    assert len(people) == 60 and {"commuter", "role", "home_x"} <= set(people.columns)


def test_train_embed_evaluate(humob_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["walkers", "train", str(humob_file), "--out", str(run), "--quiet", *SMALL]) == 0
    assert "held out" in capsys.readouterr().out
    users = pd.read_csv(run / "users.csv")
    df = pd.read_csv(humob_file)
    usable = np.unique(df.loc[df["x"] != 999, "uid"])
    assert users["uid"].tolist() == usable.tolist()
    assert list(users.columns) == ["uid"] + [f"e{i}" for i in range(16)]
    regions = pd.read_csv(run / "regions.csv")
    assert list(regions.columns[:2]) == ["key", "n_visitors"]
    cells = df.loc[df["x"] != 999]
    assert len(regions) == len(cells.drop_duplicates(["x", "y"]))
    assert regions["n_visitors"].sum() == len(cells.drop_duplicates(["uid", "x", "y"]))
    people = pd.read_csv(run / "people.csv")
    assert {"uid", "activity", "commuter", "role", "held_out"} <= set(people.columns)
    assert people["held_out"].sum() == round(0.25 * len(usable))

    emb = tmp_path / "emb"
    assert main(["walkers", "embed", str(run), str(humob_file), "--out", str(emb), "--pool", "mean"]) == 0
    again = pd.read_csv(emb / "users.csv")
    np.testing.assert_allclose(again.iloc[:, 1:].to_numpy(), users.iloc[:, 1:].to_numpy(), atol=1e-5)

    capsys.readouterr()
    assert main(["walkers", "evaluate", str(run), str(humob_file), "--no-save", "--max-anchors", "500"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["held_out_people"] == people["held_out"].sum()
    nl = report["next_location"]["60min"]
    assert nl["n"] > 0 and nl["stay_put_mean_km"] >= 0
    assert "commuters" in report or people["commuter"].nunique() < 2


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    no_user = tmp_path / "no_user.csv"
    pd.DataFrame({"lat": [35.0, 35.1], "lon": [139.0, 139.1], "date": ["2021-04-01"] * 2}).to_csv(no_user, index=False)
    masked = tmp_path / "masked.csv"
    pd.DataFrame({"uid": [1, 2], "d": [0, 0], "t": [1, 2], "x": [999, 999], "y": [999, 999]}).to_csv(masked, index=False)
    one = tmp_path / "one.csv"
    pd.DataFrame({"uid": [1, 1], "d": [0, 0], "t": [1, 2], "x": [3, 4], "y": [3, 4]}).to_csv(one, index=False)
    for path, text in ((no_user, "no user column"), (masked, "records are masked"), (one, "only one person")):
        assert main(["walkers", "train", str(path), "--out", str(tmp_path / "out"), "--quiet", *SMALL]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and text in err and "Traceback" not in err
    assert main(["walkers", "embed", str(tmp_path / "nowhere"), str(one), "--out", str(tmp_path / "e")]) == 2
    assert "walker.pth" in capsys.readouterr().err


def test_help_is_true(capsys):
    for cmd in (["walkers"], ["walkers", "train"], ["walkers", "embed"], ["walkers", "evaluate"], ["walkers", "humob"]):
        assert main([*cmd, "--help"]) == 0  # main() returns argparse's exit status
    out = capsys.readouterr().out
    assert "users.csv" in out and "--objective {regress,median,classify}" in out and "(default 1500)" in out
