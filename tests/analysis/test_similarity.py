"""Similar areas by stay pattern: Hellinger distances by hand, the space's fallback, and the demo's districts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import knobs
from core.analysis.similarity import (
    hellinger,
    points,
    resolve_space,
    similar_across,
    space_distances,
    sqrt_patterns,
    top_k,
)
from core.errors import ParameterError


def test_hellinger_by_hand():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.25, 0.25, 0.5, 0.0])
    r = np.array([0.0, 0.0, 0.0, 1.0])
    d = hellinger(np.sqrt(np.vstack([p, q, r])), np.sqrt(p))
    # H(p, q) = sqrt(1 - (sqrt(.5 * .25) + sqrt(.5 * .25))) = sqrt(1 - 0.7071068) = 0.5411961
    assert d[1] == pytest.approx(0.5411961, abs=1e-6)
    assert d[2] == pytest.approx(1.0, abs=1e-6)  # no token in common
    assert d[0] == pytest.approx(0.0, abs=1e-3)  # the same pattern (float32 rounding near 0)
    # the same as the Euclidean distance of the square roots over sqrt 2
    assert d[1] == pytest.approx(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2), abs=1e-6)
    assert space_distances(np.sqrt(np.vstack([q, r])), np.sqrt(p), "pattern") == pytest.approx([0.5411961, 1.0], abs=1e-6)


def test_sqrt_patterns_are_square_roots_of_the_predicted_distributions():
    # One dimension, e = 1: token 0's logit is ln 3, the 167 others 0 -> p0 = 3 / 170, the rest 1 / 170.
    decoder = np.zeros((168, 1), np.float32)
    decoder[0, 0] = np.log(3.0)
    pat = sqrt_patterns(np.array([[1.0], [0.0]], np.float32), decoder, chunk=1)
    assert pat.dtype == np.float32 and pat.shape == (2, 168)
    assert pat[0, 0] == pytest.approx(np.sqrt(3 / 170), rel=1e-5)
    assert pat[0, 1:] == pytest.approx(np.full(167, np.sqrt(1 / 170)), rel=1e-5)
    assert pat[1] == pytest.approx(np.full(168, np.sqrt(1 / 168)), rel=1e-5)  # e = 0: uniform
    # H between them: 1 - BC, BC = sqrt(3/170 / 168) + 167 sqrt(1/170 / 168)
    bc = np.sqrt(3 / 170 / 168) + 167 * np.sqrt(1 / 170 / 168)
    assert hellinger(pat, pat[1])[0] == pytest.approx(np.sqrt(1 - bc), abs=2e-4)
    assert np.linalg.norm(pat.astype(np.float64), axis=1) == pytest.approx([1.0, 1.0], abs=1e-6)


def test_the_space_falls_back_to_embedding_without_a_decoder():
    dec = np.ones((168, 2))
    assert knobs.SIMILARITY_SPACE.default == "pattern"
    assert resolve_space("pattern", [dec, dec]) == "pattern"
    assert resolve_space("pattern", [dec, None]) == "embedding"
    assert resolve_space("pattern", [dec, np.zeros((168, 2))]) == "embedding"  # an embeddings CSV's empty decoder
    assert resolve_space("embedding", [dec]) == "embedding"
    with pytest.raises(ParameterError, match="unknown similarity space 'cosine'"):
        resolve_space("cosine", [dec])
    with pytest.raises(ParameterError, match="needs the dataset's decoder"):
        points(np.zeros((3, 2)), None, "pattern")
    assert points(np.ones((3, 2)), None, "embedding").dtype == np.float32


def test_similar_across_ranks_by_hellinger_in_pattern_space():
    # Three meshes in dataset b: the same pattern as the query, half of it, and a disjoint one.
    query = np.sqrt(np.array([0.5, 0.5, 0.0, 0.0]))
    b = np.sqrt(np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0]]))
    found = similar_across(query, {"b": (np.array([10, 11, 12]), b)}, k=3, space="pattern")
    assert [m.key for m in found] == [12, 11, 10]
    assert [m.distance for m in found] == pytest.approx([0.0, 0.5411961, 1.0], abs=1e-3)  # float32 rounding near 0


# ------------------------------------------------------------------ the demo's districts

QUERY, OTHER = "osaka_2021_04", "nagoya_2019_04"


@pytest.fixture(scope="module")
def demo_sets(tmp_path_factory):
    """Tiny demo: Osaka 2021-04 and Nagoya 2019-04 (anchored, the demo's seed); own meshes with their true district."""
    from core.release.layout import discover, read_dataset
    from core.simulation.demo import build_demo

    data = tmp_path_factory.mktemp("similar-demo")
    build_demo(data, scale="tiny", only=(QUERY, OTHER))
    truth = pd.read_parquet(data / "demo" / "truth" / "meshes.parquet")
    out = {}
    for ref in discover(data):
        ds = read_dataset(ref)
        own = ~ds.complemented
        t = truth[truth["dataset"] == ref.name].set_index("code")["district"].reindex(ds.codes[own]).fillna("unknown")
        out[ref.name] = (sqrt_patterns(ds.vectors[own], ds.decoder), t.to_numpy(dtype=object))
    return out


def _precision_at_10(demo_sets, target: str, min_type: int) -> tuple[float, float, int]:
    """Mean share of the 10 pattern-nearest meshes in ``target`` of the query's district (20 seeded Osaka
    queries per type that ``target`` holds at least ``min_type`` meshes of), and the chance share."""
    qp, qt = demo_sets[QUERY]
    tp, tt = demo_sets[target]
    rng = np.random.default_rng(0)
    kinds = [k for k in sorted(set(qt)) if k != "unknown" and (tt == k).sum() >= min_type]
    pick = np.concatenate([rng.choice(np.flatnonzero(qt == k), min(20, int((qt == k).sum())), replace=False) for k in kinds])
    prec, chance = [], []
    for i in pick:
        idx = top_k(hellinger(tp, qp[i]), 10, exclude=int(i) if target == QUERY else None)
        prec.append(np.mean(tt[idx] == qt[i]))
        chance.append(np.mean(tt == qt[i]))
    return float(np.mean(prec)), float(np.mean(chance)), len(pick)


def test_pattern_matches_share_the_query_district_within_a_city(demo_sets):
    # Measured 0.97 (120 queries, 6 types); by chance 0.17.
    prec, chance, n = _precision_at_10(demo_sets, QUERY, 10)
    assert n >= 100 and chance < 0.3
    assert prec >= 0.85, prec


def test_pattern_matches_share_the_query_district_in_another_city(demo_sets):
    # Osaka queries of the types Nagoya holds (>= 10 meshes: business, nightlife, residential, shopping):
    # measured 0.96 (80 queries); by chance 0.25.
    prec, chance, n = _precision_at_10(demo_sets, OTHER, 10)
    assert n >= 60 and chance < 0.4
    assert prec >= 0.85, prec
