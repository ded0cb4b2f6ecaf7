"""The Dask path gives the single-machine path's results: stays, training rows and counts (LocalCluster, 2 workers)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.distributed import EngineOptions, local_counts, run_counts, run_meshes, run_stays
from core.errors import CoreError, InputError
from core.mobility.gps import GpsOptions, gps_to_stays
from core.mobility.privacy import apply_privacy
from core.mobility.stays import read_counts, write_counts
from core.progress import Progress
from core.simulation.fixes import person_fixes, shared_places

KOBE = Path(__file__).resolve().parent.parent / "data" / "kobe"
STAY_KEY = ["user_id", "arrival"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
        Client(lc) as client,
    ):
        yield lc, client


@pytest.fixture(scope="module")
def engine(cluster) -> EngineOptions:
    return EngineOptions(engine="dask", scheduler=cluster[0].scheduler_address, chunk_rows=20_000)


def _places() -> np.ndarray:
    """Ten popular places apart, then a district of 40 less popular places spread over one 250 m mesh.

    The district's 50 m meshes have a few people each (some pass the rule, most not); together they
    pass at 250 m.
    """
    from core.geo.meshcode import code_bounds, latlon_to_code

    apart = shared_places(10, seed=1)
    mesh = latlon_to_code(np.array([35.70125]), np.array([139.70281]), 250)
    south, west, north, east = (float(v[0]) for v in code_bounds(mesh, 250))
    rng = np.random.default_rng(2)
    margin = 0.0002
    district = np.column_stack([rng.uniform(south + margin, north - margin, 40), rng.uniform(west + margin, east - margin, 40)])
    return np.vstack([apart, district])


@pytest.fixture(scope="module")
def split_fixes(tmp_path_factory) -> Path:
    """Fixes of 120 people in 3 files by time (so every person's fixes span files), CSV and Parquet.

    The last file's rows are shuffled and it repeats some fixes of the first file (duplicates across
    files), and holds (0, 0) fixes and single-fix spikes.
    """
    d = tmp_path_factory.mktemp("split")
    f = person_fixes(np.arange(120), 1500, _places(), seed=3)
    rng = np.random.default_rng(4)
    spikes = rng.choice(len(f), 40, replace=False)
    f.loc[spikes, "lat"] += 0.05
    t = f["timestamp"].to_numpy()
    window = np.searchsorted(np.quantile(t, [1 / 3, 2 / 3]), t)
    first = f[window == 0].copy()
    text = first.copy()
    text["timestamp"] = pd.to_datetime(text["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    text.to_csv(d / "a.csv", index=False)
    f[window == 1].to_parquet(d / "b.parquet", row_group_size=15_000)
    dups = first.sample(500, random_state=5).assign(lat=lambda x: x["lat"] + 1e-4)
    island = first.sample(30, random_state=6).assign(lat=0.0, lon=0.0, timestamp=lambda x: x["timestamp"] + 7)
    last = pd.concat([f[window == 2], dups, island]).sample(frac=1.0, random_state=7)
    last.to_parquet(d / "c.parquet", row_group_size=20_000)
    return d


def _sorted(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable", ignore_index=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_split_fixes_really_split_people(split_fixes):
    users = [set(pd.read_parquet(split_fixes / n)["user_id"]) for n in ("b.parquet", "c.parquet")]
    users.append(set(pd.read_csv(split_fixes / "a.csv")["user_id"]))
    assert len(users[0] & users[1] & users[2]) == 120


def test_kobe_stays_equal_single_machine(engine, tmp_path):
    out = tmp_path / "stays.parquet"
    report = run_stays([KOBE], out, GpsOptions(), engine)
    local, _ = gps_to_stays(KOBE)
    got = pd.read_parquet(out)
    assert report["rows"] == len(local) == 557
    pd.testing.assert_frame_equal(_sorted(got, STAY_KEY), _sorted(local, STAY_KEY))


def test_kobe_training_rows_equal_single_machine(engine, tmp_path):
    out = tmp_path / "training.csv"
    run_stays([KOBE], out, GpsOptions(), engine, privacy=10)
    local, report = apply_privacy(gps_to_stays(KOBE)[0], 10)
    got = pd.read_csv(out)
    assert report["meshes_50m"] + report["meshes_250m"] == 5 and len(got) == report["stays_out"]
    key = ["code", "arrival_time", "day_of_week", "stay_time"]
    pd.testing.assert_frame_equal(_sorted(got, key), _sorted(local, key).astype(got.dtypes.to_dict()))


def test_split_files_stays_equal(engine, split_fixes, tmp_path):
    out = tmp_path / "stays.parquet"
    run_stays([split_fixes], out, GpsOptions(), engine)
    local, report = gps_to_stays(split_fixes)
    assert report["dropped_duplicates"] == 500 and report["dropped_null_island"] == 30 and report["dropped_spikes"] > 0
    got = pd.read_parquet(out)
    assert len(local) > 1000
    pd.testing.assert_frame_equal(_sorted(got, STAY_KEY), _sorted(local, STAY_KEY))


def test_split_files_counts_equal_and_train_reads_them(engine, split_fixes, tmp_path):
    out = tmp_path / "counts.parquet"
    glob_pattern = str(split_fixes / "*.*")
    report = run_counts([glob_pattern], out, 10, engine)
    counts, local_report = local_counts(split_fixes, 10)
    assert local_report["privacy"]["meshes_50m"] > 5 and local_report["privacy"]["meshes_250m"] >= 1
    assert report["privacy"]["meshes_50m"] == local_report["privacy"]["meshes_50m"]
    assert report["privacy"]["meshes_250m"] == local_report["privacy"]["meshes_250m"]
    write_counts(counts, tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "local.parquet"))
    back = read_counts(out)
    assert np.array_equal(back.keys, counts.keys) and np.array_equal(back.mesh_sizes, counts.mesh_sizes)
    assert (back.counts != counts.counts).nnz == 0
    # A national run ends in one training on the count table.
    assert main(["train", str(out), "--out", str(tmp_path / "run"), "--free", "--epochs", "30", "--quiet"]) == 0
    emb = pd.read_csv(tmp_path / "run" / "embeddings.csv")
    assert np.array_equal(np.sort(emb["code"].to_numpy()), counts.keys)


NAMES_ALIKE = ["7", "007", "7.0", "p1", "P1", "p1 ", "東京", "  "]  # one digit apart, case, a space; the last is blank


@pytest.mark.parametrize("shuffle, codes", [("p2p", True), ("tasks", True), ("p2p", False)])
def test_people_named_alike_stay_apart_in_every_chunk(cluster, shuffle, codes, tmp_path, monkeypatch):
    """Each chunk names its people in its own order (its own dictionary of person codes): stays and
    counts still equal the single machine's, and the blank-named person is counted by nobody; the
    same with names shuffled as text."""
    from core.distributed import kernels

    monkeypatch.setattr(kernels, "names_as_codes", lambda *_: codes)
    f = person_fixes(np.arange(len(NAMES_ALIKE)), 1200, _places()[:3], seed=9, own_places=2)
    f["user_id"] = np.asarray(NAMES_ALIKE, dtype=object)[f["user_id"].str[1:].astype(int).to_numpy()]
    t = f["timestamp"].to_numpy()
    window = np.searchsorted(np.quantile(t, [1 / 3, 2 / 3]), t)
    f[window == 0].to_parquet(tmp_path / "a.parquet", row_group_size=500)
    f[window == 1].iloc[::-1].to_parquet(tmp_path / "b.parquet", row_group_size=500)  # people in reverse order
    f[window == 2].sample(frac=1.0, random_state=10).to_parquet(tmp_path / "c.parquet", row_group_size=500)
    files = [tmp_path / n for n in ("a.parquet", "b.parquet", "c.parquet")]
    small = EngineOptions(engine="dask", scheduler=cluster[0].scheduler_address, chunk_rows=1_000, shuffle=shuffle)
    run_stays(files, tmp_path / "stays.parquet", GpsOptions(), small)
    local, _ = gps_to_stays(files)
    got = pd.read_parquet(tmp_path / "stays.parquet")
    assert set(local["user_id"]) == set(NAMES_ALIKE)
    pd.testing.assert_frame_equal(_sorted(got, STAY_KEY), _sorted(local, STAY_KEY))
    report = run_counts(files, tmp_path / "counts.parquet", 2, small)
    assert report["people_as"] == ("codes" if codes else "text")
    counts, local_report = local_counts(files, 2)
    assert local_report["privacy"]["stays_without_person"] == (local["user_id"] == "  ").sum() > 0
    assert report["counts"]["stays"] == counts.counts.sum() > 0
    write_counts(counts, tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "counts.parquet"), pd.read_parquet(tmp_path / "local.parquet"))


def test_names_travel_as_codes_only_when_chunks_hold_few_people(tmp_path):
    from core.distributed.kernels import input_chunks, names_as_codes

    f = person_fixes(np.arange(40), 1000, _places(), seed=11)  # by person: 40 people in 40,000 rows
    f.to_parquet(tmp_path / "by_person.parquet", row_group_size=10_000)
    f.sort_values("timestamp", kind="stable").to_csv(tmp_path / "by_time.csv", index=False)
    by_person = input_chunks([tmp_path / "by_person.parquet"], 10_000)
    by_time = input_chunks([tmp_path / "by_time.csv"], 10_000)
    assert names_as_codes(by_person, 40, GpsOptions())  # 10 people a chunk x 40 partitions <= 10,000 rows / 2
    assert not names_as_codes(by_person, 1_000, GpsOptions())
    assert not names_as_codes(by_time, 200, GpsOptions())  # every chunk holds all 40 people


def test_meshes_from_stay_files_equal(engine, split_fixes, tmp_path):
    stays, _ = gps_to_stays(split_fixes)
    half = len(stays) // 2  # two stay files, people split across them
    stays.iloc[:half].to_parquet(tmp_path / "s1.parquet")
    stays.iloc[half:].to_parquet(tmp_path / "s2.parquet")
    out = tmp_path / "training.parquet"
    report = run_meshes([tmp_path / "s1.parquet", tmp_path / "s2.parquet"], out, 10, engine)
    local, local_report = apply_privacy(stays, 10)
    assert report["rows"] == local_report["stays_out"]
    key = ["code", "arrival_time", "day_of_week", "stay_time"]
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(out), key), _sorted(local, key))


def test_cli_counts_local_and_dask_agree(engine, split_fixes, tmp_path):
    stays, _ = gps_to_stays(split_fixes)
    stays.to_parquet(tmp_path / "stays.parquet")
    a, b = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    assert main(["counts", str(tmp_path / "stays.parquet"), "--out", str(a), "--quiet"]) == 0
    args = ["counts", str(tmp_path / "stays.parquet"), "--out", str(b), "--quiet", "--engine", "dask"]
    assert main([*args, "--scheduler", engine.scheduler]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))


def test_cli_stays_and_meshes_on_dask_equal_local(engine, tmp_path, capsys):
    addr = ["--engine", "dask", "--scheduler", engine.scheduler]
    assert main(["stays", str(KOBE), "--out", str(tmp_path / "local.parquet")]) == 0
    assert main(["stays", str(KOBE), "--out", str(tmp_path / "dask.parquet"), *addr]) == 0
    assert "557 stays" in capsys.readouterr().out
    local, dask = (pd.read_parquet(tmp_path / n) for n in ("local.parquet", "dask.parquet"))
    pd.testing.assert_frame_equal(_sorted(dask, STAY_KEY), _sorted(local, STAY_KEY))
    for engine_args, name in (([], "m_local.csv"), (addr, "m_dask.csv")):
        assert (
            main(["meshes", str(tmp_path / "local.parquet"), "--out", str(tmp_path / name), "--min-users", "5", *engine_args])
            == 0
        )
    key = ["code", "arrival_time", "day_of_week", "stay_time"]
    a, b = (_sorted(pd.read_csv(tmp_path / n), key) for n in ("m_local.csv", "m_dask.csv"))
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)


def test_bad_row_in_a_later_chunk_names_the_file_row_and_writes_nothing(engine, tmp_path):
    f = person_fixes(np.arange(40), 1000, _places(), seed=8)
    f.iloc[:10_000].to_parquet(tmp_path / "a.parquet")
    bad = f.iloc[10_000:].reset_index(drop=True)
    bad.loc[25_000 - 1, "lat"] = 95.0  # row 25,000 of b.parquet: in its third chunk of 10,000 rows
    bad.to_parquet(tmp_path / "b.parquet", row_group_size=5_000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    small_chunks = EngineOptions(engine="dask", scheduler=engine.scheduler, chunk_rows=10_000)
    with pytest.raises(InputError) as e:
        run_counts([tmp_path / "a.parquet", tmp_path / "b.parquet"], out_dir / "counts.parquet", 10, small_chunks)
    assert e.value.source == "b.parquet" and e.value.column == "lat" and e.value.rows == [25_000]
    assert list(out_dir.iterdir()) == []


def test_unreachable_scheduler_is_an_error_not_a_traceback(tmp_path, capsys):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(
        [
            "counts",
            str(KOBE),
            "--out",
            str(tmp_path / "c.parquet"),
            "--engine",
            "dask",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--connect-timeout",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err
    assert "Traceback" not in err and not (tmp_path / "c.parquet").exists()


def test_killed_worker_leaves_the_right_output_or_nothing(cluster, engine, split_fixes, tmp_path):
    lc, client = cluster
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed: list[int] = []

    def kill_once(p: Progress) -> None:
        if p.stage == "stays" and p.step >= 1 and not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "counts.parquet"
    try:
        run_counts(
            [split_fixes], out, 10, EngineOptions(engine="dask", scheduler=engine.scheduler, chunk_rows=5_000), progress=kill_once
        )
    except CoreError:
        assert list(out_dir.iterdir()) == []  # failed: nothing written, no temporary file left
    else:
        counts, _ = local_counts(split_fixes, 10)
        write_counts(counts, tmp_path / "local.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "local.parquet"))
        assert _leftovers(out_dir) == []
    assert killed == [victim]
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"engine": "spark"}, "engine"),
        ({"workers": 0}, "workers"),
        ({"partitions": 0}, "partitions"),
        ({"shuffle": "x"}, "shuffle"),
    ],
)
def test_engine_options_are_checked(kwargs, name):
    with pytest.raises(InputError) as e:
        EngineOptions(**kwargs)
    assert e.value.source == name


def test_cli_bad_engine_option_is_an_error(tmp_path, capsys):
    assert main(["counts", str(KOBE), "--out", str(tmp_path / "c.parquet"), "--engine", "dask", "--workers", "0"]) == 2
    assert "error: workers: 0 workers; expected at least 1" in capsys.readouterr().err


def test_counts_output_must_be_parquet(tmp_path, capsys):
    assert main(["counts", str(KOBE), "--out", str(tmp_path / "c.csv")]) == 2
    assert "expected an output name ending in .parquet" in capsys.readouterr().err


def test_worker_dying_while_the_output_is_written_leaves_nothing(tmp_path):
    """A worker dies (SIGKILL) after the client has begun writing the output: no file, no temporary.

    The last partition's task waits until the client reports its first written partition, then
    kills its own worker process; with no retries allowed the run fails, and the half-written output
    must vanish with it.
    """
    import dask
    import dask.dataframe as dd
    from dask import delayed
    from distributed import Client, LocalCluster

    from core.distributed.pipeline import write_frame

    flag = tmp_path / "first-partition-written"

    def part(i: int, flag: str) -> pd.DataFrame:
        import os
        import signal
        import time
        from pathlib import Path

        if i == 3:
            deadline = time.monotonic() + 60
            while not Path(flag).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        return pd.DataFrame({"key": np.arange(i * 10, i * 10 + 10), "value": np.full(10, float(i))})

    meta = pd.DataFrame({"key": np.array([], dtype=np.int64), "value": np.array([], dtype=np.float64)})
    frame = dd.from_delayed([delayed(part)(i, str(flag)) for i in range(4)], meta=meta, verify_meta=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def on_progress(p: Progress) -> None:
        if p.stage == "write" and p.step >= 1:
            flag.touch()

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
        Client(lc) as client,
    ):
        for name in ("stays.parquet", "stays.csv"):
            flag.unlink(missing_ok=True)
            with pytest.raises(CoreError, match="worker died"):
                write_frame(client, frame, out_dir / name, progress=on_progress)
            assert flag.exists()  # the first partition had been written when the worker died
            assert list(out_dir.iterdir()) == []
            client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("ending, trailing", [(b"\n", True), (b"\r\n", True), (b"\n", False)])
def test_csv_ranges_cover_every_line_once(tmp_path, ending, trailing):
    from core.distributed.kernels import csv_ranges

    lines = [b"user_id,timestamp,lat,lon"] + [f"u{i % 7},{1000 + i},35.{i:05d},139.5".encode() for i in range(5_000)]
    body = ending.join(lines) + (ending if trailing else b"")
    path = tmp_path / "f.csv"
    path.write_bytes(body)
    ranges = csv_ranges(path, block=4_096)
    assert len(ranges) > 10
    assert ranges[0][0] == len(lines[0]) + len(ending) and ranges[-1][1] == len(body)
    assert all(a == b for (_, a), (b, _) in zip(ranges[:-1], ranges[1:], strict=False))  # contiguous
    pieces = [body[a:b] for a, b in ranges]
    assert all(p.endswith(b"\n") for p in pieces[:-1])  # never a split line
    assert b"".join(pieces).splitlines() == lines[1:]


def test_bad_row_in_a_later_csv_range_names_the_file_row(engine, tmp_path):
    f = person_fixes(np.arange(40), 1000, _places(), seed=8).reset_index(drop=True)
    f.loc[31_234 - 1, "lat"] = 95.0  # row 31,234 of a.csv: far into the file, in a later byte range
    f.to_csv(tmp_path / "a.csv", index=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    small = EngineOptions(engine="dask", scheduler=engine.scheduler, chunk_rows=5_000)
    from core.distributed.kernels import input_chunks

    assert len(input_chunks([tmp_path / "a.csv"], small.chunk_rows)) > 4  # the CSV is read by several tasks
    with pytest.raises(InputError) as e:
        run_counts([tmp_path / "a.csv"], out_dir / "counts.parquet", 10, small)
    assert e.value.source == "a.csv" and e.value.column == "lat" and e.value.rows == [31_234]
    assert list(out_dir.iterdir()) == []
