"""Area2Vec training: free and anchored (SPEC §3-4), optimised on per-area token counts.

The public trainer minimises the mean cross-entropy over stay records in minibatches of 1,024. That
objective equals the count-weighted cross-entropy over each area's token histogram, so we optimise
it on the ``areas x 168`` count matrix instead, in two phases:

1. **Decoder.** The decoder ``W`` (168 x dim) is shared by every area. It is learned together with
   the embeddings of a random sample of areas (all of them when there are fewer than
   ``sample_areas``) by full-batch Adam; in anchored mode the frozen anchor rows join each step
   with the anchor-power schedule ``(1 - p) * L_data + p * L_anchor``. Stops when the loss has
   converged (relative improvement below ``tol`` over ``patience`` epochs) or at ``max_epochs``.
2. **Embeddings.** With ``W`` fixed each area's problem is a small convex one in ``dim``
   unknowns, solved for every area at once by damped Newton steps (batched dim x dim systems).

A tiny L2 term (``l2`` per stay) keeps areas whose few stays fall on one token at a finite place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from core import knobs
from core.constants import N_TOKENS
from core.errors import CoreError, InputError, TrainingCancelled
from core.progress import Progress

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :class:`Area2VecTrainer` (stored beside every trained model)."""

    dim: int = knobs.DIM.default
    seed: int = knobs.SEED.default
    lr: float = 0.1  # full-batch Adam: large steps are safe, the gradient is exact
    max_epochs: int = knobs.EPOCHS.default  # decoder phase, upper bound
    tol: float = (
        knobs.TOL.default
    )  # 0: never stop early; stop when the loss improves by less than this (relative) over `patience` epochs
    patience: int = 20
    schedule: str = knobs.SCHEDULE.default
    alpha: float = knobs.ALPHA.default  # anchor power at the end of the schedule
    beta: float = 1.0  # anchor power at the start
    schedule_epochs: int = 150  # T of the anchor-power schedule; p stays at alpha afterwards
    sample_areas: int = 8192  # areas that learn the decoder in phase 1 (all when fewer)
    newton_iters: int = 25
    refine_rounds: int = 2  # rounds of (L-BFGS on W over every area, then Newton on E) after phase 2
    refine_lbfgs_iters: int = 10
    l2: float = 3e-3  # per-stay weight of 0.5 * |e|^2 (measured: also lowers ApproximationLoss)
    init_scale: float = 0.5  # embeddings start uniform in [-init_scale, init_scale]
    chunk: int = 8192  # rows per block (keeps work in cache)

    def __post_init__(self) -> None:
        knobs.SCHEDULE.check(self.schedule)
        knobs.ALPHA.check(self.alpha)
        knobs.TOL.check(self.tol)
        if self.dim < 1:
            raise InputError("embedding size", f"{self.dim} is out of range", expected="an integer of at least 1")
        if not 0 < self.beta <= 1:
            raise InputError("initial anchor power", f"{self.beta} is out of range", expected="a number in (0, 1]")
        if self.max_epochs < 1 or self.schedule_epochs < 1:
            raise InputError(
                "most epochs",
                f"{min(self.max_epochs, self.schedule_epochs)} is out of range",
                expected="an integer of at least 1",
            )

    def to_dict(self) -> dict:
        return asdict(self)


def anchor_power(
    schedule: str, epoch: int, epochs: int, alpha: float = 0.3, beta: float = 1.0, anchor_share: float = 0.5
) -> float:
    """Anchor power ``p`` at ``epoch`` of a schedule of ``epochs`` epochs (SPEC §4).

    ``exponential``: ``exp((t/T)(log alpha - log beta) + log beta)``; ``linear``: from beta to alpha;
    ``constant``: alpha; ``mixed``: the anchors' share of all records. After ``T`` it stays at alpha.
    """
    t = min(max(epoch, 0), epochs) / epochs
    if schedule == "exponential":
        return math.exp(t * (math.log(alpha) - math.log(beta)) + math.log(beta))
    if schedule == "linear":
        return beta + t * (alpha - beta)
    if schedule == "constant":
        return alpha
    if schedule == "mixed":
        return anchor_share
    raise CoreError(f"unknown anchor schedule {schedule!r}")


@dataclass
class TrainResult:
    """What training produced (arrays are numpy, float32)."""

    embeddings: np.ndarray
    decoder: np.ndarray
    loss_history: list[float] = field(default_factory=list)
    power_history: list[float] = field(default_factory=list)
    epochs: int = 0
    newton_iters: int = 0
    converged: bool = False
    seconds: float = 0.0
    final_loss: float = float("nan")


def _blocks(n: int, chunk: int) -> range:
    return range(0, n, chunk)


