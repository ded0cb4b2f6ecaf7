"""Area2Vec with a shared anchor set as a region method: cities built from stays, one space, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.area2vec.trainer import Area2VecTrainer, TrainConfig
from core.errors import InputError
from core.regions.config import CoreConfig
from core.regions.graph import RegionGraph, graph_from_stays, read_city
from core.regions.methods import anchor_set_from_graphs, fit_method
from tests.regions.synthetic import stay_city, write_city

FAST = TrainConfig(max_epochs=30, schedule_epochs=15, refine_rounds=0, newton_iters=10)


def _graph(n: int, seed: int) -> tuple[RegionGraph, np.ndarray]:
    stays, types = stay_city(n, seed)
    g = graph_from_stays(stays, 1000, name=f"city{seed}")
    return g, types.reindex(g.region_ids).to_numpy()


@pytest.fixture(scope="module")
def cities() -> tuple[tuple[RegionGraph, np.ndarray], tuple[RegionGraph, np.ndarray], object]:
    """Two cities of the same generator (120 and 160 meshes, 4 planted types) and an anchor set from a third."""
    a, b, third = _graph(120, 1), _graph(160, 2), _graph(160, 3)
    anchors = anchor_set_from_graphs([third[0]], n_anchors=12, records_per_anchor=200, config=FAST)
    return a, b, anchors


def _nn_agreement(z_from: np.ndarray, t_from: np.ndarray, z_to: np.ndarray, t_to: np.ndarray) -> float:
    """Share of the regions of ``z_to`` whose nearest region in ``z_from`` has the same planted type."""
    d = ((z_to[:, None, :] - z_from[None, :, :]) ** 2).sum(axis=-1)
    return float((t_from[d.argmin(axis=1)] == t_to).mean())


def test_graph_from_stays_carries_token_counts(cities) -> None:
    (ga, _), _, _ = cities
    assert ga.token_counts is not None and ga.token_counts.shape == (ga.n, 168)
    # Every stay is counted once, in its mesh: the token counts sum to the stays label per region.
    assert np.array_equal(ga.token_counts.sum(axis=1), ga.labels["stays"])
    back = RegionGraph.from_arrays(ga.name, ga.to_arrays())
    assert back.token_counts is not None and np.array_equal(back.token_counts, ga.token_counts)


def test_anchored_cities_share_one_space(cities) -> None:
    (ga, ta), (gb, tb), anchors = cities
    za, zb = fit_method([ga, gb], "area2vec", CoreConfig(seed=0), anchors=anchors, area2vec=FAST)
    assert za.shape == (ga.n, anchors.dim) and zb.shape == (gb.n, anchors.dim)
    assert np.isfinite(za).all() and not (zb == 0).all(axis=1).any()
    chance = float(np.max(np.bincount(tb) / len(tb)))
    anchored = _nn_agreement(za, ta, zb, tb)
    # Cities trained alone (free, other seeds) land in unrelated spaces: near chance.
    free_a = Area2VecTrainer(TrainConfig(**{**FAST.to_dict(), "seed": 1})).fit(ga.token_counts).embeddings
    free_b = Area2VecTrainer(TrainConfig(**{**FAST.to_dict(), "seed": 2})).fit(gb.token_counts).embeddings
    free = _nn_agreement(free_a, ta, free_b, tb)
    assert anchored >= 0.9 > chance + 0.5, (anchored, chance)
    assert free < 0.6, free
    # Seeded, and each city is trained on its own: city B alone with the same seed gives the same rows.
    (again,) = fit_method([gb], "area2vec", CoreConfig(seed=0), anchors=anchors, area2vec=FAST)
    assert np.array_equal(again, zb)


def test_area2vec_needs_stays_and_an_anchor_set(cities, tmp_path: Path) -> None:
    (ga, _), _, anchors = cities
    write_city(tmp_path / "xa", "xa", 40, seed=1)
    folder = read_city(tmp_path / "xa")
    with pytest.raises(InputError, match=r"xa.*no stays: the area2vec method.*LibCity folders .* carry flows only"):
        fit_method([ga, folder], "area2vec", anchors=anchors, area2vec=FAST)
    with pytest.raises(InputError, match="no anchor set"):
        fit_method([ga, ga], "area2vec", area2vec=FAST)
    with pytest.raises(InputError, match="anchor_df.csv"):
        fit_method([ga, ga], "area2vec", anchors=tmp_path / "nowhere", area2vec=FAST)


def test_cli_transfer_and_embed_with_area2vec(cities, tmp_path: Path, capsys) -> None:
    from core.cli import main

    (ga, _), _, anchors = cities
    paths = []
    for n, seed in ((50, 1), (60, 2)):
        stays, _ = stay_city(n, seed)
        paths.append(tmp_path / f"c{seed}.parquet")
        stays.to_parquet(paths[-1], index=False)
    anchors.save(tmp_path / "anchors")
    common = ["--method", "area2vec", "--anchors", str(tmp_path / "anchors"), "--epochs", "10", "--quiet"]
    out = tmp_path / "rows.json"
    argv = ["regions", "transfer", "--source", str(paths[0]), "--target", str(paths[1]), "--seeds", "2", "--out", str(out)]
    assert main([*argv, *common]) == 0
    rows = json.loads(out.read_text())
    assert {r["method"] for r in rows} == {"area2vec", "mean", "area"}
    assert {r["label"] for r in rows} == {"stays"} and {r["scale"] for r in rows} == {"sum", "density", "log"}
    ours = next(r for r in rows if r["method"] == "area2vec" and r["scale"] == "log")
    assert ours["runs"] == 2 and ours["mae"] > 0 and ours["mae_sd"] > 0  # two seeds, two trainings
    assert "anchor set:" in capsys.readouterr().out

    emb = tmp_path / "emb"
    assert main(["regions", "embed", "--city", str(paths[0]), "--city", str(paths[1]), "--out", str(emb), *common]) == 0
    first = np.loadtxt(emb / "c1.csv", delimiter=",", skiprows=1)
    assert first.shape == (50, 1 + anchors.dim)
    assert len(str(int(first[0, 0]))) == 8  # geo_id: the 1 km mesh code

    # A LibCity folder has no stays: the command says so (one line, exit status 2).
    write_city(tmp_path / "xa", "xa", 40, seed=1)
    argv = ["regions", "embed", "--city", str(tmp_path / "xa"), "--city", str(paths[1]), "--out", str(tmp_path / "e2")]
    assert main([*argv, *common]) == 2
    assert "error: xa: no stays: the area2vec method" in capsys.readouterr().err
