"""The People view at 100 k people: scatter, selection -> heatmap, memory; baselines in the same run.

Run: ``python -m bench.bench_people [--people 100000] [--days 7] [--dim 64] [--repeats 5]``;
``python -m bench.bench_people --stays data/demo/stays/tokyo_2021_04.parquet --runs data/walkers/tokyo``: the
commuter separation of each encoder on the demo.

People are generated in the HuMob format (``core.simulation.humob``: uid,d,t,x,y, 999 = masked) and
read as the view reads a HuMob file. Their embeddings are **random** (seeded: four normal latent
factors mixed into ``--dim`` columns plus noise, so the projection is not flat): no model embeds 100 k
people in a benchmark's time here (``walkers embed`` runs ~1,300 people/s on this box), and the
timings below do not depend on what the vectors mean. Timed server-side:

1. the scatter: standardise + PCA (d x d covariance) and building the plotly figure (and its JSON size);
2. a lasso (a 200-vertex polygon) -> selected rows -> stays of the selection (weekday, 07-10 h) ->
   stays per mesh -> colour classes, then one heatmap tile rendered to PNG: the response the map
   waits for; baseline: the same counts with pandas (isin + groupby on the stays frame);
3. peak memory (RSS) after loading.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stays", help="separation only: a demo stays file (simple features) ...")
    ap.add_argument("--runs", nargs="*", default=[], help="... and walkers runs (DIR with users.csv, metrics.json)")
    args = ap.parse_args(argv)
    if args.stays or args.runs:
        separation_report(args.stays, args.runs)
        return

    import pandas as pd

    from core.geo.tiles import MeshIndex, png_bytes, render_tile
    from core.simulation.humob import generate_humob
    from core.walkers.explore import (
        StayFilter,
        colour_values,
        heat_classes,
        people_from_trajectories,
        project,
        region_counts,
        select,
        stay_mask,
    )
    from core.walkers.trajectories import humob_from_frame
    from dashboard.figures import HEAT_COLOURS, people_scatter
    from dashboard.tiles import _table

    t0 = time.perf_counter()
    records, truth = generate_humob(n_people=args.people, days=args.days, city="tokyo", seed=0, masked_days=2)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = humob_from_frame(records, "bench.csv")
    rng = np.random.default_rng(0)
    # Four latent factors mixed into every column, plus noise: correlated columns, so the leading components carry more.
    latent = rng.normal(size=(traj.n_users, 4)) * np.array([3.0, 2.0, 1.5, 1.0])
    emb = (latent @ rng.normal(size=(4, args.dim)) + rng.normal(size=(traj.n_users, args.dim))).astype(np.float32)
    attrs = pd.DataFrame(
        {
            "activity": np.bincount(traj.uid, minlength=traj.n_users),
            "commuter": truth.set_index("uid").loc[traj.users, "commuter"].to_numpy(),
        }
    )
    people = people_from_trajectories(traj, emb, attrs=attrs, name="bench", encoder="random")
    index = MeshIndex(people.codes, people.sizes)
    load_s = time.perf_counter() - t0
    n_masked = int((records["x"] == 999).sum())
    print(
        f"{len(records):,} HuMob records ({n_masked:,} masked) of {args.people:,} people over {args.days} days "
        f"(generated in {gen_s:.1f} s) -> {people.n:,} people, {len(people.person):,} stays, {len(people.codes):,} meshes; "
        f"loaded in {load_s:.1f} s; peak RSS {_rss_mb():,.0f} MB"
    )
    del records
    held = sum(a.nbytes for a in (people.embeddings, people.person, people.region, people.hour, people.weekend, people.token))
    held += sum(a.nbytes for a in (people.start, people.duration, people.weekday, people.holiday, index.keys, index.rows))
    print(f"the view holds {held / 2**20:,.0f} MB of arrays for these people (embeddings, stays, mesh index)")

    pca_s, proj = _best(lambda: project(people.embeddings), args.repeats)
    cat, names = colour_values(people, "commuter")
    fig_s, fig = _best(lambda: people_scatter(proj.xy, cat, names, "bench"), args.repeats)
    json_s, text = _best(lambda: fig.to_json(), args.repeats)
    print(
        f"scatter: standardise + PCA of {people.n:,} x {args.dim}: {1000 * pca_s:.0f} ms (explained: "
        f"{', '.join(f'{100 * v:.1f} %' for v in proj.explained[:4])}, ...); figure {1000 * fig_s:.0f} ms; "
        f"JSON {1000 * json_s:.0f} ms, {len(text) / 2**20:.1f} MB"
    )

    # A lasso: a 200-vertex ellipse around the middle of the cloud.
    t = np.linspace(0, 2 * np.pi, 200)
    cx, cy = np.median(proj.xy, axis=0)
    sx, sy = proj.xy.std(axis=0)
    lasso = {"lassoPoints": {"x": (cx + sx * np.cos(t)).tolist(), "y": (cy + 0.6 * sy * np.sin(t)).tolist()}}
    flt = StayFilter("all", 7, 10)
    colours = _table(HEAT_COLOURS, 225)
    lat, lon = (index.bounds[0] + index.bounds[2]) / 2, (index.bounds[1] + index.bounds[3]) / 2
    z = 12
    import math

    n = 2**z
    tx, ty = int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    def respond():
        rows = select(proj.xy, lasso)
        mask = stay_mask(people, rows, flt)
        values = heat_classes(region_counts(people, mask))
        return rows, values, png_bytes(render_tile(index, values, colours, z, tx, ty))

    sel_s = _best(lambda: select(proj.xy, lasso), args.repeats)
    resp_s, (rows, values, png) = _best(respond, args.repeats)
    tile_s, _ = _best(lambda: png_bytes(render_tile(index, values, colours, z, tx, ty)), args.repeats)
    print(
        f"selection -> heatmap: lasso of 200 vertices selects {len(rows):,} people in {1000 * sel_s[0]:.0f} ms; "
        f"lasso + stays filter + counts per mesh + one tile PNG: {1000 * resp_s:.0f} ms "
        f"(of which the tile {1000 * tile_s:.0f} ms; {int((values >= 0).sum()):,} meshes drawn)"
    )

    # Baseline: the same counts from a stays frame with pandas, as a per-request query would do.
    frame = pd.DataFrame({"uid": people.person, "region": people.region, "hour": people.hour, "weekend": people.weekend})

    def pandas_counts():
        sel = frame[frame["uid"].isin(rows) & (frame["hour"] >= flt.h0) & (frame["hour"] < flt.h1)]
        return sel.groupby("region").size()

    def numpy_counts():
        return region_counts(people, stay_mask(people, rows, flt))

    pd_s, by_pd = _best(pandas_counts, args.repeats)
    np_s, by_np = _best(numpy_counts, args.repeats)
    assert (by_np[by_pd.index.to_numpy()] == by_pd.to_numpy()).all() and by_np.sum() == by_pd.sum()
    print(f"counts per mesh of the selection: numpy bincount {1000 * np_s:.0f} ms, pandas isin + groupby {1000 * pd_s:.0f} ms")
    print(f"peak RSS {_rss_mb():,.0f} MB")


def separation_report(stays: str | None, runs: list[str]) -> None:
    """Commuters vs the others in the 2-D PCA of each encoder: 5-fold balanced accuracy of a linear classifier."""
    from core.walkers.explore import load_people, load_run, project, separation, standardise

    sources = ([("simple features", lambda: load_people(stays))] if stays else []) + [
        (f"walkers run {r}", lambda r=r: load_run(r)) for r in runs
    ]
    for label, load in sources:
        people = load()
        proj = project(people.embeddings)
        y = people.attrs["commuter"].astype(bool).to_numpy()
        print(
            f"{label}: {people.n:,} people ({100 * y.mean():.1f} % commuters), {people.embeddings.shape[1]} dims; "
            f"PC1 + PC2 explain {100 * proj.explained[:2].sum():.1f} %; "
            f"commuters vs others on the 2-D projection: balanced accuracy {separation(proj.xy, y):.3f} "
            f"(on all {people.embeddings.shape[1]} standardised dims: {separation(standardise(people.embeddings), y):.3f})"
        )


if __name__ == "__main__":
    main()
