"""Your own data into data/user: names, uploads, the inbox, one job at a time, kills, comparability."""

from __future__ import annotations

import base64
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.release.layout import discover, read_dataset
from core.workflow.jobs import JobBusy, JobRegistry
from core.workflow.userdata import (
    USER_RELEASE,
    UploadTooLarge,
    add_dataset,
    check_label,
    cleanup_incomplete,
    dataset_name,
    inbox_files,
    prepare,
    resolve_inbox,
    safe_file_name,
    save_upload,
    write_user_dataset,
)

ROOT = Path(__file__).resolve().parents[2]
KOBE = Path(__file__).resolve().parents[1] / "data" / "kobe"
COLS = ["stay_time", "day_of_week", "arrival_time", "is_holiday", "code", "mesh_size"]


def data_url(raw: bytes) -> str:
    return "data:text/csv;base64," + base64.b64encode(raw).decode()


@pytest.fixture
def my_stays(tiny_release, tmp_path) -> Path:
    """8,000 stays of the demo's Osaka, keyed by mesh code: a user's own month."""
    stays = pd.read_parquet(tiny_release / "demo" / "stays" / "osaka_2021_04.parquet")
    path = tmp_path / "mine.csv"
    stays.sample(8000, random_state=0)[COLS].to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- names, files, uploads


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "  ", "a b", "x" * 41, "1abc", "a\\b", "name.", "ab..c", None])
def test_bad_dataset_names_are_refused(bad):
    with pytest.raises(InputError, match="dataset name"):
        check_label(bad, "dataset name")


def test_good_names_make_the_dataset_name():
    assert dataset_name("kobe", "2016-10") == "kobe_2016-10"
    assert dataset_name(" Nagoya_x ", "2021") == "Nagoya_x_2021"
    with pytest.raises(InputError, match="period label"):
        dataset_name("kobe", "2016/10")
    with pytest.raises(InputError, match="period label"):
        dataset_name("kobe", "")


@pytest.mark.parametrize("bad", ["../etc/passwd.csv", "a/b.csv", "C:\\x\\y.csv", ".hidden.csv", "run.exe", "x..csv", ""])
def test_bad_upload_file_names(bad):
    with pytest.raises(InputError):
        safe_file_name(bad)


def test_upload_cap_refuses_big_files_and_writes_nothing(tmp_path):
    raw = b"stay_time,day_of_week,arrival_time,is_holiday,code\n" + b"10,Monday,08:00,False,533945263311\n" * 2000
    cap = len(raw) - 1
    with pytest.raises(UploadTooLarge) as e:
        save_upload(tmp_path, [("big.csv", data_url(raw))], cap=cap)
    assert "upload cap" in str(e.value) and "inbox" in str(e.value) and "big.csv" in str(e.value)
    uploads = tmp_path / USER_RELEASE / ".uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    folder = save_upload(tmp_path, [("big.csv", data_url(raw))], cap=len(raw))
    assert (folder / "big.csv").read_bytes() == raw


def test_upload_names_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(InputError):
        save_upload(tmp_path, [("ok.csv", data_url(b"a")), ("../../evil.csv", data_url(b"b"))])
    assert not (tmp_path / USER_RELEASE / ".uploads").exists() or not any((tmp_path / USER_RELEASE / ".uploads").iterdir())
    assert not (tmp_path.parent / "evil.csv").exists()


def test_inbox_reads_nothing_outside_its_folder(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "month.csv").write_text("x")
    (inbox / "notes.docx").write_text("x")
    secret = tmp_path / "secret.csv"
    secret.write_text("x")
    (inbox / "link.csv").symlink_to(secret)
    assert [f["name"] for f in inbox_files(tmp_path)] == ["month.csv"]
    assert resolve_inbox(tmp_path, "month.csv") == (inbox / "month.csv").resolve()
    for bad in ("../secret.csv", "link.csv", "/etc/passwd", "missing.csv", "notes.docx"):
        with pytest.raises(InputError):
            resolve_inbox(tmp_path, bad)


# ---------------------------------------------------------------- inputs


