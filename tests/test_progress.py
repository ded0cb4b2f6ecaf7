"""The progress type's helpers: ETA from measured rates, the status file, public error text, the terminal bar."""

from __future__ import annotations

import io
import json

import pytest

from core.errors import InputError
from core.progress import EtaClock, Progress, StatusFile, TerminalProgress, fanout, format_seconds, public_message, read_status


def test_eta_comes_from_the_measured_rate():
    clock = EtaClock(min_fraction=0.02, min_seconds=2.0)
    assert clock.update(0.0, 5.0) is None  # set-up before the first report does not count
    assert clock.update(0.01, 6.0) is None  # too little done to measure
    assert clock.update(0.05, 6.5) is None  # too short a measurement
    assert clock.update(0.10, 15.0) == pytest.approx(90.0)  # 10 % in 10 s -> 90 s for the other 90 %
    assert clock.update(0.55, 60.0) == pytest.approx(45.0)  # the rate is measured again with every report
    # A slower machine: the same fractions over twice the time, twice the ETA.
    slow = EtaClock()
    slow.update(0.0, 0.0)
    assert slow.update(0.55, 110.0) == pytest.approx(90.0)


def test_eta_does_not_go_back_with_the_fraction_and_ends_at_zero():
    clock = EtaClock()
    clock.update(0.0, 0.0)
    assert clock.update(0.5, 10.0) == pytest.approx(10.0)
    assert clock.update(0.4, 12.0) == pytest.approx(12.0)  # counted as 50 % done in 12 s
    assert clock.update(1.0, 20.0) == 0.0
    assert clock.update(float("nan"), 21.0) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, ""), (0.4, "0 s"), (42.2, "42 s"), (65, "1 min 05 s"), (3 * 3600 + 190, "3 h 03 min")]
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (OSError(28, "No space left on device", "/srv/area/data/.demo.x.tmp/stays/tokyo.parquet"), "tokyo.parquet"),
        (InputError("/home/ana/data/stays.csv", "no rows"), "stays.csv: no rows"),
        ('Traceback (most recent call last):\n  File "/usr/lib/python3/x.py", line 1\nValueError: bad', "ValueError: bad"),
        (MemoryError(), "MemoryError"),
    ],
)
def test_public_message_has_no_server_paths_nor_traceback(error, text):
    shown = public_message(error)
    assert text in shown
    assert "/srv" not in shown and "/home" not in shown and "/usr" not in shown and "Traceback" not in shown
    assert "\n" not in shown


def test_status_file_keeps_the_latest_report_and_the_end(tmp_path):
    path = tmp_path / "deep" / "status.json"
    assert read_status(path) is None
    status = StatusFile(path, interval=3600.0)
    status(Progress("stays", 1, 3, elapsed=1.0, fraction=0.1, eta=9.0, message="tokyo"))
    first = read_status(path)
    assert first is not None and first["state"] == "running" and first["progress"]["message"] == "tokyo"
    status(Progress("stays", 2, 3, fraction=0.2))  # same stage, within the interval: not written yet
    assert read_status(path)["progress"]["step"] == 1
    status(Progress("anchors", 0, 1, fraction=0.3))  # a new stage is written at once
    assert read_status(path)["progress"]["stage"] == "anchors"
    status.fail(OSError(28, "No space left on device", "/srv/x/y.parquet"))
    failed = read_status(path)
    assert failed["state"] == "failed" and "y.parquet" in failed["error"] and "/srv" not in failed["error"]
    assert Progress.from_dict(failed["progress"]).fraction == 0.3
    path.write_text("{half")
    assert read_status(path) is None
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary files left
    json.loads(json.dumps(first))


def test_terminal_shows_one_bar_for_the_whole_job_with_stage_and_eta():
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    seen: list[Progress] = []
    with TerminalProgress("demo", file=out) as bar:
        report = fanout(bar, None, seen.append)
        report(Progress("stays", 1, 23, elapsed=3.0, message="tokyo_2021_04: a month of stays", fraction=0.02))
        report(Progress("anchors", 120, 800, elapsed=40.0, message="fit 1 of 2, decoder 120/800", fraction=0.41, eta=57.6))
    text = out.getvalue()
    assert "demo  41%" in text and "anchors (fit 1 of 2, decoder 120/800)" in text and "ETA 58 s" in text
    assert "ETA estimating" in text and len(seen) == 2
