"""Transfer evaluation: metrics, baselines, scales, the explore helpers, and the CLI's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import InputError
from core.regions.evaluate import evaluate_embeddings, scaled_label, scores
from core.regions.explore import joint_projection, nearest_regions, predicted_vs_true
from core.regions.graph import read_city
from tests.regions.synthetic import write_city


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("cities")
    ta = write_city(root / "a", "a", 90, seed=1)
    tb = write_city(root / "b", "b", 110, seed=2)
    return root / "a", root / "b", ta, tb


def test_scores_known_values() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    s = scores(y, np.array([2.0, 2.0, 4.0, 4.0]))
    assert s["mae"] == pytest.approx(1.25)
    assert s["rmse"] == pytest.approx(np.sqrt(17 / 4))
    assert s["mape"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert s["r2"] == pytest.approx(1 - 17 / np.sum((y - 3.75) ** 2))
    assert np.isnan(scores(y, np.full(4, 3.0))["spearman"])  # a constant has no ranking


def test_baselines_and_scales(cities) -> None:
    a_dir, b_dir, ta, tb = cities
    a, b = read_city(a_dir), read_city(b_dir)
    assert np.allclose(scaled_label(b, "gdp", "density") * b.area_km2, b.labels["gdp"])
    assert np.allclose(scaled_label(b, "gdp", "log"), np.log1p(b.labels["gdp"]))
    # Embeddings that are the one-hot planted types (a perfect "alignment"): they carry the density,
    # the area baseline carries the size; each wins where it should.
    onehot_a, onehot_b = np.eye(4)[ta], np.eye(4)[tb]
    rows = evaluate_embeddings(a, b, [(onehot_a, onehot_b)], "types", ["gdp"], scales=("sum", "density"))
    get = {(r["method"], r["scale"]): r for r in rows}
    assert get[("types", "density")]["spearman"] > 0.7
    assert get[("types", "density")]["mae"] < 0.6 * get[("mean", "density")]["mae"]
    assert get[("area", "sum")]["spearman"] > get[("area", "density")]["spearman"] + 0.3
    assert np.isnan(get[("mean", "sum")]["spearman"])
    with pytest.raises(InputError, match="embeddings of 90 and 10 regions"):
        evaluate_embeddings(a, b, [(onehot_a, onehot_b[:10])], "bad", ["gdp"])


def test_explore_helpers(cities) -> None:
    a_dir, b_dir, ta, tb = cities
    a, b = read_city(a_dir), read_city(b_dir)
    rng = np.random.default_rng(0)
    za, zb = np.eye(4)[ta] + 0.01 * rng.normal(size=(a.n, 4)), np.eye(4)[tb] + 0.01 * rng.normal(size=(b.n, 4))
    proj = joint_projection({"a": za, "b": zb})
    assert list(proj["city"].value_counts().sort_index()) == [a.n, b.n]
    near = nearest_regions(za, 0, zb, k=5)
    assert (tb[near["region"]] == ta[0]).all() and near["similarity"].is_monotonic_decreasing
    table = predicted_vs_true(a, b, za, zb, "gdp", "density")
    assert np.allclose(table["error"], table["predicted"] - table["true"])
    assert len(table) == b.n and (table["predicted"] >= 0).all()
    with pytest.raises(InputError, match="out of range"):
        nearest_regions(za, a.n, zb)


def test_cli_transfer_and_embed(cities, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_dir, b_dir, _, _ = cities
    out = tmp_path / "result.json"
    args = ["regions", "transfer", "--source", str(a_dir), "--target", str(b_dir), "--method", "individual", "--seeds", "2"]
    assert main([*args, "--labels", "gdp", "--epochs", "5", "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    assert {(r["method"], r["scale"]) for r in rows} == {
        (m, s) for m in ("individual", "mean", "area") for s in ("sum", "density", "log")
    }
    assert all({"mae", "rmse", "mape", "spearman", "r2", "mae_sd"} <= set(r) for r in rows)
    assert [r["runs"] for r in rows if r["method"] == "individual"] == [2, 2, 2]
    assert (
        main(
            [
                "regions",
                "embed",
                "--city",
                str(a_dir),
                "--city",
                str(b_dir),
                "--out",
                str(tmp_path / "emb"),
                "--epochs",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    head = (tmp_path / "emb" / "b.csv").read_text().splitlines()
    assert head[0].startswith("geo_id,e0,e1") and len(head) == 111
    capsys.readouterr()
    assert main([*args, "--labels", "rent", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no file for label 'rent'" in err
