from pathlib import Path

import numpy as np

from core.analysis.charts import cluster_patterns, stay_patterns, stay_weight_matrix
from core.analysis.clustering import cluster_areas, order_scores, order_weights

DATA = Path(__file__).resolve().parents[1] / "data"


def test_stay_weight_matrix_equals_official():
    official = np.load(DATA / "stay_weight_matrix.npy")
    assert np.array_equal(stay_weight_matrix(), official)


def test_long_stay_spreads_and_wraps_midnight():
    f = np.zeros((1, 168))
    f[0, 84 + 7 * 10 + 6] = 1.0  # holiday, arriving 20:00-21:59, > 12 h: 10 bins from bin 10
    chart = stay_patterns(f)[0]
    bins = np.flatnonzero(chart[1, :, 6])
    assert bins.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]
    assert np.allclose(chart[1, bins, 6], 5 / 7) and chart[0].sum() == 0


def test_order_score_by_hand():
    chart = np.zeros((2, 2, 12, 7))
    chart[0, 0, 3, 0] = 1.0  # weekday, bin 3, 15-min class: 1e-4 * 15 * 4 = 0.006
    chart[1, 1, 10, 6] = 2.0  # holiday, bin 10, 720-min class: 2e-4 * 720 * 11 = 1.584
    assert np.allclose(order_scores(chart), [0.006, 1.584])
    assert order_weights()[1, 11, 6] == 0.0  # bin 11 -> (11 + 1) mod 12 = 0


def test_clusters_are_ordered_weekday_short_first():
    rng = np.random.default_rng(0)
    decoder = np.zeros((168, 2))
    decoder[7 * 3 + 0, 0] = 6.0  # direction 0 -> weekday early short stays
    decoder[84 + 7 * 10 + 6, 1] = 6.0  # direction 1 -> holiday late long stays
    emb = np.vstack([rng.normal([0, 3], 0.05, (30, 2)), rng.normal([3, 0], 0.05, (30, 2))])
    labels = cluster_areas(emb, decoder, 2)
    assert (labels[:30] == 1).all() and (labels[30:] == 0).all()


def test_cluster_patterns_sum_and_mean():
    pats = np.ones((4, 2, 12, 7))
    labels = np.array([0, 0, 0, 1])
    s = cluster_patterns(pats, labels, 2, "sum")
    m = cluster_patterns(pats, labels, 2, "mean")
    assert s[0].max() == 3 and s[1].max() == 1 and m[0].max() == 1


def test_cluster_charts_equal_summed_mesh_charts():
    from core.analysis.charts import cluster_charts

    rng = np.random.default_rng(3)
    f = rng.dirichlet(np.ones(168), 50)
    labels = rng.integers(0, 4, 50)
    per_mesh = cluster_patterns(stay_patterns(f), labels, 4, "sum")
    assert np.allclose(cluster_charts(f, labels, 4, "sum"), per_mesh)
    assert np.allclose(cluster_charts(f, labels, 4, "mean"), cluster_patterns(stay_patterns(f), labels, 4, "mean"))