class _Counts:
    """Dense counts in torch with the per-row totals, plus block-wise loss and gradients."""

    def __init__(self, counts: np.ndarray, chunk: int):
        import torch

        self.C = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32))
        self.n = self.C.sum(dim=1)
        self.N = float(self.n.sum())
        self.chunk = chunk

    def __len__(self) -> int:
        return int(self.C.shape[0])

    @overload
    def loss_grad(self, E: Tensor, W: Tensor, need_e: Literal[True] = True) -> tuple[float, Tensor, Tensor]: ...

    @overload
    def loss_grad(self, E: Tensor, W: Tensor, need_e: Literal[False]) -> tuple[float, None, Tensor]: ...

    def loss_grad(self, E: Tensor, W: Tensor, need_e: bool = True) -> tuple[float, Tensor | None, Tensor]:
        """Sum over stays of the cross-entropy, its gradient wrt E (rows) and W."""
        import torch

        total = 0.0
        gW = torch.zeros_like(W)
        gE = torch.empty_like(E) if need_e else None
        for s in _blocks(len(self), self.chunk):
            e, c, n = E[s : s + self.chunk], self.C[s : s + self.chunk], self.n[s : s + self.chunk]
            logits = e @ W.T
            mx = logits.max(dim=1).values
            logits.sub_(mx[:, None]).exp_()
            z = logits.sum(dim=1)
            cw = c @ W
            total += float((n * (torch.log(z) + mx)).sum() - (e * cw).sum())
            logits.mul_((n / z)[:, None])  # n * softmax
            if gE is not None:  # exactly when need_e
                gE[s : s + self.chunk] = logits @ W - cw
            gW += logits.T @ e - c.T @ e
        return total, gE, gW

    def newton(
        self,
        E: Tensor,
        W: Tensor,
        l2: float,
        iters: int,
        cancel: Callable[[], bool] | None,
        report: Callable[[int, float], None],
    ) -> int:
        """Minimise each row's loss over its embedding with W fixed (in place). Returns iterations."""
        import torch

        d = W.shape[1]
        WW = (W[:, :, None] * W[:, None, :]).reshape(N_TOKENS, d * d)
        eye = torch.eye(d, dtype=W.dtype)
        active = torch.ones(len(self), dtype=torch.bool)
        done = 0
        for it in range(iters):
            if cancel is not None and cancel():
                raise TrainingCancelled("training cancelled")
            total = 0.0
            for s in _blocks(len(self), self.chunk):
                sl = slice(s, s + self.chunk)
                act = active[sl]
                if not bool(act.any()):
                    continue
                e, c, n = E[sl][act], self.C[sl][act], self.n[sl][act]
                cw = c @ W
                logits = e @ W.T
                lse = torch.logsumexp(logits, dim=1)
                old = n * lse - (e * cw).sum(1) + 0.5 * l2 * n * (e * e).sum(1)
                P = torch.exp(logits - lse[:, None])
                pw = P @ W
                H = (P @ WW).reshape(-1, d, d) - pw[:, :, None] * pw[:, None, :]
                H = n[:, None, None] * (H + l2 * eye)
                g = n[:, None] * (pw + l2 * e) - cw
                step = torch.linalg.solve(H, g.unsqueeze(-1)).squeeze(-1)
                # Backtracking per row: the full step, else halve it (down to 2^-12) until the row's
                # loss falls; a row no step improves has converged. (Stopping at a quarter step left
                # rows that start far from their optimum frozen where they started.)
                best_e, best = e.clone(), old.clone()
                pending = torch.ones(len(e), dtype=torch.bool)
                frac = 1.0
                for _ in range(13):
                    rows = torch.nonzero(pending).squeeze(1)
                    cand = e[rows] - frac * step[rows]
                    lg = cand @ W.T
                    new = (
                        n[rows] * torch.logsumexp(lg, dim=1)
                        - (cand * cw[rows]).sum(1)
                        + 0.5 * l2 * n[rows] * (cand * cand).sum(1)
                    )
                    better = new < old[rows] - 1e-7 * old[rows].abs()
                    hit = rows[better]
                    best_e[hit] = cand[better]
                    best[hit] = new[better]
                    pending[hit] = False
                    if not bool(pending.any()):
                        break
                    frac *= 0.5
                moved = (best_e - e).norm(dim=1)
                idx = torch.nonzero(act).squeeze(1) + s
                E[idx] = best_e
                still = moved > 1e-5
                active[idx[~still]] = False
                total += float(best.sum())
            done = it + 1
            report(done, total)
            if not bool(active.any()):
                break
        return done