def test_mesh_id_stays_with_a_mapping_equal_code_stays(my_stays, tmp_path):
    frame = pd.read_csv(my_stays)
    codes = np.sort(frame["code"].unique())
    ids = {int(c): i for i, c in enumerate(codes)}
    keyed = frame.assign(mesh_id=frame["code"].map(ids)).drop(columns=["code", "mesh_size"])
    keyed.to_csv(tmp_path / "ids.csv", index=False)
    sizes = frame.drop_duplicates("code").set_index("code")["mesh_size"]
    pd.DataFrame(
        {"mesh_id": list(ids.values()), "code": list(ids.keys()), "mesh_size": sizes.loc[list(ids.keys())].to_numpy()}
    ).to_csv(tmp_path / "map.csv", index=False)
    a = prepare([my_stays]).counts
    b = prepare([tmp_path / "ids.csv"], mapping=tmp_path / "map.csv").counts
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.mesh_sizes, b.mesh_sizes)
    assert (a.counts != b.counts).nnz == 0
    with pytest.raises(InputError, match="mapping"):
        prepare([tmp_path / "ids.csv"])
    pd.read_csv(tmp_path / "map.csv").iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InputError) as e:
        prepare([tmp_path / "ids.csv"], mapping=tmp_path / "short.csv")
    assert e.value.values == [0] and "short.csv" in str(e.value)


def test_preview_reports_shares_and_an_optional_date_range(tiny_release, tmp_path):
    from core.workflow.userdata import preview

    stays = pd.read_parquet(tiny_release / "demo" / "stays" / "osaka_2021_04.parquet")
    part = stays[(stays["date"] >= "2021-04-05") & (stays["date"] <= "2021-04-11")]  # Monday .. Sunday
    part.to_csv(tmp_path / "week.csv", index=False)
    rep = preview([tmp_path / "week.csv"])
    assert rep["date_range"] == ["2021-04-05", "2021-04-11"]
    weekend = part["day_of_week"].isin(["Saturday", "Sunday"]) | part["is_holiday"]
    assert rep["weekend_holiday_share"] == pytest.approx(weekend.mean())
    assert rep["weekday_share"][6] == pytest.approx((part["day_of_week"] == "Sunday").mean())
    assert rep["stays"] == len(part) and rep["meshes"] == part["code"].nunique()
    assert len(rep["sample"]["codes"]) == rep["meshes"]  # small: every mesh is drawn
    s, w, n, e = rep["bounds"]
    assert s <= part["lat"].min() and n >= part["lat"].max() and w <= part["lon"].min() and e >= part["lon"].max()
    part.drop(columns=["date"]).to_csv(tmp_path / "nodate.csv", index=False)
    assert preview([tmp_path / "nodate.csv"])["date_range"] is None


def test_raw_gps_goes_through_stays_and_the_privacy_rule():
    rep = prepare(sorted(KOBE.glob("user*.csv")), min_users=10).report
    assert rep["kind"] == "gps" and rep["people"] == 11 and rep["fixes"] == 5074
    assert rep["date_range"] == ["2016-10-16", "2016-10-22"]
    assert rep["privacy"]["stays_out"] == rep["stays"] < rep["stays_detected"]
    with pytest.raises(InputError, match="more than 11 people"):
        prepare(sorted(KOBE.glob("user*.csv")), min_users=11)


# ---------------------------------------------------------------- training into data/user


