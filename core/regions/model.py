"""CoRE (Cross-city Region Embedding, ICML 2025) from its paper: one-stage embedding and alignment.

Per city, a 2-layer graph attention encoder (learned node inputs ``E``, ``d`` = 128, 8 heads averaged,
the flow as edge feature, PReLU between the layers) maps the mobility graph to region embeddings
``Z``. The loss of a pair of cities X, Y is ``RE_X + RE_Y + alpha LMA + beta LIA``:

- **RE** (intra-city): cross-entropy of ``softmax(Z Z^T)`` (row-wise) against the row-normalised OD
  matrix, averaged over the regions that have outflows (paper eq. 3-4).
- **LMA** (latent manifold alignment, eq. 5-9): ``N_a`` random virtual anchors ``A`` (the same for
  every city, drawn afresh each step from the seeded generator); ``A_rel = norm(cos(A, Z))``
  (``N_a x N``), ``Â = norm(A_rel A_rel^T)`` (``N_a x N_a``: the same coordinate system for every city);
  the loss is the mean squared difference of the cities' ``Â``.
- **LIA** (latent individual alignment, eq. 10-12): ``Cor = Z Z^T`` per city (gradient flows through
  it too), a cross-attention shared by the cities (``Q = Z W_q``, ``K = Z W_k``,
  ``Attn^{X->Y} = Q^X K^Y^T / sqrt(d)``) and the cycle ``Attn^{X->Y} Attn^{Y->X}`` compared with
  ``Cor^{X->X}`` (mean squared error), both ways.

``CoreConfig.losses = "reference"`` computes the three losses with the normalisations of the
authors' public code instead (their weights relative to each other differ by orders of magnitude):
RE summed over the regions, not averaged; LMA from dot products ``norm_rows(A Z^T)`` (no cosine, no
second normalisation), squared distances summed over an anchor's row and averaged over the anchors;
LIA compares each city's cycle with its own attention ``Q K^T / sqrt(d)`` (not ``Z Z^T``), ``Q`` and
``K`` are linear layers with biases, summed over a row and averaged over the regions; one PReLU is
shared by the cities' encoders.

With more than two cities the alignment losses are summed over every pair. ``alpha = beta = 0``
trains every city alone ("Individual").

The GAT is written over the edge list in plain torch (scatter softmax): the mobility graphs are
sparse (about 7 edges per region), so this is a few milliseconds a layer; torch-geometric's GATConv
computes the same layer (the benchmark compares the two).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import CoreError, InputError
from core.progress import Progress
from core.regions.config import LOSS_FORMS, CoreConfig
from core.regions.graph import RegionGraph

_DENSE_MAX_PAIRS = 1 << 26  # heads x n x n floats of the dense attention gradient (256 MB) at most
_DENSE_EDGE_SHARE = 16  # ... and only where the edges are at least 1/16 of all pairs
_EDGE_CHUNK = 16_384  # edges per gathered block in the sparse attention gradient


def _graph_tensors(graph: RegionGraph, heads: int) -> dict[str, Any]:
    """Edge list with self loops (GATConv's convention), its sparse layouts, and the OD target.

    Edges are unique and sorted by (destination, source), so that the ``(heads n) x n`` attention
    matrix with rows ``h n + dst`` is in CSR order without a sort at every step.
    """
    import torch

    od = graph.od_matrix()
    n = graph.n
    dst, src = np.nonzero(od.T)  # sorted by destination, then source
    w = od[src, dst]
    keep = src != dst
    src, dst, w = src[keep], dst[keep], w[keep]
    # A self loop per region whose edge feature is the mean feature of the region's incoming edges.
    count = np.bincount(dst, minlength=n)
    loop_w = np.divide(np.bincount(dst, weights=w, minlength=n), count, out=np.zeros(n), where=count > 0)
    src, dst, w = np.concatenate([src, np.arange(n)]), np.concatenate([dst, np.arange(n)]), np.concatenate([w, loop_w])
    order = np.lexsort((src, dst))
    src, dst, w = src[order], dst[order], w[order]
    # CSR of the stacked per-head matrices (values head-major) and of its transpose.
    row = (np.arange(heads)[:, None] * n + dst[None, :]).ravel()
    col = np.tile(src, heads)
    crow = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=heads * n))])
    perm_t = np.lexsort((row, col))
    crow_t = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=n))])

    def long(a: np.ndarray) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long)

    return {
        "src": long(src),
        "dst": long(dst),
        "w": torch.as_tensor(w, dtype=torch.float32),
        "csr": (long(crow), long(col), long(perm_t), long(crow_t), long(row[perm_t])),
        "od": torch.as_tensor(od, dtype=torch.float32),
        "rows": torch.as_tensor(od.sum(axis=1) > 0),
        # Attention gradients from all n x n pairs at once where that is cheap and edges are many.
        "dense_backward": heads * n * n <= _DENSE_MAX_PAIRS and len(src) * _DENSE_EDGE_SHARE >= n * n,
    }


def _modules(dim: int, heads: int) -> Any:
    """Build the torch modules (torch imported here, not at module import)."""
    import torch
    from torch import nn

    class Aggregate(torch.autograd.Function):
        """``out[h] = A_h x`` with ``A_h[dst, src] = alpha[:, h]`` (sparse CSR), and a sparse backward.

        torch's own backward of a sparse product forms the dense ``(H n) x n`` gradient of the sparse
        matrix (a 1.7 GFLOP product here); the gradient is needed at the edges only.
        """

        @staticmethod
        def forward(ctx: Any, alpha: torch.Tensor, x: torch.Tensor, g: dict[str, Any]) -> torch.Tensor:
            n, h = x.shape[0], alpha.shape[1]
            crow, col, perm_t, crow_t, col_t = g["csr"]
            values = alpha.T.reshape(-1)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is tested
                warnings.simplefilter("ignore", UserWarning)
                mat = torch.sparse_csr_tensor(crow, col, values, (h * n, n))
            ctx.save_for_backward(x, values)
            ctx.g = g
            return torch.sparse.mm(mat, x).view(h, n, -1)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> Any:
            x, values = ctx.saved_tensors
            g = ctx.g
            src, dst = g["src"], g["dst"]
            _, _, perm_t, crow_t, col_t = g["csr"]
            h, n, d = grad.shape
            g_alpha = _edge_dots(grad, x, src, dst, g["dense_backward"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                mat_t = torch.sparse_csr_tensor(crow_t, col_t, values[perm_t], (n, h * n))
            g_x = torch.sparse.mm(mat_t, grad.reshape(h * n, d))
            return g_alpha, g_x, None

    def _edge_dots(grad: torch.Tensor, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, dense: bool) -> torch.Tensor:
        """``out[e, h] = grad[h, dst_e] . x[src_e]``: the gradient of the attention at each edge.

        Dense graphs (Tokyo's 250 m meshes: 18 % of all pairs) take every pair's product with one
        batched matrix product and read the edges off it; sparse ones gather per edge, in chunks,
        so that no ``E x H x d`` array is formed (it was 0.7 GB and 70 % of an epoch there).
        """
        if dense:
            return torch.bmm(grad, x.T.unsqueeze(0).expand(grad.shape[0], -1, -1))[:, dst, src].T
        by_node = grad.permute(1, 0, 2)  # n x H x d
        out = torch.empty(src.shape[0], grad.shape[0], dtype=grad.dtype)
        for lo in range(0, src.shape[0], _EDGE_CHUNK):
            hi = lo + _EDGE_CHUNK
            out[lo:hi] = torch.bmm(by_node[dst[lo:hi]], x[src[lo:hi]].unsqueeze(2)).squeeze(2)
        return out

    def _aggregate(alpha: torch.Tensor, x: torch.Tensor, g: dict[str, Any]) -> torch.Tensor:
        out: torch.Tensor = Aggregate.apply(alpha, x, g)
        return out

    class GATLayer(nn.Module):
        """One GAT layer (heads averaged, edge feature in the attention score), over an edge list."""

        def __init__(self, d_in: int, d_out: int) -> None:
            super().__init__()
            self.heads, self.d_out = heads, d_out
            self.lin = nn.Linear(d_in, heads * d_out, bias=False)
            self.lin_edge = nn.Linear(1, heads * d_out, bias=False)
            self.att_src = nn.Parameter(torch.empty(heads, d_out))
            self.att_dst = nn.Parameter(torch.empty(heads, d_out))
            self.att_edge = nn.Parameter(torch.empty(heads, d_out))
            self.bias = nn.Parameter(torch.zeros(d_out))
            for p in (self.lin.weight, self.lin_edge.weight, self.att_src, self.att_dst, self.att_edge):
                nn.init.xavier_uniform_(p)

        def forward(self, x: torch.Tensor, g: dict[str, Any]) -> torch.Tensor:
            src, dst, w = g["src"], g["dst"], g["w"]
            n, d_in = x.shape
            weight = self.lin.weight.view(self.heads, self.d_out, d_in)
            # Per head, x W_h . a_h = x (W_h^T a_h): the scores need no per-edge feature vectors.
            a_src = x @ torch.einsum("hoi,ho->ih", weight, self.att_src)
            a_dst = x @ torch.einsum("hoi,ho->ih", weight, self.att_dst)
            # lin_edge(w) . att_edge = w * (W_e . att_edge): one number per head.
            c_edge = (self.lin_edge.weight.view(self.heads, self.d_out) * self.att_edge).sum(-1)
            score = nn.functional.leaky_relu(a_src[src] + a_dst[dst] + w[:, None] * c_edge, 0.2)  # E x H
            top = torch.full((n, self.heads), -torch.inf).scatter_reduce(0, dst[:, None].expand_as(score), score, "amax")
            ex = torch.exp(score - top[dst].detach())
            denom = torch.zeros(n, self.heads).index_add_(0, dst, ex)
            alpha = ex / denom[dst]
            # mean_h sum_j alpha_ijh x_j W_h^T = [A_1 x, ..., A_H x] [W_1; ...; W_H]^T / H: aggregate the
            # d_in-dim inputs with one sparse (H n x n) product, then project once.
            mixed = _aggregate(alpha, x, g).permute(1, 0, 2).reshape(n, self.heads * d_in)
            proj = weight.permute(0, 2, 1).reshape(self.heads * d_in, self.d_out)
            return mixed @ proj / self.heads + self.bias

    class Encoder(nn.Module):
        """Learned node inputs -> GAT -> PReLU -> GAT."""

        def __init__(self, n: int, act: nn.Module | None = None) -> None:
            super().__init__()
            self.inputs = nn.Embedding(n, dim)
            self.gat1, self.gat2 = GATLayer(dim, dim), GATLayer(dim, dim)
            self.act = act if act is not None else nn.PReLU()

        def forward(self, g: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.gat2(self.act(self.gat1(self.inputs.weight, g)), g)

    return GATLayer, Encoder


def re_loss(z: Any, od: Any, rows: Any) -> Any:
    """Intra-city loss: cross-entropy of ``softmax(Z Z^T)`` against the OD rows that have flows."""
    zr = z[rows]
    return -(od[rows] * torch_log_softmax(zr @ z.T)).sum() / zr.shape[0]


def torch_log_softmax(x: Any) -> Any:
    """Row-wise log-softmax."""
    import torch

    return torch.log_softmax(x, dim=1)


def relative_anchors(z: Any, anchors: Any) -> Any:
    """``Â``: the anchors' relative representations w.r.t. the regions, then w.r.t. each other.

    ``A_rel = norm(Â_n Z_n^T)`` is ``N_a x N``; ``A_rel A_rel^T = D^-1 A_n (Z_n^T Z_n) A_n^T D^-1`` with
    ``D`` the row norms of ``A_n Z_n^T``, computed through the ``d x d`` Gram matrix (exact, and
    ``N / d`` times cheaper than forming ``A_rel``).
    """
    import torch.nn.functional as F

    a, zn = F.normalize(anchors, dim=1), F.normalize(z, dim=1)
    ag = a @ (zn.T @ zn)  # N_a x d
    norms = (ag * a).sum(1).clamp(min=1e-12).sqrt()
    gram = (ag @ a.T) / norms[:, None] / norms[None, :]  # N_a x N_a: cosines of the A_rel rows
    return F.normalize(gram, dim=1)


def lma_loss(z_x: Any, z_y: Any, anchors: Any) -> Any:
    """Latent manifold alignment: mean squared difference of the two cities' ``Â``."""
    return ((relative_anchors(z_x, anchors) - relative_anchors(z_y, anchors)) ** 2).mean()


def _cycle_error(z: Any, c: Any, k: Any) -> Any:
    """``||Z Z^T - C K^T||_F^2`` through ``d x d`` Gram matrices (never forming an ``N x N`` matrix)."""
    zz = z.T @ z
    return (zz * zz).sum() - 2 * ((z.T @ c) * (z.T @ k)).sum() + ((c.T @ c) * (k.T @ k)).sum()


def lia_loss(z_x: Any, z_y: Any, w_q: Any, w_k: Any) -> Any:
    """Latent individual alignment: the cross-attention cycle reconstructs each city's ``Z Z^T``.

    ``Attn^{X->Y} Attn^{Y->X} = Q^X (K^Y^T Q^Y) K^X^T / d``: the cycle is formed through a ``d x d``
    matrix, and the squared error through Gram matrices. The gradient flows through both sides
    (the paper does not stop it at ``Cor``).
    """
    d = z_x.shape[1]
    q_x, k_x, q_y, k_y = z_x @ w_q, z_x @ w_k, z_y @ w_q, z_y @ w_k
    err_x = _cycle_error(z_x, q_x @ (k_y.T @ q_y) / d, k_x)
    err_y = _cycle_error(z_y, q_y @ (k_x.T @ q_x) / d, k_y)
    return err_x / z_x.shape[0] ** 2 + err_y / z_y.shape[0] ** 2


def re_loss_summed(z: Any, od: Any, rows: Any) -> Any:
    """RE as the public code computes it: the cross-entropy summed over every region (not averaged).

    Only the relative weight of RE and the alignment losses differs from :func:`re_loss` (by a factor
    of the number of regions with outflows); Adam is otherwise indifferent to the loss's scale.
    """
    zr = z[rows]
    return -(od[rows] * torch_log_softmax(zr @ z.T)).sum()


def anchor_gram_reference(z: Any, anchors: Any) -> Any:
    """The public code's relative representation: ``S = norm_rows(A Z^T)`` (dot products, each anchor's row
    normalised over the regions), returned as ``S S^T`` (``N_a x N_a``) through the ``d x d`` Gram matrix."""
    ag = anchors @ (z.T @ z)  # N_a x d
    norms = (ag * anchors).sum(1).clamp(min=1e-12).sqrt()
    return (ag @ anchors.T) / norms[:, None] / norms[None, :]


def lma_loss_reference(z_x: Any, z_y: Any, anchors: Any) -> Any:
    """LMA as the public code computes it: ``sum((S_x S_x^T - S_y S_y^T)^2) / N_a`` (per-anchor squared
    distance of the rows of ``1 - S S^T``, averaged over the anchors)."""
    diff = anchor_gram_reference(z_x, anchors) - anchor_gram_reference(z_y, anchors)
    return (diff * diff).sum() / anchors.shape[0]


def _attention_cycle_error(q: Any, k: Any, q_o: Any, k_o: Any) -> Any:
    """``||Q K_o^T Q_o K^T / d - Q K^T / sqrt(d)||_F^2`` through ``d x d`` matrices.

    The cycle ``Attn^{X->Y} Attn^{Y->X}`` minus the city's own attention ``Attn^{X->X}`` is
    ``Q M K^T`` with ``M = K_o^T Q_o / d - I / sqrt(d)``, and ``||Q M K^T||^2 = sum((M^T Q^T Q M) * (K^T K))``.
    """
    import torch

    d = q.shape[1]
    m = (k_o.T @ q_o) / d - torch.eye(d, dtype=q.dtype) / d**0.5
    return ((m.T @ (q.T @ q) @ m) * (k.T @ k)).sum()


def lia_loss_reference(z_x: Any, z_y: Any, wq: Any, wk: Any) -> Any:
    """LIA as the public code computes it: each city's cross-attention cycle against its own attention
    ``Q K^T / sqrt(d)`` (not ``Z Z^T``), squared error summed over a row and averaged over the regions;
    ``wq``, ``wk`` are linear layers with biases shared by the cities."""
    q_x, k_x, q_y, k_y = wq(z_x), wk(z_x), wq(z_y), wk(z_y)
    return _attention_cycle_error(q_x, k_x, q_y, k_y) / z_x.shape[0] + _attention_cycle_error(q_y, k_y, q_x, k_x) / z_y.shape[0]


class _Losses:
    """CoRE's three losses in one of :data:`~core.regions.config.LOSS_FORMS`, with the cross-attention's parameters."""

    def __init__(self, form: str, dim: int) -> None:
        import torch

        self.reference = form == "reference"
        if self.reference:
            self.wq, self.wk = torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
            self.attention_params = [*self.wq.parameters(), *self.wk.parameters()]
        else:
            self.w_q = torch.nn.Parameter(torch.empty(dim, dim))
            self.w_k = torch.nn.Parameter(torch.empty(dim, dim))
            torch.nn.init.xavier_uniform_(self.w_q)
            torch.nn.init.xavier_uniform_(self.w_k)
            self.attention_params = [self.w_q, self.w_k]

    def re(self, z: Any, od: Any, rows: Any) -> Any:
        return re_loss_summed(z, od, rows) if self.reference else re_loss(z, od, rows)

    def lma(self, z_x: Any, z_y: Any, anchors: Any) -> Any:
        return lma_loss_reference(z_x, z_y, anchors) if self.reference else lma_loss(z_x, z_y, anchors)

    def lia(self, z_x: Any, z_y: Any) -> Any:
        if self.reference:
            return lia_loss_reference(z_x, z_y, self.wq, self.wk)
        return lia_loss(z_x, z_y, self.w_q, self.w_k)


class CoRE:
    """CoRE: region embeddings of two or more cities, learned and aligned in one stage.

    Args:
        config: the hyper-parameters (:class:`~core.regions.config.CoreConfig`).

    Attributes:
        embeddings_: one ``(n_regions, dim)`` float32 array per city, in the order given to :meth:`fit`.
        loss_history_: per epoch ``{"total", "re", "lma", "lia"}``.
        seconds_: training time.
    """

    def __init__(self, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()

    def fit(
        self,
        graphs: Sequence[RegionGraph],
        progress: Callable[[Progress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        snapshots: Sequence[int] = (),
    ) -> CoRE:
        """Train on the cities' mobility graphs.

        Args:
            graphs: two or more cities (one city trains it alone).
            progress: called with a :class:`~core.progress.Progress` every few epochs.
            cancel: polled every epoch; when it returns True, training stops with TrainingCancelled.
            snapshots: epochs after which to keep a copy of the embeddings (``snapshots_``), for
                training curves; the model is always the last epoch's.

        Returns:
            self.

        Raises:
            InputError: no city, or a city without any flow.
        """
        import torch

        from core.errors import TrainingCancelled
        from core.threads import torch_threads

        torch_threads()
        cfg = self.config
        if not graphs:
            raise InputError("cities", "no city given", expected="at least one city")
        for g in graphs:
            if g.weight.sum() <= 0:
                raise InputError(g.name, "no flow between its regions", expected="OD flows with positive weights")
        if cfg.dim < 1 or cfg.heads < 1 or cfg.epochs < 1 or cfg.n_anchors < 1:
            raise InputError("config", "dim, heads, epochs and n_anchors must be >= 1", expected="positive sizes")
        if cfg.losses not in LOSS_FORMS:
            raise InputError("config", f"unknown loss form {cfg.losses!r}", expected=f"one of {', '.join(LOSS_FORMS)}")
        keep = set(snapshots)
        self.snapshots_: dict[int, list[np.ndarray]] = {}
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        _, Encoder = _modules(cfg.dim, cfg.heads)
        tensors = [_graph_tensors(g, cfg.heads) for g in graphs]
        # The public code shares one PReLU between the cities' encoders; created in the same order as before.
        shared_act = torch.nn.PReLU() if cfg.losses == "reference" else None
        encoders = [Encoder(g.n, shared_act) for g in graphs]
        losses = _Losses(cfg.losses, cfg.dim)
        align = len(graphs) > 1 and (cfg.alpha > 0 or cfg.beta > 0)
        params = list({id(p): p for e in encoders for p in e.parameters()}.values())
        if align:
            params += losses.attention_params
        opt = torch.optim.Adam(params, lr=cfg.lr)
        pairs = [(i, j) for i in range(len(graphs)) for j in range(i + 1, len(graphs))] if align else []
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        every = max(1, cfg.epochs // 100)
        for epoch in range(1, cfg.epochs + 1):
            if cancel is not None and cancel():
                raise TrainingCancelled(f"CoRE training cancelled at epoch {epoch}")
            opt.zero_grad()
            zs = [enc(t) for enc, t in zip(encoders, tensors)]
            re = sum((losses.re(z, t["od"], t["rows"]) for z, t in zip(zs, tensors)), torch.zeros(()))
            lma, lia = torch.zeros(()), torch.zeros(())
            if pairs and cfg.alpha > 0:
                anchors = torch.randn(cfg.n_anchors, cfg.dim, generator=gen)
                lma = sum((losses.lma(zs[i], zs[j], anchors) for i, j in pairs), lma)
            if pairs and cfg.beta > 0:
                lia = sum((losses.lia(zs[i], zs[j]) for i, j in pairs), lia)
            total = re + cfg.alpha * lma + cfg.beta * lia
            if not torch.isfinite(total):
                raise CoreError(f"CoRE loss is not finite at epoch {epoch} (lr {cfg.lr} too large?)")
            total.backward()
            opt.step()
            if epoch in keep:
                with torch.no_grad():
                    self.snapshots_[epoch] = [enc(t).numpy().astype(np.float32) for enc, t in zip(encoders, tensors)]
            history.append({k: float(v.detach()) for k, v in (("total", total), ("re", re), ("lma", lma), ("lia", lia))})
            if progress is not None and (epoch % every == 0 or epoch == cfg.epochs):
                elapsed = time.perf_counter() - start
                progress(
                    Progress(
                        "core",
                        epoch,
                        cfg.epochs,
                        loss=float(total.detach()),
                        elapsed=elapsed,
                        fraction=epoch / cfg.epochs,
                        eta=elapsed / epoch * (cfg.epochs - epoch),
                    )
                )
        with torch.no_grad():
            self.embeddings_ = [enc(t).numpy().astype(np.float32) for enc, t in zip(encoders, tensors)]
        self.loss_history_ = history
        self.seconds_ = time.perf_counter() - start
        return self