def _refine_decoder(
    data: _Counts,
    E: Tensor,
    W: Tensor,
    anchors: tuple[_Counts, Tensor, float] | None,
    iters: int,
    tick: Callable[[int], None] | None = None,
) -> Tensor:
    """Minimise the (anchored) loss over W with every embedding fixed: convex, by L-BFGS.

    ``tick`` is called with the number of loss evaluations so far (at most :func:`_lbfgs_evals`).
    """
    import torch

    W = W.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [W], lr=1.0, max_iter=iters, max_eval=_lbfgs_evals(iters), history_size=10, line_search_fn="strong_wolfe"
    )
    evals = [0]

    def closure() -> Tensor:
        evals[0] += 1
        if tick is not None:
            tick(evals[0])
        with torch.no_grad():
            loss, _, gW = data.loss_grad(E, W.detach(), need_e=False)
            loss, gW = loss / data.N, gW / data.N
            if anchors is not None:
                anc, EA, p = anchors
                la, _, gWa = anc.loss_grad(EA, W.detach(), need_e=False)
                loss = (1 - p) * loss + p * la / anc.N
                gW = (1 - p) * gW + p * gWa / anc.N
        W.grad = gW
        return torch.tensor(loss)

    opt.step(closure)
    return W.detach()


def _lbfgs_evals(iters: int) -> int:
    """The most loss evaluations of one L-BFGS refinement (torch's own default for ``max_iter=iters``)."""
    return iters * 5 // 4


def _check_counts(counts: np.ndarray) -> None:
    """An ``areas x 168`` matrix of finite, non-negative counts with at least one stay per area."""
    if counts.ndim != 2 or counts.shape[1] != N_TOKENS:
        raise InputError("counts", f"shape {counts.shape}", expected=f"areas x {N_TOKENS}")
    if counts.shape[0] == 0:
        raise InputError("counts", "no areas to train")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise InputError("counts", "negative, NaN or infinite counts", expected="finite counts of at least 0")
    empty = np.flatnonzero(counts.sum(axis=1) <= 0)
    if empty.size:
        raise InputError(
            "counts",
            "areas without stays",
            rows=(empty[:5] + 1).tolist(),
            n_bad=empty.size,
            expected="at least one stay per area",
        )


def _check_anchors(a_counts: np.ndarray, a_emb: np.ndarray, dim: int) -> None:
    """Anchor counts and frozen embeddings that can fix a space."""
    if a_emb.ndim != 2 or a_emb.shape[1] != dim:
        raise CoreError(f"anchor embeddings have dimension {a_emb.shape[-1]}, but training uses dim={dim}")
    if a_counts.shape != (a_emb.shape[0], N_TOKENS):
        raise CoreError(f"anchor counts {a_counts.shape} do not match {a_emb.shape[0]} anchors x {N_TOKENS} tokens")
    if a_emb.shape[0] < 2:
        raise CoreError(f"an anchor set needs at least 2 anchors to fix a space; this one has {a_emb.shape[0]}")
    if not np.isfinite(a_emb).all():
        bad = np.flatnonzero(~np.isfinite(a_emb).all(axis=1))
        raise InputError(
            "anchor embeddings", "NaN or infinite values", rows=(bad[:5] + 1).tolist(), n_bad=bad.size, expected="finite numbers"
        )
    if (a_counts.sum(axis=1) <= 0).any():
        raise CoreError("every anchor needs at least one stay record")


