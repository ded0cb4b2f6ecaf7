"""Issue 17: a refused job leaves no folder; job folders and uploads are pruned by age and total size."""

from __future__ import annotations

import base64
import os
import time

import pytest

from core.workflow.jobs import JobBusy, JobRegistry
from core.workflow.userdata import UPLOADS, USER_RELEASE, cleanup_uploads, save_upload


def test_busy_start_leaves_no_job_folder(tmp_path):
    jobs = JobRegistry(tmp_path)
    jobs.start("job-a", {"name": "a"})  # held by this (alive) process
    with pytest.raises(JobBusy):
        jobs.start("job-b", {"name": "b"})
    assert not jobs.job_dir("job-b").exists()
    assert jobs.last()["job"] == "job-a"


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_job_folders_pruned_by_age_and_size(tmp_path):
    jobs = JobRegistry(tmp_path)
    for i, (old, size) in enumerate([(30 * 86400, 10), (3600, 600), (60, 600)]):
        d = jobs.job_dir(f"j{i}")
        d.mkdir(parents=True)
        (d / "log").write_bytes(b"x" * size)
        age(d, old)
    assert jobs.prune(max_age_s=7 * 86400, max_total_bytes=1000) == 2  # j0 too old, then j1 for room
    assert [p.name for p in jobs.root.iterdir()] == ["j2"]


def test_uploads_quota_drops_the_oldest(tmp_path):
    url = "data:text/csv;base64," + base64.b64encode(b"x" * 400).decode()
    first = save_upload(tmp_path, [("a.csv", url)])
    age(first, 60)
    second = save_upload(tmp_path, [("b.csv", url)])
    assert cleanup_uploads(tmp_path, max_total_bytes=500) == 1
    assert [p.name for p in (tmp_path / USER_RELEASE / UPLOADS).iterdir()] == [second.name]


def test_a_server_started_job_streams_a_gzip_bomb_against_its_decompressed_cap(tmp_path, monkeypatch):
    """A gzip bomb in the inbox: the job stops with a message before any parser inflates it; nothing saved."""
    import gzip
    import json

    from core.errors import InputError
    from core.workflow import request as rq
    from core.workflow.isolate import Limits

    bomb = tmp_path / "inbox" / "stays.csv.gz"
    bomb.parent.mkdir()
    line = b"stay_time,day_of_week,arrival_time,is_holiday,mesh_id\n" + b"10,Monday,08:15,False,1\n" * 400_000
    bomb.write_bytes(gzip.compress(line, compresslevel=9))  # about 10 MB of text in a small file
    assert bomb.stat().st_size < len(line) / 50
    monkeypatch.setattr(rq, "JOB_LIMITS", Limits(max_bytes=1 << 20, max_rows=10**9))
    status = tmp_path / "status.json"
    req = rq.TrainRequest((str(bomb),), str(tmp_path), "bomb", "2016-10", anchors=None)
    with pytest.raises(InputError, match="once decompressed"):
        rq.run_worker(req, status_file=status, cancel_file=tmp_path / "cancel", under_job=True)
    assert json.loads(status.read_text())["state"] == "failed"
    assert not (tmp_path / "user").exists() or not any((tmp_path / "user").glob("*.geojson"))
