"""Torch thread counts: the cores not busy with other work, never more than the available cores."""

from __future__ import annotations

import pytest

from core import threads


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.0, 2), (2, 1.0, 2), (2, 1.5, 2), (2, 2.0, 1), (2, 12.0, 1), (16, 10.0, 7), (16, 0.3, 16), (1, 0.0, 1)],
)
def test_free_cores_leaves_the_other_work_its_cores(monkeypatch, cores, load, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert threads.free_cores(load) == expected


def test_torch_threads_follows_the_load_unless_told(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.delenv(threads.ENV, raising=False)
    try:
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
        assert threads.torch_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
        assert threads.torch_threads() == 2
        monkeypatch.setenv(threads.ENV, "1")
        assert threads.torch_threads() == 1  # an explicit count wins
        assert threads.torch_threads(8) == 2  # never more than the cores
    finally:
        torch.set_num_threads(before)