class Area2VecTrainer:
    """Train Area2Vec embeddings for one stay dataset, free or anchored.

    Example:
        >>> trainer = Area2VecTrainer(TrainConfig(seed=1))
        >>> result = trainer.fit(counts.dense(), anchors=(anchor_counts, anchor_embeddings))
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    def fit(
        self,
        counts: np.ndarray,
        anchors: tuple[np.ndarray, np.ndarray] | None = None,
        progress: Callable[[Progress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """Train on an ``areas x 168`` count matrix.

        Args:
            counts: stays per (area, token); every row must have at least one stay.
            anchors: ``(anchor_counts, anchor_embeddings)`` (n x 168 and n x dim) for anchored
                training; the anchor embeddings stay frozen. ``None`` trains freely.
            progress: called with a :class:`Progress` after every step.
            cancel: polled every step; when it returns True, :class:`TrainingCancelled` is raised.

        Returns:
            The trained embeddings (anchor rows excluded), the decoder and the loss history.
        """
        import torch

        from core.threads import torch_threads

        torch_threads()
        cfg = self.config
        counts = np.asarray(counts)
        _check_counts(counts)
        anchored = anchors is not None
        if anchors is not None:
            a_counts, a_emb = (np.asarray(a) for a in anchors)
            _check_anchors(a_counts, a_emb, cfg.dim)

        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        n_areas = counts.shape[0]
        sample = (
            np.arange(n_areas) if n_areas <= cfg.sample_areas else np.sort(rng.choice(n_areas, cfg.sample_areas, replace=False))
        )
        data = _Counts(counts[sample], cfg.chunk)
        n_full = float(counts.sum())
        W = torch.zeros(N_TOKENS, cfg.dim)
        E = (torch.rand(len(data), cfg.dim, generator=gen) * 2 - 1) * cfg.init_scale
        if anchored:
            anc = _Counts(a_counts, cfg.chunk)
            EA = torch.from_numpy(np.ascontiguousarray(a_emb, dtype=np.float32))
            share = anc.N / (anc.N + n_full)
        E.requires_grad_(False)
        params = [E, W]
        opt = torch.optim.Adam(params, lr=cfg.lr)
        result = TrainResult(embeddings=np.empty(0), decoder=np.empty(0))

        def emit(phase: str, step: int, total: int, loss: float | None, p: float | None) -> None:
            if progress is not None:
                progress(Progress(phase, step, total, loss, time.perf_counter() - t0, anchor_power=p))

        # ---- phase 1: decoder (with a sample of areas)
        hist = result.loss_history
        # Anchored: run the whole schedule, epoch T (p = alpha) included, before any early stop.
        min_epochs = cfg.schedule_epochs + 1 if anchored and cfg.schedule in ("exponential", "linear") else 1
        for epoch in range(cfg.max_epochs):
            if cancel is not None and cancel():
                raise TrainingCancelled("training cancelled")
            ld, gE, gW = data.loss_grad(E, W)
            ld /= data.N
            gE /= data.N
            gW /= data.N
            gE += cfg.l2 * E * (data.n / data.N)[:, None]
            if anchored:
                p = anchor_power(cfg.schedule, epoch, cfg.schedule_epochs, cfg.alpha, cfg.beta, share)
                la, _, gWa = anc.loss_grad(EA, W, need_e=False)
                la /= anc.N
                loss = (1 - p) * ld + p * la
                gE *= 1 - p
                gW = (1 - p) * gW + p * (gWa / anc.N)
                result.power_history.append(p)
            else:
                p, loss = None, ld
            E.grad, W.grad = gE, gW
            opt.step()
            hist.append(loss)
            emit("decoder", epoch + 1, cfg.max_epochs, loss, p)
            if cfg.tol > 0 and epoch + 1 >= max(min_epochs, cfg.patience) and len(hist) > cfg.patience:
                past = hist[-1 - cfg.patience]
                if (past - loss) <= cfg.tol * abs(loss):
                    result.converged = True
                    break
        result.epochs = len(hist)

        # ---- phase 2: every area's embedding, W fixed
        full = data if len(sample) == n_areas else _Counts(counts, cfg.chunk)
        if len(sample) == n_areas:
            E_all = E.detach().clone()
        else:
            # Start each area from the sampled area with the closest histogram direction (cheap
            # warm start): the mean of the sample is a fine start for a convex problem.
            E_all = E.detach().mean(dim=0, keepdim=True).repeat(n_areas, 1)
        with torch.no_grad():

            def rep(step: int, total: float) -> None:
                emit("embed", step, cfg.newton_iters, total / full.N, None)

            result.newton_iters = full.newton(E_all, W.detach(), cfg.l2, cfg.newton_iters, cancel, rep)
        W = W.detach().clone()
        anc_pair = (
            (anc, EA, anchor_power(cfg.schedule, cfg.schedule_epochs, cfg.schedule_epochs, cfg.alpha, cfg.beta, share))
            if anchored
            else None
        )
        # Refinement reports every loss evaluation of L-BFGS and every Newton step: a round is long on big data.
        evals, newton_steps = _lbfgs_evals(cfg.refine_lbfgs_iters), max(3, cfg.newton_iters // 5)
        per_round = evals + newton_steps
        refine_total = cfg.refine_rounds * per_round
        for r in range(cfg.refine_rounds):
            base = r * per_round

            def tick(n: int, base: int = base) -> None:
                emit("refine", base + min(n, evals), refine_total, None, None)

            W = _refine_decoder(full, E_all, W, anc_pair, cfg.refine_lbfgs_iters, tick)
            with torch.no_grad():

                def newton_tick(step: int, _total: float, base: int = base) -> None:
                    emit("refine", base + evals + min(step, newton_steps), refine_total, None, None)

                full.newton(E_all, W, cfg.l2, newton_steps, cancel, newton_tick)
            with torch.no_grad():
                cur, _, _ = full.loss_grad(E_all, W, need_e=False)
            emit("refine", (r + 1) * per_round, refine_total, cur / full.N, None)
        with torch.no_grad():
            final, _, _ = full.loss_grad(E_all, W, need_e=False)
        result.final_loss = final / full.N
        result.embeddings = E_all.numpy().astype(np.float32)
        result.decoder = W.numpy().astype(np.float32)
        result.seconds = time.perf_counter() - t0
        return result
