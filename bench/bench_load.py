"""Bounded loopback load test of the dashboard server: ``python -m bench.bench_load [--clients 20] [--duration 60] [--workers N] [--think S]``.

Starts ``app.py`` (waitress) on 127.0.0.1 over ``--data`` (default: a synthetic release of three
datasets of 50,176 meshes of 50 m in ``bench/out/load-data``, built once), then runs ``--clients``
threads that act like people (open the page, show a dataset, load its tiles, click a mesh, which
selects it and lists its similar meshes, compare two periods) while one more client sends forged
expensive requests (k = 8000, k = 'abc', unknown datasets, huge thresholds, bad click data, tiles with
malformed parameters). Prints throughput, p50 / p95 / p99 per request type, errors, and the server's
memory before and after (all its processes). ``--think 0`` (the default) hammers: every client sends its
next request as soon as the last one is answered (the stress figure); ``--think S`` paces each person
as a person: a think time drawn from an exponential distribution of mean S seconds (seeded) after each
action (open the page, show a dataset, load its tiles, click a mesh, compare two periods). The forger
never pauses. Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np

from core import knobs

OUT = Path(__file__).resolve().parent / "out" / "load-data"
MAX_CLIENTS, MAX_DURATION_S, MAX_REQUESTS = 64, 600, 1_000_000
SIDE = 224  # cells of 50 m per side of each synthetic dataset (50,176 meshes, the size of the demo's Tokyo)
CENTRES = {"tokyo_2021_04": (35.68, 139.76), "nagoya_2019_04": (35.17, 136.90), "nagoya_2020_04": (35.17, 136.90)}


def synthetic_release(data: Path) -> None:
    """Three datasets with random embeddings and labels (the server's costs depend on mesh counts, not training)."""
    from core.geo.meshcode import cells_to_code, latlon_to_cells
    from core.release.layout import write_dataset, write_util_files

    done = data / ".complete"
    if done.exists():
        return
    rng = np.random.default_rng(0)
    for name, (lat, lon) in CENTRES.items():
        i0, j0 = latlon_to_cells(np.array([lat]), np.array([lon]))
        ii, jj = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
        codes = cells_to_code(i0[0] + ii.ravel(), j0[0] + jj.ravel(), 50)
        n = len(codes)
        labels = {k: rng.integers(0, k, n) for k in (5, 10, 20)}
        vec = rng.normal(0, 2, (n, 8)).astype(np.float32)
        dec = rng.normal(size=(168, 8)).astype(np.float32)
        write_dataset(data / "demo", name, codes, np.full(n, 50), vec, dec, labels, np.zeros(n, bool), overwrite=True)
    write_util_files(data / "demo")
    done.touch()


class Client:
    """One person's HTTP session with the Dash server (plain urllib, keep-alive not needed)."""

    def __init__(self, url: str, deps: list[dict], stats: dict, lock: threading.Lock) -> None:
        self.url, self.deps, self.stats, self.lock = url, deps, stats, lock
        self.workers: dict[str, set[str]] = defaultdict(set)  # request type -> worker pids that answered it

    def _record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.stats[kind].append((seconds, status))

    def request(self, kind: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"} if data else {})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, payload = r.status, r.read()
                self.workers[kind].add(r.headers.get("X-Area-Worker", ""))
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        except OSError:
            status, payload = 599, b""
        self._record(kind, time.perf_counter() - t0, status)
        return status, payload

    def fire(self, kind: str, output_prefix: str, values: dict[str, object]) -> dict:
        """Call the callback whose output starts with ``output_prefix``; ``values``: 'id.prop' -> value."""
        dep = next(d for d in self.deps if d["output"].lstrip(".").startswith(output_prefix))

        def items(key: str) -> list[dict]:
            return [
                {"id": x["id"], "property": x["property"], "value": values.get(f"{x['id']}.{x['property']}")} for x in dep[key]
            ]

        out = dep["output"]
        specs = [s for s in out.strip(".").split("...")] if out.startswith("..") else [out]
        outputs = [{"id": s.rsplit(".", 1)[0], "property": s.rsplit(".", 1)[1]} for s in specs]
        body = {
            "output": out,
            "outputs": outputs if out.startswith("..") else outputs[0],
            "inputs": items("inputs"),
            "state": items("state"),
            "changedPropIds": [f"{x['id']}.{x['property']}" for x in dep["inputs"][:1]],
        }
        status, payload = self.request(kind, "/_dash-update-component", body)
        if status == 200 and payload:
            try:
                return json.loads(payload).get("response", {})
            except ValueError:
                return {}
        return {}


def view_values(ds: str, k: object = 10, k_any: object = None, selected: object = None, thr: object = 1.0) -> dict:
    return {
        "dataset-select.value": ds,
        "k-select.value": k,
        "k-any.value": k_any,
        "view-mode.value": "cluster",
        "match-by.value": "distance",
        "match-value.value": thr,
        "selected-mesh.data": selected,
    }


def tiles_of(centre: tuple[float, float], z: int = 14) -> list[tuple[int, int, int]]:
    import math

    n = 2**z
    lat, lon = centre
    cx = int((lon + 180) / 360 * n)
    cy = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return [(z, cx + dx, cy + dy) for dx in (-2, -1, 0, 1, 2) for dy in (-1, 0, 1)]


def person(c: Client, rng: random.Random, stop: float, think: float = 0.0) -> None:
    """One person's loop until ``stop``: after each action, a pause of mean ``think`` seconds (0: none)."""
    ds = "demo/tokyo_2021_04"
    lat0, lon0 = CENTRES["tokyo_2021_04"]
    n = 0

    def pause() -> None:
        if think > 0:
            time.sleep(min(rng.expovariate(1.0 / think), max(stop - time.monotonic(), 0.0), 10 * think))

    while time.monotonic() < stop and n < MAX_REQUESTS:
        c.request("page", "/")
        c.request("page", "/_dash-layout")
        pause()
        resp = c.fire("map view", "mesh-layer.url", view_values(ds))
        layer = (resp.get("mesh-layer") or {}).get("url") or f"/tiles/{{z}}/{{x}}/{{y}}.png?ds={ds}&k=10&mode=cluster"
        for z, x, y in tiles_of((lat0 + 0.02, lon0 + 0.03)):
            c.request("tile", layer.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
        pause()
        for _ in range(3):
            if time.monotonic() >= stop:
                break
            ll = {"lat": lat0 + rng.random() * SIDE / 2400, "lng": lon0 + rng.random() * SIDE / 1600}
            sel = c.fire("click", "selected-mesh.data", {"mesh-map.clickData": {"latlng": ll}, "dataset-select.value": ds})
            selected = (sel.get("selected-mesh") or {}).get("data")
            c.fire("click", "mesh-info.children", {**view_values(ds, selected=selected)})
            pause()
        c.fire(
            "diff",
            "diff-layer.url",
            {
                "diff-a.value": "demo/nagoya_2019_04",
                "diff-b.value": "demo/nagoya_2020_04",
                "diff-k.value": 10,
                "diff-colour.value": None,
                "diff-state.data": None,
                "diff-cell.data": None,
            },
        )
        pause()
        n += 1


def forger(c: Client, rng: random.Random, stop: float) -> None:
    ds = "demo/tokyo_2021_04"
    lat0, lon0 = CENTRES["tokyo_2021_04"]
    n = 0
    while time.monotonic() < stop and n < MAX_REQUESTS:
        c.fire("forged:k8000", "mesh-layer.url", view_values(ds, k=8000, k_any=8000))
        c.fire("forged:kabc", "mesh-layer.url", view_values(ds, k="abc", thr=1e9))
        c.fire("forged:badds", "mesh-layer.url", view_values("nope/../../etc", k=10**9))
        c.fire(
            "forged:badclick",
            "selected-mesh.data",
            {"mesh-map.clickData": {"latlng": {"lat": "x", "lng": [1]}}, "dataset-select.value": ds},
        )
        c.fire("forged:badsel", "mesh-info.children", view_values(ds, k=8000, selected={"code": 10**30, "row": 10**9}))
        z, x, y = tiles_of((lat0, lon0))[rng.randrange(15)]
        c.request("forged:tilek8000", f"/tiles/{z}/{x}/{y}.png?ds={ds}&k=8000&mode=cluster")
        c.request("forged:tilebad", f"/tiles/{z}/{x}/{y}.png?ds={ds}&k=abc&sel=999999999999&thr=nan&mode=similar")
        c.fire(
            "forged:baddiff",
            "diff-layer.url",
            {"diff-a.value": ds, "diff-b.value": "x/y", "diff-k.value": 8000, "diff-colour.value": 5, "diff-state.data": -1},
        )
        n += 1


def server_rss(port_url: str) -> tuple[float, int]:
    """Resident memory of the server's processes (MB, summed) and how many there are."""
    import psutil

    total, n = 0.0, 0
    for p in psutil.Process().children(recursive=True):
        try:
            if "app.py" in " ".join(p.cmdline()):
                total, n = total + p.memory_info().rss / 2**20, n + 1
        except psutil.Error:
            continue
    return (total, n) if n else (float("nan"), 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=None, help="data folder with demo/tokyo_2021_04 and demo/nagoya_2019_04/2020_04 (default: synthetic)"
    )
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    knobs.WORKERS.add_to(ap, "--workers", metavar="N")
    ap.add_argument("--think", type=float, default=0.0, help="mean think time of a person between actions, s (0: hammer)")
    args = ap.parse_args()
    think = max(0.0, min(args.think, 60.0))
    clients = max(1, min(args.clients, MAX_CLIENTS))
    duration = max(1.0, min(args.duration, MAX_DURATION_S))
    data = Path(args.data) if args.data else OUT
    if args.data is None:
        synthetic_release(data)
    from dashboard.serve import running_app

    with running_app(data, timeout=120, extra_args=("--workers", str(args.workers))) as url:
        assert url.startswith("http://127.0.0.1:"), url  # loopback only
        with urllib.request.urlopen(url + "/_dash-dependencies", timeout=30) as r:
            deps = json.load(r)
        stats: dict = defaultdict(list)
        lock = threading.Lock()
        warm = Client(url, deps, defaultdict(list), lock)
        # Caches warm, as after a first visitor of each worker process (each has its own caches).
        until = time.monotonic() + 120
        while time.monotonic() < until:
            person(warm, random.Random(-1), time.monotonic() + 5)
            if len(warm.workers["diff"]) >= args.workers:
                break
        rss0 = server_rss(url)
        stop = time.monotonic() + duration
        threads = [
            threading.Thread(target=person, args=(Client(url, deps, stats, lock), random.Random(args.seed + i), stop, think))
            for i in range(clients)
        ]
        threads.append(threading.Thread(target=forger, args=(Client(url, deps, stats, lock), random.Random(args.seed - 1), stop)))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration + 120)
        wall = time.monotonic() - t0
        rss1 = server_rss(url)
    for k in [k for k in stats if k.startswith("forged:")]:
        stats["forged"].extend(stats[k])
    total = sum(len(v) for k, v in stats.items() if not k.startswith("forged"))
    mode = f"person-paced (think {think:g} s)" if think else "hammer (no think time)"
    print(f"{clients} clients + 1 forger for {duration:.0f} s (wall {wall:.1f} s), {mode}, loopback, waitress x {args.workers}")
    print(
        f"throughput (normal requests): {total / wall:.1f} req/s; server RSS {rss0[0]:.0f} MB before, {rss1[0]:.0f} MB after "
        f"({rss1[1]} processes)"
    )
    print(f"{'type':<10} {'n':>7} {'errors':>7} {'4xx':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    kinds = ["page", "map view", "tile", "click", "diff", "forged"] + sorted(k for k in stats if k.startswith("forged:"))
    for kind in kinds:
        rows = stats.get(kind, [])
        if not rows:
            continue
        t = np.array([r[0] for r in rows]) * 1000
        codes = np.array([r[1] for r in rows])
        err = int((codes >= 500).sum())
        c4 = int(((codes >= 400) & (codes < 500)).sum())
        p50, p95, p99 = np.percentile(t, [50, 95, 99])
        print(f"{kind:<10} {len(rows):>7} {err:>7} {c4:>6} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
