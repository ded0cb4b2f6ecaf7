import numpy as np
import pytest

from core.analysis.similarity import distance_classes, distances, similar_across, top_k, within
from core.area2vec.metrics import approximation_loss, misalignment


def test_approximation_loss_by_hand():
    # E = 0 and W = 0 predict the uniform distribution; a one-hot histogram has
    # cos = (1/168) / (|1/168 * 1_168| * 1) = 1/sqrt(168).
    counts = np.zeros((2, 168))
    counts[0, 5] = 3
    counts[1, :] = 1  # uniform: cos = 1
    loss = approximation_loss(counts, np.zeros((2, 8)), np.zeros((168, 8)), per_area=True)
    assert np.allclose(loss, [1 - 1 / np.sqrt(168), 0.0])
    assert approximation_loss(counts, np.zeros((2, 8)), np.zeros((168, 8))) == pytest.approx((1 - 1 / np.sqrt(168)) / 2)


def test_misalignment_by_hand():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, 2.0]])
    assert misalignment(a, b) == pytest.approx((5 + np.sqrt(5)) / 2)
    assert misalignment(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]), "cosine") == pytest.approx(1.0)
    assert misalignment(b, 2 * b, "cosine") == pytest.approx(0.0, abs=1e-12)


def test_distance_classes_edges():
    d = np.array([0.0, 2.0, 2.01, 4.0, 8.0, 15.99, 16.0, 30.0])
    assert distance_classes(d, self_index=0).tolist() == [0, 1, 2, 2, 3, 4, 5, 5]


def test_top_k_within_and_across():
    emb = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [10.0, 0.0]])
    d = distances(emb, emb[0])
    assert np.allclose(d, [0, 1, 3, 10])
    assert top_k(d, 2, exclude=0).tolist() == [1, 2]
    assert within(d, 3.0).tolist() == [0, 1, 2]
    other = (np.array([100, 101]), np.array([[0.5, 0.0], [9.0, 9.0]]))
    m = similar_across(emb[0], {"a": (np.arange(4), emb), "b": other}, k=3, exclude=("a", 0))
    assert [(x.dataset, x.key) for x in m] == [("b", 100), ("a", 1), ("a", 2)]
    assert m[0].distance == pytest.approx(0.5)


def test_js_divergence_by_hand():
    from core.analysis.diff import js_divergence

    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert np.allclose(js_divergence(p, q), [np.log(2), 0.0])
    # p = (1, 0), q = (0.5, 0.5): m = (0.75, 0.25); KL(p|m) = ln(4/3), KL(q|m) = 0.5 ln(2/3) + 0.5 ln 2
    expected = 0.5 * np.log(4 / 3) + 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    assert js_divergence(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))[0] == pytest.approx(expected)