def test_anchored_dataset_is_written_loadable_and_comparable_with_the_demo(data_copy, my_stays):
    from dashboard.catalog import Catalog

    seen = []
    out = add_dataset(data_copy, [my_stays], "mine", "2021-05", anchors="demo", progress=seen.append)
    assert out["dataset"] == "user/mine_2021-05"
    fractions = [p.fraction for p in seen]
    assert (
        fractions == sorted(fractions)
        and fractions[-1] == 1.0
        and {"prepare", "decoder", "embed", "write"} <= {p.stage for p in seen}
    )
    refs = {f"{r.release}/{r.name}": r for r in discover(data_copy)}
    mine, demo = read_dataset(refs["user/mine_2021-05"]), read_dataset(refs["demo/osaka_2021_04"])
    assert set(mine.labels) == {5, 10, 20} and mine.decoder is not None
    m = out["metrics"]
    assert m["anchor_release"] == "demo" and m["anchored"] and 0 < m["approximation_loss"] < 1
    # The same meshes sit close to their demo embeddings (trained on all of the month's stays).
    own = ~mine.complemented
    common, i, j = np.intersect1d(mine.codes[own], demo.codes[~demo.complemented], return_indices=True)
    a, b = mine.vectors[own][i], demo.vectors[~demo.complemented][j]
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    rank = (d < np.diag(d)[:, None]).sum(axis=1)  # rank of the same mesh among all demo meshes
    assert np.median(rank) < 0.1 * len(common), np.median(rank)
    # Trained free, the same meshes are not comparable: ranks near chance.
    add_dataset(data_copy, [my_stays], "minefree", "2021-05", anchors=None)
    free = read_dataset({f"{r.release}/{r.name}": r for r in discover(data_copy)}["user/minefree_2021-05"])
    f = free.vectors[~free.complemented][i]
    rank_free = ((np.linalg.norm(f[:, None, :] - b[None, :, :], axis=2)) < np.linalg.norm(f - b, axis=1)[:, None]).sum(axis=1)
    assert np.median(rank_free) > 3 * np.median(rank)
    # The dashboard searches similar areas within the anchored space.
    cat = Catalog(data_copy)
    assert cat.comparable("user/mine_2021-05") == ["demo/osaka_2021_04"]
    assert "user/mine_2021-05" in cat.comparable("demo/osaka_2021_04")
    assert cat.comparable("user/minefree_2021-05") == []
    # One shared space: the user's month is assigned to the demo's joint clusters, and the demo's
    # cluster -> district map holds on it (>= 0.85 of the month's own best map).
    truth = pd.read_parquet(data_copy / "demo" / "truth" / "meshes.parquet")
    types = truth[truth["dataset"] == "osaka_2021_04"].set_index("code")["district"]
    lab_demo, lab_mine = cat.labels("demo/osaka_2021_04", 10), cat.labels("user/mine_2021-05", 10)
    own_d = ~demo.complemented
    y_demo, y_mine = types.reindex(demo.codes[own_d]).to_numpy(), types.reindex(mine.codes[own]).to_numpy()

    def majority(labels, y):
        return {c: pd.Series(y[labels == c]).mode().iloc[0] for c in np.unique(labels)}

    def acc(mapping, labels, y):
        return np.mean(np.array([mapping.get(c, "?") for c in labels], dtype=object) == y)

    from_demo = acc(majority(lab_demo[own_d], y_demo), lab_mine[own], y_mine)
    assert from_demo >= 0.85 * acc(majority(lab_mine[own], y_mine), lab_mine[own], y_mine)
    assert cat.cluster_names("user/mine_2021-05", 10) == cat.cluster_names("demo/osaka_2021_04", 10)
    with pytest.raises(InputError, match="already exists"):
        add_dataset(data_copy, [my_stays], "mine", "2021-05", anchors="demo")
    with pytest.raises(InputError, match="anchor set"):
        add_dataset(data_copy, [my_stays], "other", "2021-05", anchors="nosuch")


def _write_then_die(root: str, codes, sizes, vectors, decoder):
    """Child process: commit model and metrics, then die (no cleanup) as the GeoJSON is renamed into place."""
    real = os.replace

    def dying(src, dst, *a, **k):
        if str(dst).endswith(".geojson"):
            os._exit(9)
        return real(src, dst, *a, **k)

    os.replace = dying
    write_user_dataset(Path(root), "dies_2021-05", codes, sizes, vectors, decoder, {"anchored": False})


def test_a_job_killed_mid_write_leaves_no_dataset(data_copy):
    ds = read_dataset(next(r for r in discover(data_copy) if r.name == "osaka_2021_04"))
    own = ~ds.complemented
    args = (str(data_copy / USER_RELEASE), ds.codes[own], ds.mesh_sizes[own], ds.vectors[own], ds.decoder)
    write_user_dataset(Path(args[0]), "lives_2021-05", *args[1:], {"anchored": False})  # a completed one
    p = mp.get_context("spawn").Process(target=_write_then_die, args=args)  # fork would hang in torch (NOTES)
    p.start()
    p.join(60)
    assert p.exitcode == 9
    city = data_copy / USER_RELEASE / "japan_city"
    assert (city / "model" / "dies_2021-05.pth").exists()  # the model got written before the kill...
    names = {r.name for r in discover(data_copy) if r.release == USER_RELEASE}
    assert names == {"lives_2021-05"}  # ...but no dataset exists without its GeoJSON
    removed = cleanup_incomplete(data_copy / USER_RELEASE)
    assert {"japan_city/model/dies_2021-05.pth", "japan_city/metrics/dies_2021-05.json"} <= set(removed)
    assert all(
        r.endswith(".tmp") for r in set(removed) - {"japan_city/model/dies_2021-05.pth", "japan_city/metrics/dies_2021-05.json"}
    )
    assert any(r.endswith(".tmp") for r in removed)  # the half-renamed GeoJSON's temporary file
    assert not list(city.rglob("*dies*")) and not list(city.rglob(".*.tmp"))
    from dashboard.catalog import Catalog

    assert Catalog(data_copy).keys() == ["demo/osaka_2021_04", "user/lives_2021-05"]  # a restart lists exactly the completed ones


