"""CoRE's pieces against their definitions, its training, and what its alignment can and cannot pin down."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.errors import InputError
from core.regions import model as m
from core.regions.config import CoreConfig
from core.regions.graph import RegionGraph, read_city
from core.regions.methods import fit_method, procrustes_map, rank_anchors
from tests.regions.synthetic import write_city

SMALL = CoreConfig(dim=32, heads=2, epochs=250, lr=0.01, n_anchors=200)


def naive_lma(zx: torch.Tensor, zy: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    def rel(z: torch.Tensor) -> torch.Tensor:
        r = F.normalize(F.normalize(anchors, dim=1) @ F.normalize(z, dim=1).T, dim=1)
        return F.normalize(r @ r.T, dim=1)

    return ((rel(zx) - rel(zy)) ** 2).mean()


def naive_lia(zx: torch.Tensor, zy: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    s = 1 / math.sqrt(zx.shape[1])
    xy, yx = (zx @ wq) @ (zy @ wk).T * s, (zy @ wq) @ (zx @ wk).T * s
    return ((zx @ zx.T - xy @ yx) ** 2).mean() + ((zy @ zy.T - yx @ xy) ** 2).mean()


def test_alignment_losses_equal_their_definitions() -> None:
    g = torch.Generator().manual_seed(0)
    zx, zy = torch.randn(50, 16, generator=g), torch.randn(40, 16, generator=g) * 2 + 1
    wq, wk, anchors = torch.randn(16, 16, generator=g), torch.randn(16, 16, generator=g), torch.randn(30, 16, generator=g)
    assert float(m.lma_loss(zx, zy, anchors)) == pytest.approx(float(naive_lma(zx, zy, anchors)), rel=1e-4)
    assert float(m.lia_loss(zx, zy, wq, wk)) == pytest.approx(float(naive_lia(zx, zy, wq, wk)), rel=1e-4)
    assert float(m.lma_loss(zx, zx, anchors)) == pytest.approx(0.0, abs=1e-7)


def test_gat_layer_equals_torch_geometric(tmp_path: Path) -> None:
    gatconv = pytest.importorskip("torch_geometric.nn").GATConv
    write_city(tmp_path / "c", "c", 80, seed=4)
    t = m._graph_tensors(read_city(tmp_path / "c"), 4)
    torch.manual_seed(0)
    layer_cls, _ = m._modules(16, 4)
    ours, conv = layer_cls(16, 16), gatconv(16, 16, heads=4, concat=False, edge_dim=1)
    with torch.no_grad():
        conv.lin.weight.copy_(ours.lin.weight)
        conv.lin_edge.weight.copy_(ours.lin_edge.weight)
        for name in ("att_src", "att_dst", "att_edge"):
            getattr(conv, name).copy_(getattr(ours, name)[None])
        conv.bias.copy_(torch.randn(16))
        ours.bias.copy_(conv.bias)
    x = torch.randn(80, 16, requires_grad=True)
    target = torch.randn(80, 16)
    keep = t["src"] != t["dst"]
    b = conv(x, torch.stack([t["src"][keep], t["dst"][keep]]), t["w"][keep][:, None])
    (b * target).sum().backward()
    grad_conv, x.grad = x.grad.clone(), None
    # Both ways of computing the attention's gradient (all pairs at once, or gathered per edge).
    att_grads = []
    for dense in (True, False):
        a = ours(x, {**t, "dense_backward": dense})
        (a * target).sum().backward()
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.allclose(x.grad, grad_conv, atol=1e-5)
        att_grads.append(ours.att_src.grad.clone())
        x.grad, ours.att_src.grad = None, None
    assert torch.allclose(att_grads[0], att_grads[1], atol=1e-5) and float(att_grads[0].abs().max()) > 1e-4


def test_reference_losses_equal_the_public_codes_definitions() -> None:
    """The ``reference`` loss form: the public code's normalisations, written here the naive way
    (N_a x N dot products, N x N attention matrices, row-wise squared distances)."""
    g = torch.Generator().manual_seed(2)
    zx, zy = torch.randn(50, 16, generator=g), torch.randn(40, 16, generator=g) * 2 + 1
    anchors = torch.randn(30, 16, generator=g)
    torch.manual_seed(3)
    wq, wk = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

    def rows_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a - b) ** 2).sum(1).mean()

    sx, sy = F.normalize(anchors @ zx.T, dim=1), F.normalize(anchors @ zy.T, dim=1)
    naive_lma_ref = rows_sq(1 - sx @ sx.T, 1 - sy @ sy.T)
    d = math.sqrt(16)
    qx, kx, qy, ky = wq(zx), wk(zx), wq(zy), wk(zy)
    xx, yy, xy, yx = qx @ kx.T / d, qy @ ky.T / d, qx @ ky.T / d, qy @ kx.T / d
    naive_lia_ref = rows_sq(xy @ yx, xx) + rows_sq(yx @ xy, yy)
    od = torch.softmax(torch.randn(50, 50, generator=g), 1)
    naive_re = -(od * torch.log_softmax(zx @ zx.T, 1)).sum()
    assert float(m.lma_loss_reference(zx, zy, anchors)) == pytest.approx(float(naive_lma_ref), rel=1e-4)
    assert float(m.lia_loss_reference(zx, zy, wq, wk).detach()) == pytest.approx(float(naive_lia_ref.detach()), rel=1e-4)
    rows = torch.ones(50, dtype=torch.bool)
    assert float(m.re_loss_summed(zx, od, rows)) == pytest.approx(float(naive_re), rel=1e-5)
    assert float(m.re_loss_summed(zx, od, rows)) == pytest.approx(50 * float(m.re_loss(zx, od, rows)), rel=1e-5)


def test_alignment_losses_cannot_see_a_flip_along_a_principal_axis() -> None:
    """LMA and LIA depend on each city's embeddings only through Gram matrices, so reflecting one city
    along a principal axis of its own embeddings changes no loss, yet moves its regions in the shared
    space: the objective leaves (at least) 2^d alignments equally good."""
    g = torch.Generator().manual_seed(1)
    zx, zy = torch.randn(60, 8, generator=g), torch.randn(70, 8, generator=g) @ torch.diag(torch.arange(1.0, 9.0))
    wq, wk, anchors = torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g), torch.randn(100, 8, generator=g)
    _, vectors = torch.linalg.eigh(zy.T @ zy)
    flip = torch.eye(8) - 2 * torch.outer(vectors[:, -1], vectors[:, -1])
    zy_flipped = zy @ flip
    assert float((zy_flipped - zy).abs().max()) > 1.0
    assert float(m.lia_loss(zx, zy_flipped, wq, wk)) == pytest.approx(float(m.lia_loss(zx, zy, wq, wk)), rel=1e-4)
    # LMA on unit-normalised rows: the Gram matrix of the normalised rows has its own axes.
    zn = F.normalize(zy, dim=1)
    _, vn = torch.linalg.eigh(zn.T @ zn)
    flip_n = torch.eye(8) - 2 * torch.outer(vn[:, 0], vn[:, 0])
    assert float(m.lma_loss(zx, zy @ flip_n, anchors)) == pytest.approx(float(m.lma_loss(zx, zy, anchors)), rel=1e-4)
    assert float(m.lma_loss(zx, zy @ torch.linalg.qr(torch.randn(8, 8, generator=g))[0], anchors)) != pytest.approx(
        float(m.lma_loss(zx, zy, anchors)), rel=1e-3
    )  # a generic rotation does change it


@pytest.fixture(scope="module")
def two_cities(tmp_path_factory: pytest.TempPathFactory) -> tuple[RegionGraph, RegionGraph, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("two")
    ta, tb = write_city(root / "a", "a", 120, seed=1), write_city(root / "b", "b", 160, seed=2)
    return read_city(root / "a"), read_city(root / "b"), ta, tb


def _type_accuracy(z_train: np.ndarray, t_train: np.ndarray, z_test: np.ndarray, t_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000).fit(z_train, t_train)
    return float((clf.predict(z_test) == t_test).mean())


def test_training_is_seeded_and_learns_planted_types(two_cities) -> None:
    a, b, ta, tb = two_cities
    model = m.CoRE(SMALL).fit([a, b])
    again = m.CoRE(SMALL).fit([a, b])
    assert np.array_equal(model.embeddings_[1], again.embeddings_[1])
    first, last = model.loss_history_[0], model.loss_history_[-1]
    assert last["re"] < first["re"] - 0.3
    # Within each city the embeddings separate the planted types (held-out halves).
    for z, t in zip(model.embeddings_, (ta, tb)):
        half = len(t) // 2
        assert _type_accuracy(z[:half], t[:half], z[half:], t[half:]) >= 0.8


def test_reference_form_trains_and_keeps_snapshots(two_cities) -> None:
    """The public code's loss form trains the same encoders; snapshots are the embeddings at those epochs."""
    a, b, ta, tb = two_cities
    cfg = CoreConfig(dim=32, heads=2, epochs=150, lr=0.01, n_anchors=200, losses="reference")
    model = m.CoRE(cfg).fit([a, b], snapshots=(1, 75, 150))
    assert sorted(model.snapshots_) == [1, 75, 150]
    assert np.array_equal(model.snapshots_[150][1], model.embeddings_[1])
    assert not np.allclose(model.snapshots_[1][0], model.snapshots_[150][0])
    first, last = model.loss_history_[0], model.loss_history_[-1]
    # Summed over the regions (about 1,400 at the start); these flows are near-uniform, so it falls ~7 %.
    assert first["re"] > 500 and last["re"] < 0.97 * first["re"]
    half = len(tb) // 2
    assert _type_accuracy(model.embeddings_[1][:half], tb[:half], model.embeddings_[1][half:], tb[half:]) >= 0.8


