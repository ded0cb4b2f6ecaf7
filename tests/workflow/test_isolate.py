"""Issue 17: an upload's preview runs in a worker process with memory, byte and row limits."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.errors import InputError
from core.workflow.isolate import LimitExceeded, Limits, run_limited
from core.workflow.userdata import preview


def pid() -> int:
    return os.getpid()


def hog(n_bytes: int) -> int:
    return int(np.ones(n_bytes, np.uint8).sum())


def bad_input() -> None:
    raise InputError("x.csv", "broken on purpose", column="code", rows=[3])


def crash() -> None:
    raise KeyError("boom")


def test_runs_in_another_process():
    assert run_limited(pid) != os.getpid()


def test_memory_cap_gives_a_clear_message():
    with pytest.raises(LimitExceeded, match="more than 2,048 MB of memory"):
        run_limited(hog, 4 << 30, limits=Limits(memory_mb=2048))


def test_errors_come_back_as_input_errors():
    with pytest.raises(InputError, match="x.csv column 'code': broken on purpose; at row 3"):
        run_limited(bad_input)
    with pytest.raises(InputError, match="KeyError"):
        run_limited(crash)


def test_preview_limits_rows_and_bytes(tmp_path):
    p = tmp_path / "stays.csv"
    rows = ["30,Monday,09:00,False,5339450911\n"] * 500
    p.write_text("stay_time,day_of_week,arrival_time,is_holiday,code\n" + "".join(rows))
    rep = run_limited(preview, [p], paths=[p])
    assert rep["stays"] == 500 and rep["meshes"] == 1
    with pytest.raises(LimitExceeded.__mro__[1], match="more than 100 rows"):
        run_limited(preview, [p], paths=[p], limits=Limits(max_rows=100))
    with pytest.raises(InputError, match="more than 0 MB"):
        run_limited(preview, [p], paths=[p], limits=Limits(max_bytes=1000))
