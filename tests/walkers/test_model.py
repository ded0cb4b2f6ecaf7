"""The trajectory model: learns a rule the stay-put baseline cannot, round-trips, cancels."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError, TrainingCancelled
from core.progress import Progress
from core.walkers.model import WalkerConfig, WalkerModel
from core.walkers.trajectories import trajectories_from_frame

TINY = WalkerConfig(d_model=32, n_heads=2, n_layers=1, context=16, steps=150, batch_size=32, lr=5e-3, warmup=10, seed=0)


@pytest.fixture(scope="module")
def trained():
    from tests.walkers.conftest import commute_frame

    tr = trajectories_from_frame(commute_frame(), "stays.csv")
    reports: list[Progress] = []
    model = WalkerModel(TINY).fit(tr, progress=reports.append)
    return tr, model, reports


def test_beats_stay_put_on_held_out_people(trained):
    tr, model, reports = trained
    held = model.held_out(tr)
    off = tr.offsets()
    # From every record of a held-out person but the last: where at the next record's start?
    idx = np.arange(len(tr))
    anchor = idx[held[tr.uid] & (idx < off[tr.uid + 1] - 1)]
    truth = model.km(tr)[anchor + 1]
    pred = model.predict_km(tr, anchor, tr.start[anchor + 1])
    model_err = np.linalg.norm(pred - truth, axis=1).mean()
    stay_err = np.linalg.norm(model.km(tr)[anchor] - truth, axis=1).mean()
    assert 2.8 < stay_err < 3.2  # work is 3 km east of home
    assert model_err < 0.5 * stay_err
    assert model.history_[-20:].mean() < 0.5 * model.history_[:5].mean()
    assert reports[-1].step == TINY.steps and reports[-1].stage == "walkers"
    assert model.n_params_ > 1000


def test_user_embeddings_mean_of_hidden_states_and_round_trip(trained, tmp_path):
    import torch

    tr, model, _ = trained
    emb = model.embed_users(tr)
    assert emb.shape == (tr.n_users, TINY.d_model)
    # Person 0 by hand: its records in one window, the mean of the final hidden states.
    off = tr.offsets()
    feats = model._prepare(tr).feats[off[0] : off[1]]
    with torch.inference_mode():
        h = model.net_.hidden(torch.from_numpy(feats[None]))[0].numpy()
    np.testing.assert_allclose(emb[0], h.mean(axis=0), rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "m")
    back = WalkerModel.load(tmp_path / "m")
    np.testing.assert_allclose(back.embed_users(tr), emb, rtol=1e-5, atol=1e-6)
    assert (back.held_out(tr) == model.held_out(tr)).all()
    assert back.config == model.config


def test_long_trajectories_are_read_in_windows(trained):
    tr, model, _ = trained
    # 12 records per person and a context of 16: a context of 5 reads each person in 3 windows.
    m5 = WalkerModel(WalkerConfig(**{**TINY.to_dict(), "context": 5, "steps": 3})).fit(tr)
    emb = m5.embed_users(tr)
    assert np.isfinite(emb).all() and emb.std(axis=0).mean() > 0


def test_cancel_and_bad_config(trained):
    tr, _, _ = trained
    with pytest.raises(TrainingCancelled):
        WalkerModel(TINY).fit(tr, cancel=lambda: True)
    with pytest.raises(InputError, match="objective"):
        WalkerConfig(objective="nope")
    with pytest.raises(InputError, match="d_model"):
        WalkerConfig(d_model=30, n_heads=4)


def test_classify_objective_predicts_cells(trained):
    tr, _, _ = trained
    m = WalkerModel(WalkerConfig(**{**TINY.to_dict(), "objective": "classify", "steps": 5})).fit(tr, level="1km")
    assert len(m.cell_keys_) > 10
    pred = m.predict_km(tr, np.arange(5), tr.start[:5] + 60)
    # Predictions are centroids of known cells.
    assert all(np.isclose(m.cell_km_[:-1], p).all(axis=1).any() for p in pred)
