"""Reading trajectories: HuMob masks and bad rows, stay tables, people splits."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.walkers.trajectories import (
    HUMOB,
    LATLON,
    read_trajectories,
    split_users,
    trajectories_from_frame,
)


def humob(rows: list[tuple[int, int, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["uid", "d", "t", "x", "y"])


GOOD = [
    (0, 0, 0, 10, 10),
    (0, 0, 1, 10, 10),  # same cell, next slot: one run with the first
    (0, 0, 5, 12, 10),
    (0, 1, 0, 999, 999),  # masked
    (1, 0, 3, 50, 60),
    (1, 2, 47, 51, 60),
    (1, 3, 0, 999, 999),  # masked
]


def test_humob_masks_dropped_and_runs_merged(tmp_path):
    path = tmp_path / "humob.csv.gz"
    with gzip.open(path, "wt") as fh:
        humob(GOOD).sample(frac=1.0, random_state=1).to_csv(fh, index=False)
    tr = read_trajectories(path)
    assert tr.space == HUMOB
    assert tr.n_users == 2
    assert len(tr) == 4  # 2 runs for uid 0, 2 records for uid 1; both masks gone
    assert not (tr.u == 999).any()
    assert tr.start.tolist() == [0.0, 150.0, 90.0, (2 * 48 + 47) * 30.0]
    assert tr.duration.tolist() == [60.0, 30.0, 30.0, 30.0]
    assert (tr.weekday == -1).all()  # days are anonymised: no weekday assumed
    slots = read_trajectories(path, merge_runs=False)
    assert len(slots) == 5


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ((0, 0, 48, 10, 10), "t", "slot out of range"),
        ((0, -1, 3, 10, 10), "d", "negative day"),
        ((0, 0, 3, 201, 10), "x", "cell out of range"),
        ((0, 0, 3, 10, 999), "y", "cell out of range"),  # half masked
        ((0, 0, 3, 0, 10), "x", "cell out of range"),
    ],
)
def test_humob_bad_rows_are_named(row, column, problem):
    rows = GOOD[:3] + [row] + GOOD[4:]
    with pytest.raises(InputError) as err:
        trajectories_from_frame(humob(rows), "h.csv")
    msg = str(err.value)
    assert f"column '{column}'" in msg and problem in msg
    assert "row 4" in msg  # the 4th data row


def test_humob_not_integer_is_named():
    frame = humob(GOOD).astype({"x": object})
    frame.loc[2, "x"] = "ten"
    with pytest.raises(InputError, match=r"column 'x': not an integer; at row 3 \('ten'\)"):
        trajectories_from_frame(frame, "h.csv")


def test_all_masked_one_user_no_user_column():
    with pytest.raises(InputError, match="all 2 records are masked"):
        trajectories_from_frame(humob([(0, 0, 0, 999, 999), (1, 0, 0, 999, 999)]), "h.csv")
    with pytest.raises(InputError, match="only one person"):
        trajectories_from_frame(humob([(0, 0, 0, 1, 1), (0, 0, 2, 3, 3)]), "h.csv")
    with pytest.raises(InputError, match="no user column"):
        trajectories_from_frame(pd.DataFrame({"lat": [35.0], "lon": [139.0], "date": ["2021-04-01"]}), "s.csv")


def test_stay_table_sorted_by_person_and_time(commute):
    tr = trajectories_from_frame(commute.assign(extra="ignored"), "stays.csv")
    assert tr.space == LATLON
    assert tr.n_users == 60 and len(tr) == 60 * 12
    assert (np.diff(tr.uid) >= 0).all()
    same = np.diff(tr.uid) == 0
    assert (np.diff(tr.start)[same] > 0).all()
    # 2021-04-05 is a Monday: the first record of each person is Monday 08:00.
    off = tr.offsets()
    assert (tr.weekday[off[:-1]] == 0).all()
    assert tr.start[off[0]] == 8 * 60
    x, y = tr.km()
    assert 8 < np.ptp(x) < 15 and 8 < np.ptp(y) < 12


def test_stay_table_bad_time_is_named(commute):
    bad = commute.copy()
    bad.loc[5, "arrival_time"] = "25:00"
    with pytest.raises(InputError, match=r"column 'arrival_time': not a time of day; at row 6"):
        trajectories_from_frame(bad, "stays.csv")


def test_split_by_person_has_no_overlap():
    test = split_users(1000, 0.25, seed=3)
    assert test.sum() == 250
    again = split_users(1000, 0.25, seed=3)
    assert (test == again).all()
    other = split_users(1000, 0.25, seed=4)
    assert (test != other).any()
    with pytest.raises(InputError):
        split_users(1, 0.25, 0)


def test_model_split_has_no_user_overlap(commute):
    from core.walkers.model import WalkerConfig, WalkerModel

    tr = trajectories_from_frame(commute, "stays.csv")
    m = WalkerModel(WalkerConfig(steps=2, d_model=16, n_heads=2, n_layers=1, context=8)).fit(tr)
    assert len(np.intersect1d(m.train_users_, m.test_users_)) == 0
    assert len(m.train_users_) + len(m.test_users_) == tr.n_users
    assert m.held_out(tr).sum() == len(m.test_users_) == 15


def test_arrivals_with_different_offsets_keep_their_local_time():
    """A trip across time zones: each stay keeps its own wall time (a pandas error before)."""
    trip = {
        "lat": [35.68, 51.50, 51.51],
        "lon": [139.76, -0.12, -0.13],
        "arrival": ["2021-04-05T08:00:00+09:00", "2021-04-06T10:30:00+01:00", "2021-04-07T09:00Z"],
    }
    frame = pd.concat([pd.DataFrame({"user_id": u, **trip}) for u in (1, 2)], ignore_index=True)
    tr = trajectories_from_frame(frame, "trip.csv")
    assert tr.start.tolist() == [8 * 60, 24 * 60 + 10 * 60 + 30, 48 * 60 + 9 * 60] * 2
    assert tr.weekday.tolist() == [0, 1, 2] * 2
    bad = frame.assign(arrival=[*trip["arrival"], "2021-04-05T08:00:00+09:00", "soon", "2021-04-07T09:00Z"])
    with pytest.raises(InputError, match=r"column 'arrival': not a time; at row 5"):
        trajectories_from_frame(bad, "trip.csv")
