"""GPS -> stays benchmark: 10 M synthetic fixes from files to a stay table, and the same scan in plain Python.

    python -m bench.bench_gps                 # 10 M fixes (2,000 people x 5,000 fixes)
    python -m bench.bench_gps --fixes 1000000 # a quick run

Each person alternates stays (fixes every 60 s, 25 m of jitter) and trips (fixes 400 m apart). The
inputs (Parquet with epoch seconds, CSV with ISO text) are generated once into bench/out/
(git-ignored); generation is not timed. The baseline is the identical stay scan as a plain Python
loop (``detect_stays(..., compiled=False)``), run on a slice and reported per fix.
Prints a Markdown table and writes bench/out/gps.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.mobility.gps import Fixes, GpsOptions, detect_stays, read_fixes, stay_table

OUT = Path(__file__).resolve().parent / "out"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synthetic_fixes(n: int, people: int, seed: int = 0):
    """Arrays (user, t, lat, lon) and the number of stays planted (every stay is 10-120 fixes)."""
    rng = np.random.default_rng(seed)
    per = n // people
    # Alternate segments: stay (10..120 fixes) then trip (5..30 fixes), per person.
    seg_len = np.where(np.arange(per) % 2 == 0, rng.integers(10, 121, per), rng.integers(5, 31, per))
    is_stay = np.repeat(np.arange(per) % 2 == 0, seg_len)[:per]
    seg_id = np.repeat(np.arange(per), seg_len)[:per]
    planted = int(np.unique(seg_id[is_stay]).size)
    step_m = np.where(is_stay, 0.0, 400.0)
    heading = rng.uniform(0, 2 * np.pi, per)
    north = np.cumsum(step_m * np.cos(heading))
    east = np.cumsum(step_m * np.sin(heading))
    base_lat = rng.uniform(35.5, 35.8, people)
    base_lon = rng.uniform(139.5, 139.9, people)
    lat = base_lat[:, None] + (north[None, :] + rng.normal(0, 12, (people, per))) / 111_195.0
    lon = base_lon[:, None] + (east[None, :] + rng.normal(0, 12, (people, per))) / 91_000.0
    t0 = 1_617_202_800  # 2021-04-01 00:00 JST
    t = t0 + np.arange(per) * 60 + rng.integers(0, 3600, people)[:, None]
    user = np.repeat(np.arange(people), per)
    return user, t.ravel(), lat.ravel(), lon.ravel(), planted * people


def make_inputs(n: int, people: int) -> tuple[Path, Path, int]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    OUT.mkdir(parents=True, exist_ok=True)
    pq_path, csv_path = OUT / f"fixes_{n}_{people}.parquet", OUT / f"fixes_{n}_{people}.csv"
    meta = OUT / f"fixes_{n}_{people}.json"
    if not (pq_path.exists() and csv_path.exists() and meta.exists()):
        t = time.perf_counter()
        user, ts, lat, lon, planted = synthetic_fixes(n, people)
        names = np.char.add("p", user.astype(str))
        table = pa.table({"user_id": names, "timestamp": ts, "lat": lat, "lon": lon})
        pq.write_table(table, pq_path)
        iso = pa.array(ts * 1_000_000_000, pa.timestamp("ns", tz="UTC")).cast(pa.timestamp("s", tz="UTC"))
        text = iso.cast(pa.string())  # 2021-03-31 15:00:00Z
        pacsv.write_csv(table.set_column(1, "timestamp", text), csv_path)
        meta.write_text(json.dumps({"planted": planted}))
        log(f"generated {n:,} fixes in {time.perf_counter() - t:.1f} s (not timed)")
    return pq_path, csv_path, json.loads(meta.read_text())["planted"]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixes", type=int, default=10_000_000)
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--baseline-fixes", type=int, default=200_000, help="fixes given to the plain-Python scan")
    args = ap.parse_args()
    pq_path, csv_path, planted = make_inputs(args.fixes, args.people)
    opts = GpsOptions()
    detect_stays(_tiny(), 100, 5)  # compile the scan once (numba caches it on disk), not timed
    rows = []
    result = {}
    for label, path in (("Parquet, epoch seconds", pq_path), ("CSV, ISO 8601 text", csv_path)):
        fixes, t_read = timed(lambda path=path: read_fixes(path, opts))
        stays, t_scan = timed(lambda fixes=fixes: detect_stays(fixes, opts.distance_m, opts.min_minutes))
        table, t_table = timed(lambda fixes=fixes, stays=stays: stay_table(fixes, stays, opts.tz, opts.country))
        total = t_read + t_scan + t_table
        n = len(fixes)
        rows.append((label, n, t_read, t_scan, t_table, total, n / total, len(table)))
        result[label] = {
            "fixes": n,
            "read_s": t_read,
            "scan_s": t_scan,
            "table_s": t_table,
            "total_s": total,
            "fixes_per_s": n / total,
            "stays": len(table),
            "planted": planted,
        }
    # Baseline: the identical scan in plain Python on a slice.
    m = min(args.baseline_fixes, len(fixes))
    part = Fixes(fixes.users, fixes.user[:m], fixes.t[:m], fixes.lat[:m], fixes.lon[:m], fixes.off[:m])
    base, t_base = timed(lambda: detect_stays(part, opts.distance_m, opts.min_minutes, compiled=False))
    fast, t_fast = timed(lambda: detect_stays(part, opts.distance_m, opts.min_minutes))
    assert np.array_equal(base.first, fast.first) and np.array_equal(base.last, fast.last)
    result["baseline"] = {
        "fixes": m,
        "python_scan_s": t_base,
        "compiled_scan_s": t_fast,
        "python_fixes_per_s": m / t_base,
        "compiled_fixes_per_s": m / t_fast,
    }
    print(f"\n{args.fixes:,} synthetic fixes, {args.people:,} people, {planted:,} planted stays\n")
    print("| input | fixes | read + validate + clean | stay scan | stay table (calendar, meshes) | total | fixes/s | stays |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, n, a, b, c, tot, rate, k in rows:
        print(f"| {label} | {n:,} | {a:.2f} s | {b:.2f} s | {c:.2f} s | {tot:.2f} s | {rate / 1e6:.1f} M | {k:,} |")
    b = result["baseline"]
    print(
        f"\nStay scan alone on {m:,} fixes: plain Python {b['python_fixes_per_s'] / 1e6:.2f} M fixes/s, "
        f"compiled {b['compiled_fixes_per_s'] / 1e6:.1f} M fixes/s ({b['compiled_fixes_per_s'] / b['python_fixes_per_s']:.0f}x); same stays."
    )
    (OUT / "gps.json").write_text(json.dumps(result, indent=2))


def _tiny():
    from core.mobility.gps import clean_fixes

    z = np.zeros(3)
    return clean_fixes(
        np.array(["a"], dtype=object), np.zeros(3, np.int32), np.arange(3.0) * 300, z + 35, z + 139, np.zeros(3, bool)
    )


if __name__ == "__main__":
    main()
