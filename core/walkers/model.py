"""A small causal transformer over trajectories (RAW at laptop scale): train, embed users, predict.

Each record of a person (a stay, or a run of HuMob slots) is one token: an MLP of its position
(normalised km), time of day, weekday (when known), the gap since the previous record and the
previous record's duration, plus a learned position embedding; pre-LN transformer blocks with a
causal mask. RAW predicts the next point; here the head predicts where the person is at a query
time ``tau`` given the history up to now: half the training targets are RAW's next point (the
next record, ``tau`` = its start), the others the record covering ``now + h`` for a random horizon
h. The head predicts the move from the current position (so "stay" is the zero output). A token
never sees its own duration (that would leak the future). The loss is MSE on normalised
coordinates (``regress``, as RAW), the Euclidean distance (``median``: the spatial median, which
minimises the mean error in km) or cross-entropy over the most visited cells (``classify``).

User embedding = mean of the final hidden states over all the person's tokens (RAW).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CoreError, InputError, TrainingCancelled
from core.progress import Progress
from core.walkers.trajectories import DAY_MINUTES, Trajectories, covering_record, split_users

OBJECTIVES = ("regress", "median", "classify")
CHECKPOINT = "walker.pth"
CONFIG_JSON = "config.json"
N_FEATURES = 9  # x, y, sin/cos time of day, sin/cos weekday, weekday known, gap, previous duration
N_QUERY = 6  # sin/cos time of day, sin/cos weekday, weekday known, log hours ahead


@dataclass(frozen=True)
class WalkerConfig:
    """Hyper-parameters of the trajectory model (stored in every checkpoint).

    Defaults were measured on the demo (tiny scale, Tokyo, ~15 stays per person) on 2 CPU cores:
    see the README's Walkers section.
    """

    d_model: int = field(default=64, metadata={"help": "hidden size (the user embedding's size)"})
    n_layers: int = field(default=2, metadata={"help": "transformer blocks"})
    n_heads: int = field(default=4, metadata={"help": "attention heads (d_model must be a multiple)"})
    # Tokens per window: about a month of a demo person's stays, two days of HuMob runs.
    context: int = field(default=96, metadata={"help": "tokens per window (records)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout in the blocks"})
    objective: str = field(
        default="regress",
        metadata={
            "help": "regress: MSE on normalised coordinates (RAW); median: Euclidean distance (the spatial median); classify: the cell (cross-entropy)",
            "choices": OBJECTIVES,
        },
    )
    # classify: the most visited cells of the training people get a class each; the rest share one.
    max_cells: int = field(default=2048, metadata={"help": "classify: classes for the most visited cells"})
    # Half the training targets are RAW's next point (the next record, at its start); the others
    # ask "where at now + h" with h log-uniform in [min, max] minutes (the record covering that time).
    next_share: float = field(default=0.5, metadata={"help": "share of training targets that are the next record"})
    min_horizon_minutes: float = field(default=10.0, metadata={"help": "shortest 'where at now + h' horizon in training"})
    max_horizon_minutes: float = field(default=360.0, metadata={"help": "longest 'where at now + h' horizon in training"})
    steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=64, metadata={"help": "windows per step"})
    # Higher than RAW's 1e-4: a 100 k-parameter model with few steps.
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate (warm-up then cosine decay)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup: int = field(default=50, metadata={"help": "warm-up steps"})
    # Share of people held out (never seen in training); the split is by person, never by record.
    test_share: float = field(default=0.25, metadata={"help": "share of people held out of training"})
    # Train on at most this many people (0: all training people); all are embedded.
    max_train_users: int = field(default=0, metadata={"help": "train on at most this many people (0: all)"})
    seed: int = field(default=0, metadata={"help": "seed of the split, the sampling and the weights"})

    def __post_init__(self) -> None:
        checks = [
            ("objective", self.objective in OBJECTIVES, f"one of {', '.join(OBJECTIVES)}"),
            ("d_model", self.d_model > 0 and self.d_model % max(self.n_heads, 1) == 0, "a positive multiple of n_heads"),
            ("n_layers", self.n_layers >= 1, ">= 1"),
            ("n_heads", self.n_heads >= 1, ">= 1"),
            ("context", self.context >= 2, ">= 2"),
            ("steps", self.steps >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("test_share", 0 < self.test_share < 1, "between 0 and 1"),
            ("next_share", 0 <= self.next_share <= 1, "in [0, 1]"),
            ("min_horizon_minutes", 0 < self.min_horizon_minutes <= self.max_horizon_minutes, "0 < min <= max_horizon_minutes"),
            ("max_cells", self.max_cells >= 1, ">= 1"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("max_train_users", self.max_train_users >= 0, ">= 0 (0: all)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError("walker config", f"{name} = {getattr(self, name)!r}", expected=expected)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalkerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _net(cfg: WalkerConfig, n_out: int) -> Any:
    """The torch module (built lazily so that ``import core`` does not import torch)."""
    import torch
    from torch import nn

    class WalkerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = cfg.d_model
            self.inp = nn.Sequential(nn.Linear(N_FEATURES, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
            self.pos = nn.Embedding(cfg.context, d)
            layer = nn.TransformerEncoderLayer(
                d, cfg.n_heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
            )
            self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.query = nn.Linear(N_QUERY, d)
            last = nn.Linear(d, n_out)
            # Start from "stay where you are" (regression) / uniform classes.
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.head = nn.Sequential(nn.GELU(), nn.Linear(d, d), nn.GELU(), last)

        def hidden(self, feats: torch.Tensor) -> torch.Tensor:
            n = feats.shape[1]
            h = self.inp(feats) + self.pos.weight[:n]
            mask = nn.Transformer.generate_square_subsequent_mask(n, dtype=h.dtype)
            return self.norm(self.blocks(h, mask=mask, is_causal=True))

        def out(self, hidden: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
            return self.head(hidden + self.query(query))

    return WalkerNet()


def _time_features(minutes: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """sin/cos of the time of day and of the weekday (zeros when unknown), and a 'weekday known' flag."""
    tod = 2 * np.pi * (np.mod(minutes, DAY_MINUTES) / DAY_MINUTES)
    known = weekday >= 0
    wd = 2 * np.pi * np.where(known, weekday, 0) / 7
    return np.stack([np.sin(tod), np.cos(tod), np.sin(wd) * known, np.cos(wd) * known, known.astype(np.float64)], axis=-1)


@dataclass
class _Prepared:
    """Per-token arrays of one Trajectories, ready for windows."""

    feats: np.ndarray  # tokens x N_FEATURES (float32)
    xy: np.ndarray  # tokens x 2 (normalised)
    km: np.ndarray  # tokens x 2
    offsets: np.ndarray
    uid: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    weekday: np.ndarray
    region: np.ndarray
    key: np.ndarray  # person * 1e8 + start: sorted, for "which record covers time t"


class WalkerModel:
    """RAW-style trajectory transformer (scikit-learn conventions; learned attributes end in ``_``).

    Example:
        >>> model = WalkerModel(WalkerConfig(steps=300)).fit(traj)  # doctest: +SKIP
        >>> users = model.embed_users(traj)  # doctest: +SKIP
    """

    def __init__(self, config: WalkerConfig | None = None) -> None:
        self.config = config or WalkerConfig()

    # ------------------------------------------------------------ data

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise CoreError("the walker model is not fitted: call fit() or load() first")

    def _prepare(self, traj: Trajectories) -> _Prepared:
        if traj.space != self.space_:
            raise InputError(traj.source, f"records are in the '{traj.space}' space", expected=f"'{self.space_}' like the model")
        x, y = traj.km(self.origin_)
        km = np.stack([x, y], axis=1)
        xy = (km - self.center_) / self.scale_
        off = traj.offsets()
        first = np.zeros(len(traj), bool)
        first[off[:-1][off[:-1] < len(traj)]] = True
        prev_start = np.r_[traj.start[:1], traj.start[:-1]]
        prev_dur = np.r_[0.0, traj.duration[:-1]]
        gap = np.where(first, 0.0, np.maximum(traj.start - prev_start, 0.0))
        prev_dur = np.where(first, 0.0, prev_dur)
        feats = np.concatenate(
            [
                xy,
                _time_features(traj.start, traj.weekday.astype(np.int64))[:, :5],
                (np.log1p(gap / 60.0) / 4.0)[:, None],
                (np.log1p(prev_dur / 60.0) / 4.0)[:, None],
            ],
            axis=1,
        ).astype(np.float32)
        region = traj.regions(self.level_)[0]
        key = traj.uid * 1e8 + traj.start
        return _Prepared(feats, xy.astype(np.float32), km, off, traj.uid, traj.start, traj.duration, traj.weekday, region, key)

    def _query(self, p: _Prepared, idx: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Query features for predicting the position at time ``tau`` from token ``idx``."""
        wd = p.weekday[idx].astype(np.int64)
        shift = np.floor(tau / DAY_MINUTES) - np.floor(p.start[idx] / DAY_MINUTES)
        wd_tau = np.where(wd >= 0, np.mod(wd + shift.astype(np.int64), 7), -1)
        ahead = np.log1p(np.maximum(tau - p.start[idx], 0.0) / 60.0)
        return np.concatenate([_time_features(tau, wd_tau), ahead[..., None]], axis=-1).astype(np.float32)

    # ------------------------------------------------------------ training

    def fit(
        self,
        traj: Trajectories,
        progress: Callable[[Progress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        test_users: np.ndarray | None = None,
        level: str | None = None,
    ) -> WalkerModel:
        """Train on the training people of ``traj`` (the held-out people are recorded in ``test_users_``).

        Args:
            traj: trajectories of at least two people.
            progress: called with :class:`core.progress.Progress` reports (stage ``walkers``).
            cancel: checked before every step; True stops training with :class:`TrainingCancelled`.
            test_users: a boolean mask over ``traj``'s people to hold out (default: a seeded split).
            level: region level of the classes (classify) and of region embeddings (default: the data's).

        Returns:
            self.
        """
        import torch

        from core.threads import torch_threads

        torch_threads()
        cfg = self.config
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        test = split_users(traj.n_users, cfg.test_share, cfg.seed) if test_users is None else np.asarray(test_users, bool)
        if test.shape != (traj.n_users,) or test.all():
            raise InputError(traj.source, "the held-out mask leaves nobody to train on", expected="a mask over the people")
        train_ids = np.flatnonzero(~test)
        if cfg.max_train_users and len(train_ids) > cfg.max_train_users:
            train_ids = np.sort(rng.choice(train_ids, cfg.max_train_users, replace=False))
        self.space_ = traj.space
        self.origin_ = traj.default_origin()
        self.level_ = level or traj.default_level()
        x, y = traj.km(self.origin_)
        in_train = np.zeros(traj.n_users, bool)
        in_train[train_ids] = True
        tok = in_train[traj.uid]
        self.center_ = np.array([x[tok].mean(), y[tok].mean()])
        self.scale_ = float(max(np.sqrt((x[tok].var() + y[tok].var()) / 2), 1e-3))
        self.users_ = traj.users
        self.test_users_ = traj.users[test]
        self.train_users_ = traj.users[train_ids]
        p = self._prepare(traj)
        if cfg.objective == "classify":
            keys, counts = np.unique(p.region[tok], return_counts=True)
            top = keys[np.argsort(-counts, kind="stable")[: cfg.max_cells]]
            self.cell_keys_ = np.sort(top)
            pos = np.searchsorted(self.cell_keys_, p.region)
            hit = (pos < len(self.cell_keys_)) & (self.cell_keys_[np.minimum(pos, len(self.cell_keys_) - 1)] == p.region)
            cls = np.where(hit, pos, len(self.cell_keys_))
            sums = np.zeros((len(self.cell_keys_) + 1, 2))
            np.add.at(sums, cls[tok], p.km[tok])
            n = np.bincount(cls[tok], minlength=len(self.cell_keys_) + 1)
            self.cell_km_ = sums / np.maximum(n, 1)[:, None]
            target_class = cls
            n_out = len(self.cell_keys_) + 1
        else:
            self.cell_keys_ = np.zeros(0, np.int64)
            self.cell_km_ = np.zeros((0, 2))
            target_class = np.zeros(0, np.int64)
            n_out = 2
        self.net_ = _net(cfg, n_out)
        net = self.net_
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)) * 0.5 * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps)),
        )
        train_tokens = np.flatnonzero(tok)
        L = cfg.context
        history: list[float] = []
        seen = 0
        net.train()
        for step in range(cfg.steps):
            if cancel is not None and cancel():
                raise TrainingCancelled(f"walker training cancelled at step {step}/{cfg.steps}")
            g = train_tokens[rng.integers(0, len(train_tokens), cfg.batch_size)]
            u = p.uid[g]
            s_u, e_u = p.offsets[u], p.offsets[u + 1]
            ws = np.maximum(s_u, g - rng.integers(0, L, cfg.batch_size))
            idx = ws[:, None] + np.arange(L)[None, :]
            valid = idx < e_u[:, None]
            width = int(valid.sum(axis=1).max())
            idx, valid = idx[:, :width], valid[:, :width]
            idx = np.minimum(idx, e_u[:, None] - 1)
            if not valid.any():
                continue
            # Targets: the next record at its start (RAW), or the record covering now + h.
            nxt = np.minimum(idx + 1, e_u[:, None] - 1)
            h = np.exp(rng.uniform(np.log(cfg.min_horizon_minutes), np.log(cfg.max_horizon_minutes), idx.shape))
            cov = covering_record(p.key, p.uid, p.start, p.duration, idx, p.start[idx] + h)
            use_next = (rng.random(idx.shape) < cfg.next_share) | (cov < 0)
            j = np.where(use_next, nxt, cov)
            tau = np.where(use_next, p.start[nxt], p.start[idx] + h)
            valid &= ~(use_next & (nxt == idx))  # a person's last record has no next one
            feats = torch.from_numpy(p.feats[idx])
            query = torch.from_numpy(self._query(p, idx, tau))
            out = net.out(net.hidden(feats), query)
            m = torch.from_numpy(valid)
            if cfg.objective == "classify":
                target = torch.from_numpy(target_class[j])
                loss = torch.nn.functional.cross_entropy(out[m], target[m])
            else:
                # Residual: the head predicts the move from the current record's position.
                move = torch.from_numpy(p.xy[j] - p.xy[idx])
                sq = ((out - move) ** 2).sum(-1)[m]
                loss = sq.mean() if cfg.objective == "regress" else torch.sqrt(sq + 1e-6).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            history.append(float(loss.item()))
            seen += int(valid.sum())
            if progress is not None and (step % 10 == 0 or step == cfg.steps - 1):
                el = time.perf_counter() - t0
                done = (step + 1) / cfg.steps
                progress(
                    Progress(
                        "walkers",
                        step + 1,
                        cfg.steps,
                        loss=float(np.mean(history[-10:])),
                        elapsed=el,
                        fraction=done,
                        eta=el / done * (1 - done),
                        message=f"{width} tokens/window",
                    )
                )
        net.eval()
        self.history_ = np.asarray(history)
        self.seconds_ = time.perf_counter() - t0
        self.n_params_ = int(sum(t.numel() for t in net.parameters()))
        self.n_train_tokens_ = int(tok.sum())
        self.tokens_seen_ = seen
        return self

    # ------------------------------------------------------------ inference

    def _windows_forward(self, p: _Prepared, ws: np.ndarray, ends: np.ndarray, batch: int = 256):
        """Yield (rows, hidden, valid) for windows [ws, ends) in batches (hidden: torch, B x width x d)."""
        import torch

        L = self.config.context
        for b0 in range(0, len(ws), batch):
            w, e = ws[b0 : b0 + batch], ends[b0 : b0 + batch]
            idx = w[:, None] + np.arange(L)[None, :]
            valid = idx < e[:, None]
            width = int(valid.sum(axis=1).max())
            idx, valid = np.minimum(idx[:, :width], e[:, None] - 1), valid[:, :width]
            with torch.inference_mode():
                h = self.net_.hidden(torch.from_numpy(p.feats[idx]))
            yield slice(b0, b0 + len(w)), idx, h, valid

    def embed_users(self, traj: Trajectories) -> np.ndarray:
        """User embeddings (people x d_model, float32): mean of the final hidden states of all their tokens.

        A person with more records than the context is read in consecutive windows of ``context`` tokens.
        """
        from core.threads import torch_threads

        self._check_fitted()
        torch_threads()
        p = self._prepare(traj)
        L = self.config.context
        off = p.offsets
        n_tok = np.diff(off)
        n_ch = np.maximum((n_tok + L - 1) // L, 0)
        owner = np.repeat(np.arange(traj.n_users), n_ch)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(n_ch) - n_ch, n_ch)
        ws = off[owner] + k * L
        ends = np.minimum(ws + L, off[owner + 1])
        sums = np.zeros((traj.n_users, self.config.d_model))
        for rows, _, h, valid in self._windows_forward(p, ws, ends):
            hv = (h.numpy() * valid[..., None]).sum(axis=1)
            np.add.at(sums, owner[rows], hv)
        return (sums / np.maximum(n_tok, 1)[:, None]).astype(np.float32)

    def predict_km(self, traj: Trajectories, anchor: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Predicted position (km, the model's frame) at times ``tau`` from the history up to token ``anchor``.

        Args:
            traj: the trajectories (indices refer to its records).
            anchor: record indices: the last record known ("now" is its start).
            tau: query times (minutes, same clock as ``traj.start``), >= the anchor's start.
        """
        import torch

        self._check_fitted()
        p = self._prepare(traj)
        anchor = np.asarray(anchor, np.int64)
        s_u = p.offsets[p.uid[anchor]]
        ws = np.maximum(s_u, anchor - self.config.context + 1)
        out = np.zeros((len(anchor), 2))
        q_all = self._query(p, anchor, np.asarray(tau, np.float64))
        for rows, _, h, _ in self._windows_forward(p, ws, anchor + 1):
            last = torch.from_numpy(anchor[rows] - ws[rows])
            hl = h[torch.arange(h.shape[0]), last]
            with torch.inference_mode():
                o = self.net_.out(hl, torch.from_numpy(q_all[rows])).numpy()
            if self.config.objective == "classify":
                o[:, -1] = -np.inf  # "another cell" has no position
                out[rows] = self.cell_km_[o.argmax(axis=1)]
            else:
                out[rows] = (p.xy[anchor[rows]] + o) * self.scale_ + self.center_
        return out

    def km(self, traj: Trajectories) -> np.ndarray:
        """Positions of ``traj``'s records in the model's km frame."""
        x, y = traj.km(self.origin_)
        return np.stack([x, y], axis=1)

    # ------------------------------------------------------------ persistence

    def save(self, out_dir: str | Path) -> Path:
        """Write ``walker.pth`` (weights, config, normalisation, split) and ``config.json``, atomically."""
        import torch

        from core.atomic import atomic_path, ensure_writable_dir, write_text_atomic

        self._check_fitted()
        out = ensure_writable_dir(Path(out_dir))
        users_int = np.issubdtype(self.users_.dtype, np.integer)
        meta = {
            "config": self.config.to_dict(),
            "space": self.space_,
            "origin": list(self.origin_),
            "level": self.level_,
            "center": [float(c) for c in self.center_],
            "scale": self.scale_,
            "seconds": self.seconds_,
            "n_params": self.n_params_,
            "n_train_tokens": self.n_train_tokens_,
            "users_are_integers": bool(users_int),
        }
        ckpt = {
            "state_dict": self.net_.state_dict(),
            "meta_json": json.dumps(meta),
            "cell_keys": torch.from_numpy(np.asarray(self.cell_keys_, np.int64)),
            "cell_km": torch.from_numpy(np.asarray(self.cell_km_, np.float64)),
            "history": torch.from_numpy(np.asarray(self.history_, np.float64)),
            "test_users": [str(u) for u in self.test_users_],
            "train_users": [str(u) for u in self.train_users_],
        }
        with atomic_path(out / CHECKPOINT) as tmp:
            torch.save(ckpt, tmp)
        write_text_atomic(out / CONFIG_JSON, json.dumps(meta, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> WalkerModel:
        """Read what :meth:`save` wrote (``torch.load(weights_only=True)``)."""
        import torch

        path = Path(out_dir) / CHECKPOINT
        if not path.is_file():
            raise InputError(str(out_dir), f"no {CHECKPOINT}", expected="a folder written by 'walkers train'")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(ckpt["meta_json"])
        model = cls(WalkerConfig.from_dict(meta["config"]))
        model.space_, model.level_ = meta["space"], meta["level"]
        model.origin_ = (float(meta["origin"][0]), float(meta["origin"][1]))
        model.center_, model.scale_ = np.asarray(meta["center"]), float(meta["scale"])
        model.seconds_, model.n_params_ = float(meta["seconds"]), int(meta["n_params"])
        model.n_train_tokens_ = int(meta["n_train_tokens"])
        model.cell_keys_ = ckpt["cell_keys"].numpy()
        model.cell_km_ = ckpt["cell_km"].numpy()
        model.history_ = ckpt["history"].numpy()
        conv = (lambda a: np.asarray(a, np.int64)) if meta["users_are_integers"] else (lambda a: np.asarray(a, str))
        model.test_users_ = conv(ckpt["test_users"])
        model.train_users_ = conv(ckpt["train_users"])
        model.users_ = np.concatenate([model.train_users_, model.test_users_])
        n_out = len(model.cell_keys_) + 1 if model.config.objective == "classify" else 2
        model.net_ = _net(model.config, n_out)
        model.net_.load_state_dict(ckpt["state_dict"])
        model.net_.eval()
        return model

    def held_out(self, traj: Trajectories) -> np.ndarray:
        """Boolean mask over ``traj``'s people: True for those the model never trained on.

        People not seen at training time at all (a new file) count as held out.
        """
        self._check_fitted()
        labels = traj.users.astype(str) if traj.users.dtype.kind in "OUS" else traj.users
        train = self.train_users_.astype(str) if labels.dtype.kind in "OUS" else self.train_users_
        return ~np.isin(labels, train)
