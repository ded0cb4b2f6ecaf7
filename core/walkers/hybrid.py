"""The "Experiment 21" hybrid encoder, done with care: transformer blocks + BiLSTM + attention pooling.

A person's last ``context`` records (position, time of day, weekday when known, log duration) go
through pre-LN transformer blocks and a bidirectional LSTM; an attention pooling over the valid
records gives the person's vector. Training (seeded, people split by person, never by record):
the pooled vector of a window plus the time of the next record predicts where that next record is
(Euclidean loss on normalised km). Padding is a mask (attention and pooling never see a padded
slot; the LSTM is packed), never a value such as 999; the person id is never a feature.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.walkers.model import _time_features
from core.walkers.trajectories import Trajectories, split_users


@dataclass(frozen=True)
class HybridConfig:
    d: int = 64  # model width; the user vector is 2 * lstm wide
    layers: int = 2
    heads: int = 4
    lstm: int = 32  # per direction
    context: int = 48  # records per window
    steps: int = 600
    batch: int = 64
    lr: float = 2e-3
    test_share: float = 0.25
    seed: int = 0


N_FEATURES = 8  # x, y, 5 time features, log duration


class HybridEncoder:
    """Transformer + BiLSTM with attention pooling (scikit-learn conventions; learned attributes end in ``_``)."""

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()

    def _features(self, traj: Trajectories) -> tuple[np.ndarray, np.ndarray]:
        x, y = traj.km(self.origin_)
        xy = (np.column_stack([x, y]) - self.mean_) / self.scale_
        t = _time_features(traj.start, traj.weekday)
        feats = np.column_stack([xy, t, np.log1p(traj.duration) / 7.0]).astype(np.float32)
        return feats, xy.astype(np.float32)

    def _net(self) -> Any:
        import torch
        from torch import nn

        c = self.config

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inp = nn.Sequential(nn.Linear(N_FEATURES, c.d), nn.GELU(), nn.Linear(c.d, c.d))
                self.pos = nn.Embedding(c.context, c.d)
                layer = nn.TransformerEncoderLayer(c.d, c.heads, 2 * c.d, dropout=0.0, batch_first=True, norm_first=True)
                self.blocks = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
                self.lstm = nn.LSTM(c.d, c.lstm, batch_first=True, bidirectional=True)
                self.att = nn.Linear(2 * c.lstm, 1)
                self.head = nn.Sequential(nn.Linear(2 * c.lstm + 5, c.d), nn.GELU(), nn.Linear(c.d, 2))

            def encode(self, feats, lengths):
                b, n, _ = feats.shape
                pad = torch.arange(n)[None, :] >= lengths[:, None]
                h = self.inp(feats) + self.pos(torch.arange(n))[None]
                h = self.blocks(h, src_key_padding_mask=pad)
                packed = nn.utils.rnn.pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
                out, _ = self.lstm(packed)
                out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=n)
                score = self.att(out).squeeze(-1).masked_fill(pad, float("-inf"))
                w = torch.softmax(score, dim=1)
                return (w.unsqueeze(-1) * out).sum(1)

            def forward(self, feats, lengths, query):
                return self.head(torch.cat([self.encode(feats, lengths), query], dim=1))

        return Net()

    def _windows(self, feats: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Left-aligned windows ``[starts, ends)`` (at most ``context`` long), zero-filled past their length (masked)."""
        n = self.config.context
        lengths = np.minimum(ends - starts, n)
        idx = starts[:, None] + np.arange(n)[None, :]
        valid = np.arange(n)[None, :] < lengths[:, None]
        out = np.zeros((len(starts), n, feats.shape[1]), np.float32)
        out[valid] = feats[idx[valid]]
        return out, lengths

    def fit(self, traj: Trajectories) -> HybridEncoder:
        import torch

        from core.threads import torch_threads

        torch_threads()
        c = self.config
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        self.origin_ = traj.default_origin()
        x, y = traj.km(self.origin_)
        test = split_users(traj.n_users, c.test_share, c.seed)
        train_rec = ~test[traj.uid]
        xy = np.column_stack([x, y])[train_rec]
        self.mean_ = xy.mean(axis=0)
        self.scale_ = float(xy.std()) or 1.0
        feats, pos = self._features(traj)
        off = traj.offsets()
        counts = np.diff(off)
        pool = np.flatnonzero(~test & (counts >= 2))
        net = self._net()
        opt = torch.optim.AdamW(net.parameters(), lr=c.lr)
        t0 = time.perf_counter()
        history = []
        for _step in range(c.steps):
            users = rng.choice(pool, c.batch)
            target = off[users] + 1 + (rng.random(c.batch) * (counts[users] - 1)).astype(np.int64)
            starts = np.maximum(off[users], target - c.context)
            w, lengths = self._windows(feats, starts, target)
            query = torch.from_numpy(feats[target, 2:7])
            pred = net(torch.from_numpy(w), torch.from_numpy(lengths), query)
            loss = torch.linalg.norm(pred - torch.from_numpy(pos[target]), dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
        self.net_ = net
        self.test_users_ = np.flatnonzero(test)
        self.history_ = np.asarray(history)
        self.seconds_ = time.perf_counter() - t0
        return self

    def embed_users(self, traj: Trajectories, batch: int = 512) -> np.ndarray:
        """Each person's vector: the attention-pooled BiLSTM output over their last ``context`` records."""
        import torch

        if not hasattr(self, "net_"):
            raise RuntimeError("HybridEncoder is not fitted: call fit() first")
        feats, _ = self._features(traj)
        off = traj.offsets()
        ends = off[1:]
        starts = np.maximum(off[:-1], ends - self.config.context)
        out = np.zeros((traj.n_users, 2 * self.config.lstm), np.float32)
        has = np.flatnonzero(ends > off[:-1])
        self.net_.eval()
        with torch.no_grad():
            for i in range(0, len(has), batch):
                u = has[i : i + batch]
                w, lengths = self._windows(feats, starts[u], ends[u])
                out[u] = self.net_.encode(torch.from_numpy(w), torch.from_numpy(lengths)).numpy()
        return out

    def config_dict(self) -> dict:
        return asdict(self.config)