def _worker_in_decoder_phase(data_dir: Path, stays: Path, name: str, status: Path) -> subprocess.Popen:
    """Start ``add-dataset`` with no stopping point and return once it reports the decoder phase."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "add-dataset",
            str(stays),
            "--data",
            str(data_dir),
            "--name",
            name,
            "--period",
            "2021-05",
            "--epochs",
            "1000000",
            "--tol",
            "0",
            "--status-file",
            str(status),
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (status.exists() and '"decoder"' in status.read_text()):
        time.sleep(0.1)
    assert '"decoder"' in status.read_text()
    return proc


def test_worker_killed_while_training_leaves_nothing(data_copy, my_stays, tmp_path):
    proc = _worker_in_decoder_phase(data_copy, my_stays, "killed", tmp_path / "status.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not [r for r in discover(data_copy) if r.release == USER_RELEASE]
    cleanup_incomplete(data_copy / USER_RELEASE)
    assert not list((data_copy / USER_RELEASE).rglob("killed*"))
    # The killed command-line job's lock is stale: the next look closes it as stopped.
    reg = JobRegistry(data_copy / USER_RELEASE)
    assert reg.current() is None and reg.last()["state"] == "stopped"


def test_worker_cancelled_by_sigterm_reports_cancelled(data_copy, my_stays, tmp_path):
    status = tmp_path / "status.json"
    proc = _worker_in_decoder_phase(data_copy, my_stays, "stopme", status)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 3
    assert '"cancelled"' in status.read_text()
    assert not [r for r in discover(data_copy) if r.release == USER_RELEASE]
    assert JobRegistry(data_copy / USER_RELEASE).current() is None  # the lock was released


# ---------------------------------------------------------------- one job at a time


def test_second_job_is_refused_while_the_first_runs(tmp_path):
    reg = JobRegistry(tmp_path / USER_RELEASE)
    reg.start("job-1", {"name": "first"})
    with pytest.raises(JobBusy, match="first"):
        reg.start("job-2", {"name": "second"})
    assert reg.current()["job"] == "job-1"
    reg.finish("job-1")
    reg.start("job-2", {"name": "second"})
    assert reg.current()["info"]["name"] == "second"


def _race(root: str, name: str, results) -> None:
    reg = JobRegistry(Path(root))
    try:
        reg.start(name, {"name": name})
        results.put((name, "started"))
        time.sleep(1.5)  # hold the lock while the other tries
        reg.finish(name)
    except JobBusy:
        results.put((name, "busy"))


def test_two_concurrent_requests_get_one_job(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / USER_RELEASE), f"job-{i}", q)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    got = sorted(q.get(timeout=5)[1] for _ in procs)
    assert got == ["busy", "started"]


def test_a_dead_jobs_lock_is_closed_as_stopped_or_cancelled(tmp_path):
    reg = JobRegistry(tmp_path / USER_RELEASE)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    reg.root.mkdir(parents=True)
    import json

    (reg.root / "active.json").write_text(
        json.dumps({"job": "old-1", "owner": dead.pid, "owner_started": 1.0, "info": {"name": "old"}})
    )
    reg.write_status("old-1", {"state": "running", "stage": "decoder"})
    assert reg.current() is None  # the processes are gone: not running
    assert reg.read_status("old-1")["state"] == "stopped"
    reg.start("new-1", {"name": "new"})  # and the lock is free again
    reg.finish("new-1")
    (reg.root / "active.json").write_text(
        json.dumps({"job": "old-2", "owner": dead.pid, "owner_started": 1.0, "info": {"name": "old"}})
    )
    reg.write_status("old-2", {"state": "running"})
    assert reg.cancel() is True
    assert reg.read_status("old-2")["state"] == "cancelled"