def test_individual_is_not_aligned(two_cities) -> None:
    """Each city alone: a classifier trained on city A's types is near chance on city B."""
    a, b, ta, tb = two_cities
    chance = np.bincount(tb).max() / len(tb)
    individual = fit_method([a, b], "individual", SMALL)
    assert _type_accuracy(individual[0], ta, individual[1], tb) < chance + 0.25


@pytest.mark.xfail(
    strict=True,
    reason="measured: CoRE reaches 0.0-0.57 here with the paper's losses and 0.0-0.54 with the public code's, "
    "not the issue's 0.8 (its alignment losses see second moments only; README, CoRE section)",
)
def test_core_transfers_planted_types(two_cities) -> None:
    """The issue's criterion: with CoRE, a classifier trained on city A's types predicts city B's."""
    a, b, ta, tb = two_cities
    core = fit_method([a, b], "core", SMALL)
    assert _type_accuracy(core[0], ta, core[1], tb) >= 0.8


def test_procrustes_recovers_a_known_rotation(two_cities) -> None:
    a, _, _, _ = two_cities
    rng = np.random.default_rng(0)
    z = rng.normal(size=(a.n, 6))
    rot = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    i_a, i_b = rank_anchors(a, a)
    assert np.array_equal(i_a, i_b)
    assert np.allclose(procrustes_map(z, z @ rot + 3.0, i_a, i_b), z, atol=1e-4)


def test_bad_inputs(two_cities) -> None:
    with pytest.raises(InputError, match="unknown method 'umap'"):
        fit_method([], "umap")
    with pytest.raises(InputError, match="at least one city"):
        m.CoRE().fit([])
    with pytest.raises(InputError, match="unknown loss form 'code'"):
        m.CoRE(CoreConfig(losses="code")).fit([two_cities[0]])
