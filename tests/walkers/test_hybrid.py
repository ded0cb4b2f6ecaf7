"""The hybrid encoder (transformer + BiLSTM, attention pooling): seeded, split by person, padding masked."""

from __future__ import annotations

import numpy as np
import pytest

from core.walkers.hybrid import HybridConfig, HybridEncoder
from core.walkers.trajectories import trajectories_from_frame

from .test_explore import mixed_frame


@pytest.fixture(scope="module")
def fitted():
    traj = trajectories_from_frame(mixed_frame()[0], "mixed")
    return traj, HybridEncoder(HybridConfig(steps=40, context=8, batch=16, d=16, lstm=8, heads=2, layers=1)).fit(traj)


def test_embeds_everyone_and_holds_people_out(fitted):
    traj, model = fitted
    emb = model.embed_users(traj)
    assert emb.shape == (80, 16) and np.isfinite(emb).all() and emb.std(axis=0).min() > 0
    assert len(model.test_users_) == 20 and np.isfinite(model.history_).all()


def test_a_persons_vector_does_not_depend_on_padding_or_the_batch(fitted):
    traj, model = fitted
    everyone = model.embed_users(traj)
    # Person 7 embedded alone, in a batch of 3, and with a longer-window neighbour: the same vector.
    for batch in (1, 3, 512):
        assert np.allclose(model.embed_users(traj, batch=batch)[7], everyone[7], atol=1e-5)
    short = traj.take(~((traj.uid == 7) & (traj.start > traj.start[traj.uid == 7].min() + 3 * 1440)))
    # a person with fewer records (shorter window, more padding) still gets a finite, different vector
    alone = model.embed_users(short)[7]
    assert np.isfinite(alone).all() and not np.allclose(alone, everyone[7])


def test_training_is_seeded(fitted):
    traj, model = fitted
    again = HybridEncoder(model.config).fit(traj)
    assert np.allclose(again.history_, model.history_) and np.allclose(again.embed_users(traj), model.embed_users(traj))


def test_embedding_before_fit_is_refused(fitted):
    with pytest.raises(RuntimeError, match="not fitted"):
        HybridEncoder().embed_users(fitted[0])
