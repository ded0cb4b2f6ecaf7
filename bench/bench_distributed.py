"""GPS fixes -> stays -> privacy rule -> meshes x 168 counts: the single-machine path vs Dask with 1 and 2 workers.

    python -m bench.bench_distributed                         # 100 M fixes (20,000 people x 5,000 fixes)
    python -m bench.bench_distributed --fixes 20_000_000      # a smaller run
    python -m bench.bench_distributed --single-fixes 20_000_000 --workers 1 2

Fixes are generated once into bench/out/distributed/ (git-ignored; generation is not timed): blocks
of 2,000 people, each block split by time into 4 Parquet files, so every person's fixes span 4
files. People share places (core.simulation.fixes), so meshes pass the privacy rule.

The single-machine path (read all fixes into memory, scan, privacy rule, count) runs in its own
process on the first ``--single-fixes`` fixes; its peak memory is that process's max RSS. The Dask
path runs on a LocalCluster of 1 and 2 worker processes (one thread each) on all the fixes, and on
the single-machine subset to check equality; peak memory is sampled (psutil, every 0.2 s) per
worker process and for the client. Prints a Markdown table; writes bench/out/distributed_FIXES_SHUFFLE.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
PER_PERSON = 5_000
BLOCK_PEOPLE = 2_000
WINDOWS = 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_fixes(n: int, seed: int = 0) -> tuple[Path, list[Path]]:
    """Generate (once) ``n`` fixes as Parquet files; return the folder and its files in block order."""
    from core.simulation.fixes import person_fixes, shared_places

    people = n // PER_PERSON
    folder = OUT / "distributed" / f"fixes_{n}"
    done = folder / "done.json"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        places = shared_places(max(50, people // 10), seed=seed, spread_m=8000.0)
        t = time.perf_counter()
        for b, start in enumerate(range(0, people, BLOCK_PEOPLE)):
            ids = np.arange(start, min(start + BLOCK_PEOPLE, people))
            frame = person_fixes(ids, PER_PERSON, places, seed=seed)
            ts = frame["timestamp"].to_numpy()
            cuts = np.quantile(ts, np.arange(1, WINDOWS) / WINDOWS)
            window = np.searchsorted(cuts, ts)
            for w in range(WINDOWS):
                frame[window == w].to_parquet(folder / f"b{b:04d}_w{w}.parquet", index=False)
            log(f"generated {len(ids) * PER_PERSON * (b + 1) if len(ids) == BLOCK_PEOPLE else n:,} fixes ...")
        done.write_text(json.dumps({"fixes": people * PER_PERSON, "seconds": time.perf_counter() - t}))
    return folder, sorted(folder.glob("*.parquet"))


def subset(files: list[Path], n_fixes: int) -> list[Path]:
    """The files of the first blocks holding about ``n_fixes`` fixes (whole people)."""
    blocks = max(1, n_fixes // (BLOCK_PEOPLE * PER_PERSON))
    return [f for f in files if int(f.name[1:5]) < blocks]


def n_fixes(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


# ---------------------------------------------------------------- the single-machine path, in a child process


def child_single(out: str, files: list[str]) -> None:
    from core.distributed.local import local_counts
    from core.mobility.stays import write_counts

    t, cpu = time.perf_counter(), time.process_time()
    counts, report = local_counts(files, 10)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    write_counts(counts, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "peak_rss": peak, "report": report}, default=str))


def run_single(files: list[Path], out: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_distributed", "--child-single", str(out), *map(str, files)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if res.returncode != 0:
        log(res.stderr[-3000:])
        return {"failed": res.returncode, "stderr": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- Dask


def _cpu(p: object) -> float:
    t = p.cpu_times()  # type: ignore[attr-defined]
    return float(t.user + t.system)


class PeakSampler:
    """Sample the RSS of some processes every ``interval`` seconds; keep each one's peak and the CPU time they used."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.cpu0 = {name: _cpu(p) for name, p in self.procs.items()}
        self.cpu: dict[str, float] = {}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, p in self.procs.items():
                with contextlib.suppress(Exception):  # a process that ended
                    self.peak[name] = max(self.peak[name], p.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for name, p in self.procs.items():
            with contextlib.suppress(Exception):
                self.cpu[name] = _cpu(p) - self.cpu0[name]


def run_dask(files: list[Path], out: Path, workers: int, shuffle: str = "p2p") -> dict:
    from core.distributed import EngineOptions, counts_on, dask_client

    engine = EngineOptions(engine="dask", workers=workers, shuffle=shuffle)
    t0 = time.perf_counter()
    with dask_client(engine) as client:
        started = time.perf_counter() - t0
        pids = {f"worker {i}": pid for i, pid in enumerate(sorted(client.run(os.getpid).values()))}
        pids["client"] = os.getpid()
        with PeakSampler(pids) as sampler:
            t = time.perf_counter()
            report = counts_on(client, list(files), out, 10, engine)
            seconds = time.perf_counter() - t
    return {"seconds": seconds, "startup_s": started, "peak_rss": sampler.peak, "cpu_s": sampler.cpu, "report": report}


def same_counts(a: Path, b: Path) -> bool:
    import pandas as pd

    return bool(pd.read_parquet(a).equals(pd.read_parquet(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixes", type=int, default=100_000_000, help="fixes of the whole dataset (Dask runs)")
    ap.add_argument("--single-fixes", type=int, default=20_000_000, help="fixes given to the single-machine path")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask LocalCluster sizes to run")
    ap.add_argument("--no-full", action="store_true", help="skip the Dask runs on the whole dataset")
    ap.add_argument("--no-single", action="store_true", help="skip the single-machine run (and the equality check)")
    ap.add_argument("--shuffle", default="p2p", choices=["p2p", "tasks"], help="Dask shuffle method (default p2p)")
    ap.add_argument("--child-single", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_single:
        child_single(args.child_single[0], args.child_single[1:])
        return
    folder, files = make_fixes(args.fixes)
    small = subset(files, args.single_fixes)
    n_all, n_small = n_fixes(files), n_fixes(small)
    res: dict = {"fixes": n_all, "single_fixes": n_small, "files": len(files), "cores": os.cpu_count()}
    out = OUT / "distributed"
    res["shuffle"] = args.shuffle
    if args.no_single:
        res["single"] = {"skipped": True}
    else:
        log(f"single machine on {n_small:,} fixes ({len(small)} files) ...")
        res["single"] = run_single(small, out / "counts_single.parquet")
        log(f"  {res['single'].get('seconds', float('nan')):.1f} s")
        log(f"Dask ({max(args.workers)} workers) on the same {n_small:,} fixes ...")
        res["dask_subset"] = run_dask(small, out / "counts_dask_subset.parquet", max(args.workers), args.shuffle)
        res["subset_equal"] = "failed" not in res["single"] and same_counts(
            out / "counts_single.parquet", out / "counts_dask_subset.parquet"
        )
        log(f"  {res['dask_subset']['seconds']:.1f} s; equal counts: {res['subset_equal']}")
    if not args.no_full:
        for w in args.workers:
            log(f"Dask ({w} worker{'s' if w > 1 else ''}) on all {n_all:,} fixes ...")
            res[f"dask_{w}"] = run_dask(files, out / f"counts_dask_{w}.parquet", w, args.shuffle)
            log(f"  {res[f'dask_{w}']['seconds']:.1f} s")
        if len(args.workers) > 1:
            res["full_equal"] = all(
                same_counts(out / f"counts_dask_{args.workers[0]}.parquet", out / f"counts_dask_{w}.parquet")
                for w in args.workers[1:]
            )
    (OUT / f"distributed_{args.fixes}_{args.shuffle}.json").write_text(json.dumps(res, indent=2, default=str))
    print(table(res, args))


def table(res: dict, args: argparse.Namespace) -> str:
    """Markdown: wall-clock throughput, and throughput per CPU-second (all processes of the run; fair on a shared machine)."""
    gb = 1024**3
    rows = [
        "| run | fixes | wall s | fixes/s (wall) | CPU s (all processes) | fixes per CPU-second | peak memory per process |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    single = res["single"]
    base = None
    if "seconds" in single:
        base = res["single_fixes"] / single["cpu_s"]
        rows.append(
            f"| single machine (1 process) | {res['single_fixes']:,} | {single['seconds']:.1f} | "
            f"{res['single_fixes'] / single['seconds'] / 1e6:.2f} M | {single['cpu_s']:.1f} | {base / 1e6:.2f} M (100 %) | "
            f"{single['peak_rss'] / gb:.2f} GB |"
        )
    runs = [] if args.no_single else [("dask_subset", res["single_fixes"], max(args.workers))]
    runs += [] if args.no_full else [(f"dask_{w}", res["fixes"], w) for w in args.workers]
    for key, n, w in runs:
        r = res[key]
        cpu = sum(r["cpu_s"].values())
        per_cpu = n / cpu
        share = f" ({per_cpu / base:.0%})" if base else ""
        mem = ", ".join(f"{k} {v / gb:.2f} GB" for k, v in r["peak_rss"].items())
        rows.append(
            f"| Dask, {w} worker{'s' if w > 1 else ''} ({res['shuffle']}) | {n:,} | {r['seconds']:.1f} (+{r['startup_s']:.1f} start) | "
            f"{n / r['seconds'] / 1e6:.2f} M | {cpu:.1f} | {per_cpu / 1e6:.2f} M{share} | {mem} |"
        )
    rows.append("")
    if "subset_equal" in res:
        rows.append(f"Equal counts, single machine vs Dask on the same {res['single_fixes']:,} fixes: {res['subset_equal']}")
    if "full_equal" in res:
        rows.append(
            f"Equal counts, Dask {' vs '.join(map(str, args.workers))} workers on {res['fixes']:,} fixes: {res['full_equal']}"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
