import json

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.simulation.synthetic import synthetic_city


@pytest.fixture(scope="module")
def stays_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    df = synthetic_city(200, 80, seed=7).stays
    p = d / "stays.parquet"
    df.to_parquet(p)
    return p


def test_train_writes_embeddings_model_metrics(stays_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(stays_file), "--out", str(out), "--free", "--quiet", "--seed", "1"]) == 0
    emb = pd.read_csv(out / "embeddings.csv")
    assert list(emb.columns) == ["mesh_id"] + [f"e{i}" for i in range(8)]
    assert emb["mesh_id"].tolist() == list(range(200))
    m = json.loads((out / "metrics.json").read_text())
    for key in ("approximation_loss", "epochs", "seconds", "n_meshes", "n_stays"):
        assert key in m
    assert m["n_meshes"] == 200 and 0 < m["approximation_loss"] < 0.5
    import torch

    state = torch.load(out / "model.pth", weights_only=True)
    assert set(state) == {"embedding.weight", "decode_linear.weight"}
    assert tuple(state["embedding.weight"].shape) == (200, 8)
    assert np.allclose(state["embedding.weight"].numpy(), emb.iloc[:, 1:].to_numpy(), atol=1e-5)
    # evaluate reads it back and finds the same ApproximationLoss
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--stays", str(stays_file)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["approximation_loss"] == pytest.approx(m["approximation_loss"], rel=1e-4)


def test_train_anchored_then_similar_and_cluster(stays_file, small_anchor_set, tmp_path, capsys):
    small_anchor_set.save(tmp_path / "anchors")
    out = tmp_path / "a"
    assert main(["train", str(stays_file), "--out", str(out), "--anchors", str(tmp_path / "anchors"), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["n_anchors"] == 64
    capsys.readouterr()
    assert main(["similar", str(out), "5", "--top", "3"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["matches"]) == 3 and all(m["key"] != 5 for m in res["matches"])
    d = [m["distance"] for m in res["matches"]]
    assert d == sorted(d)
    # By stay pattern (the default): Hellinger distances, 0 to 1; by embedding when asked, or without a model file.
    assert res["space"] == "pattern" and all(0 <= x <= 1 for x in d)
    assert main(["similar", str(out), "5", "--top", "3", "--space", "embedding"]) == 0
    assert json.loads(capsys.readouterr().out)["space"] == "embedding"
    assert main(["similar", str(out / "embeddings.csv"), "5", "--top", "3", "--percent", "5"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["space"] == "embedding" and "no model file" in captured.err
    assert main(["cluster", str(out), "--k", "5", "--out", str(tmp_path / "labels.csv")]) == 0
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert sorted(labels["cluster"].unique()) == [0, 1, 2, 3, 4]


def test_output_folder_not_writable(stays_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["train", str(stays_file), "--out", str(blocker / "sub"), "--free", "--quiet"])
    assert rc == 2
    assert "output folder" in capsys.readouterr().err and "cannot be created" in capsys.readouterr().err + "cannot be created"
    assert blocker.read_text() == "x"


def test_bad_input_exits_with_message(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("stay_time,day_of_week,arrival_time,is_holiday,mesh_id\n5,Monday,25:10,False,1\n")
    out = tmp_path / "o"
    assert main(["train", str(p), "--out", str(out), "--free", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv column 'arrival_time'" in err and "row 1 ('25:10')" in err
    assert not out.exists()  # nothing written, not even an empty folder


def test_export_writes_a_release(tmp_path, capsys):
    from core.geo.meshcode import latlon_to_code
    from core.release.layout import discover, read_dataset

    df = synthetic_city(60, 80, seed=2).stays
    rng = np.random.default_rng(0)
    codes = latlon_to_code(35.15 + rng.random(60) * 0.01, 136.9 + rng.random(60) * 0.01, 50)
    codes = np.unique(codes)[:40]
    df = df[df["mesh_id"] < len(codes)].copy()
    df["code"] = codes[df["mesh_id"].to_numpy()]
    df = df.drop(columns=["mesh_id"])
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    assert main(["train", str(p), "--out", str(tmp_path / "m"), "--free", "--quiet"]) == 0
    assert main(["export", str(tmp_path / "m"), "--release", str(tmp_path / "data" / "mine"), "--name", "nagoya_2021_04"]) == 0
    ref = discover(tmp_path / "data")[0]
    ds = read_dataset(ref)
    assert np.array_equal(np.sort(ds.codes), np.sort(codes)) and set(ds.labels) == {5, 10, 20}
    assert (ds.mesh_sizes == 50).all()
