import numpy as np
import pytest

from core.area2vec.tokens import duration_class, make_tokens, time_bin, token_parts
from core.mobility.stays import read_stays

# Hand-computed: token = 84 * day_type + 7 * (hour // 2) + duration class, row by row of the
# official sample (e.g. row 14: Friday 16:02 holiday, 9 min -> 84 + 7*8 + 0 = 140;
# row 15: Sunday 07:16, 64 min -> 84 + 7*3 + 2 = 107; row 37: Thursday 07:48, 621 min -> 21 + 5 = 26).
OFFICIAL_TOKENS = [
    42,
    56,
    133,
    21,
    35,
    28,
    56,
    35,
    49,
    21,
    35,
    49,
    35,
    133,
    140,
    107,
    29,
    133,
    140,
    119,
    49,
    147,
    63,
    21,
    49,
    64,
    51,
    21,
    42,
    105,
    133,
    63,
    23,
    56,
    31,
    56,
    42,
    26,
    56,
    70,
]


def test_official_sample_tokens(official_stays):
    recs = read_stays(official_stays)
    assert recs.tokens().tolist() == OFFICIAL_TOKENS


def test_official_sample_counts(official_stays):
    counts = read_stays(official_stays).to_counts()
    assert counts.keys.tolist() == [0, 1, 2, 3]
    dense = counts.dense()
    assert dense.sum(axis=1).tolist() == [10, 10, 10, 10]
    # area 3 holds tokens 63, 23, 56, 31, 56, 42, 26, 56, 70 and 133 (row 30): 56 three times
    assert dense[3, 56] == 3 and dense[3, 133] == 1 and dense[3, 26] == 1
    assert dense[0, 21] == 2 and dense[0, 35] == 2 and dense[0, 56] == 2


@pytest.mark.parametrize(
    "minutes, cls",
    [
        (0, 0),
        (30, 0),
        (30.5, 1),
        (31, 1),
        (60, 1),
        (61, 2),
        (120, 2),
        (121, 3),
        (240, 3),
        (241, 4),
        (360, 4),
        (361, 5),
        (720, 5),
        (721, 6),
        (10_000, 6),
    ],
)
def test_duration_class_bounds(minutes, cls):
    assert duration_class(np.array([minutes]))[0] == cls


@pytest.mark.parametrize("minute, b", [(0, 0), (119, 0), (120, 1), (13 * 60 + 43, 6), (23 * 60 + 59, 11)])
def test_time_bins(minute, b):
    assert time_bin(np.array([minute]))[0] == b


def test_day_type_weekend_and_holiday():
    # Monday, Saturday, Sunday, Wednesday-holiday; all 08:00, 45 minutes (class 1, bin 4)
    tok = make_tokens(np.array([45] * 4), np.array([480] * 4), np.array([0, 5, 6, 2]), np.array([False, False, False, True]))
    assert tok.tolist() == [29, 113, 113, 113]


def test_token_parts_round_trip():
    t = np.arange(168)
    d, b, c = token_parts(t)
    assert (84 * d + 7 * b + c == t).all() and d.max() == 1 and b.max() == 11 and c.max() == 6


def test_synthetic_stays_carry_their_tokens():
    from core.mobility.stays import stays_from_frame
    from core.simulation.synthetic import stays_from_tokens

    tokens = np.arange(168).repeat(20)
    mesh = np.arange(len(tokens)) % 7
    recs = stays_from_frame(stays_from_tokens(mesh, tokens, seed=4))
    assert (recs.tokens() == tokens).all()
    assert (recs.area_keys == mesh).all()
