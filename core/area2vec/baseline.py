"""The public per-record trainer, written from SPEC §3, as a baseline for benchmarks and tests.

Stay records ``(area, token)`` are shuffled every epoch and fed in minibatches of 1,024 to an
embedding table (uniform init) and a zero-initialised bias-free decoder, with Adam (lr 0.01) on
the mean cross-entropy. This is what our count-matrix trainer is measured against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.constants import N_TOKENS


@dataclass(frozen=True)
class BaselineEpoch:
    """State after one epoch: plain data for the caller."""

    epoch: int
    seconds: float
    embeddings: np.ndarray
    decoder: np.ndarray


def train_per_record(
    area_index: np.ndarray,
    tokens: np.ndarray,
    n_areas: int,
    dim: int = 8,
    epochs: int = 10,
    batch_size: int = 1024,
    lr: float = 0.01,
    seed: int = 0,
    on_epoch: Callable[[BaselineEpoch], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train per record; returns ``(embeddings, decoder)``. ``on_epoch`` sees each epoch's state."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.Embedding(n_areas, dim)
    dec = torch.nn.Linear(dim, N_TOKENS, bias=False)
    with torch.no_grad():
        emb.weight.uniform_(-0.5, 0.5, generator=gen)
        dec.weight.zero_()
    opt = torch.optim.Adam([emb.weight, dec.weight], lr=lr)
    a = torch.from_numpy(np.asarray(area_index, dtype=np.int64))
    t = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(len(a), generator=gen)
        for s in range(0, len(a), batch_size):
            idx = perm[s : s + batch_size]
            opt.zero_grad()
            loss = loss_fn(dec(emb(a[idx])), t[idx])
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(
                BaselineEpoch(
                    epoch + 1, time.perf_counter() - t0, emb.weight.detach().numpy().copy(), dec.weight.detach().numpy().copy()
                )
            )
    return emb.weight.detach().numpy().copy(), dec.weight.detach().numpy().copy()
