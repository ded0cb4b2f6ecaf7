"""The next-location task's pieces, by hand: which record covers a time, the slot-mode baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.walkers.evaluate import _slot_mode, classify
from core.walkers.trajectories import covering_record, trajectories_from_frame


def test_covering_record_by_hand():
    # Person 0: records at 0 (60 min), 100 (30 min), 200 (10 min); person 1: at 50 (1000 min).
    uid = np.array([0, 0, 0, 1])
    start = np.array([0.0, 100.0, 200.0, 50.0])
    dur = np.array([60.0, 30.0, 10.0, 1000.0])
    key = uid * 1e8 + start
    anchor = np.array([0, 0, 0, 0, 1, 3, 2])
    tau = np.array([30.0, 70.0, 110.0, 205.0, 250.0, 900.0, 1000.0])
    # 30: inside record 0; 70: a gap; 110: record 1; 205: record 2; 250: after the last; 900: person 1's
    # long record; 1000: after person 0's last record (person 1's record must not be taken).
    assert covering_record(key, uid, start, dur, anchor, tau).tolist() == [0, -1, 1, 2, -1, 3, -1]


def test_slot_mode_is_the_most_occupied_cell_of_the_slot():
    # Person 0 spends 00:00-02:00 in cell (1,1) on days 0 and 1, and in (5,5) on day 2; person 1 always in (9,9).
    rows = [(0, d, t, 1, 1) for d in (0, 1) for t in range(4)] + [(0, 2, t, 5, 5) for t in range(4)]
    rows += [(1, d, t, 9, 9) for d in range(3) for t in range(4)]
    tr = trajectories_from_frame(pd.DataFrame(rows, columns=["uid", "d", "t", "x", "y"]), "h.csv")
    x, y = tr.km()
    km = np.stack([x, y], axis=1)
    mode = _slot_mode(tr, km, np.ones(len(tr), bool))
    # Runs of 4 slots are one record each (2 hours): every slot 0..3 is covered.
    assert sorted(mode.loc[0].index.tolist()) == [0, 1, 2, 3]
    np.testing.assert_allclose(mode.loc[(0, 2)].to_numpy(), [0.25, 0.25])  # cell (1,1) centre: 0.25 km
    np.testing.assert_allclose(mode.loc[(1, 0)].to_numpy(), [4.25, 4.25])


def test_classify_reports_majority_and_balance():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, bool), np.ones(100, bool)]
    x = np.c_[y * 2.0 + rng.normal(0, 1, 400), rng.normal(0, 1, 400)]
    train = np.arange(400) % 2 == 0
    r = classify(x, y, train, ~train)
    assert r["majority_accuracy"] == 0.75
    assert 0.8 < r["accuracy"] < 0.98 and r["balanced_accuracy"] > 0.65
    noise = classify(rng.normal(size=(400, 2)), y, train, ~train)
    assert noise["balanced_accuracy"] < 0.6
