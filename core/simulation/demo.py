"""The embedded demo release: a synthetic Japan built offline in the OpenUAS layout.

``python -m core demo`` (or the app on first start) builds, under ``data/demo/``:

- ``japan_city/geojson/<city>_<yyyy>_<mm>.geojson`` and ``japan_city/model/...pth`` per dataset,
- ``anchor_data/`` (an anchor set built from all demo datasets) and ``util_file/``,
- ``stays/<dataset>.parquet`` (the stays with user ids, coordinates and mesh codes),
- ``truth/`` (people: home, work, role, commuter; meshes: district type, designed changes).
- ``places.csv`` (the named districts and stations of the built cities, :mod:`core.geo.places`).

The folder is built in a temporary sibling and renamed into place, so an interrupted build leaves
nothing half-written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from core import knobs
from core.analysis.joint import SpacePart, fit_joint
from core.area2vec.anchors import build_anchor_set
from core.area2vec.embeddings import train_embeddings
from core.area2vec.trainer import TrainConfig
from core.atomic import atomic_dir
from core.constants import KMEANS_SEED, RELEASED_KS
from core.errors import ParameterError
from core.geo.meshcode import parent_code
from core.geo.places import write_places
from core.mobility.privacy import assign_meshes, with_complemented
from core.mobility.stays import StayRecords
from core.progress import EtaClock, Progress
from core.release.clusters import clusters_file, save_joint
from core.release.layout import ANCHOR_DIR, write_dataset, write_util_files
from core.simulation.world import (
    CITIES,
    DISTRICTS,
    FESTIVAL,
    MALL,
    NIGHT,
    SHOP,
    Period,
    build_grid,
    city_places,
    make_population,
    simulate_month,
)

DEMO_NAME = "demo"

# Pandemic severity per month (Aichi's states of emergency: Apr-May 2020; Jan-Feb, May-Jun and
# Aug-Sep 2021); 2019 is the baseline and 2023 near normal.
SEVERITY = {
    (2019, 4): 0.0,
    (2020, 4): 1.0,
    (2022, 4): 0.2,
    (2023, 4): 0.05,
    (2021, 1): 0.7,
    (2021, 2): 0.65,
    (2021, 3): 0.45,
    (2021, 4): 0.4,
    (2021, 5): 0.65,
    (2021, 6): 0.6,
    (2021, 7): 0.4,
    (2021, 8): 0.7,
    (2021, 9): 0.7,
    (2021, 10): 0.3,
    (2021, 11): 0.2,
    (2021, 12): 0.2,
}


def demo_datasets(cities: tuple[str, ...] | None = None) -> list[tuple[str, Period]]:
    """April 2021 for every city; Nagoya for April 2019..2023 and each month of 2021."""
    out: list[tuple[str, Period]] = []
    for city in cities or tuple(CITIES):
        if city == "nagoya":
            months = [(2019, 4), (2020, 4)] + [(2021, m) for m in range(1, 13)] + [(2022, 4), (2023, 4)]
        else:
            months = [(2021, 4)]
        out += [(city, Period(y, m, SEVERITY.get((y, m), 0.4))) for y, m in months]
    return out


@dataclass(frozen=True)
class DemoScale:
    """Size knobs: city radius multipliers (per city where given), anchors, and which datasets (all by default)."""

    radius: float = 1.0
    city_radius: tuple[tuple[str, float], ...] = ()
    residents: float = 1.0
    observe: float = 0.2
    n_anchors: int = 512
    anchor_records: int = 4000
    datasets: tuple[str, ...] | None = None

    def radius_of(self, city: str) -> float:
        return dict(self.city_radius).get(city, self.radius)


SCALES = {
    # A first look on a slow or busy machine (and the first-start browser test): Osaka and Nagoya 2019 / 2020.
    "quick": DemoScale(
        radius=0.3, n_anchors=64, anchor_records=1000, datasets=("osaka_2021_04", "nagoya_2019_04", "nagoya_2020_04")
    ),
    "tiny": DemoScale(radius=0.3, n_anchors=64, anchor_records=1000),
    "small": DemoScale(radius=0.6, n_anchors=128, anchor_records=2000),
    # Tokyo ~49 k meshes, about 114 k in all (measured: 80 s).
    "default": DemoScale(radius=0.6, city_radius=(("tokyo", 0.92), ("osaka", 0.7))),
    # About the real release's size: Tokyo ~200 k meshes, ~1.4 M in all (for benchmarks).
    "full": DemoScale(radius=2.7, city_radius=(("tokyo", 2.0), ("osaka", 1.9), ("nagoya", 2.4)), anchor_records=20000),
}


def _city_spec(city: str, scale: DemoScale):
    from dataclasses import replace

    spec = CITIES[city]
    return replace(
        spec, radius_km=spec.radius_km * scale.radius_of(city), residents_per_cell=spec.residents_per_cell * scale.residents
    )


# Stays kept per dataset for sampling anchor records (the full counts are kept separately), so
# that a build the size of the real release does not hold hundreds of millions of stays.
ANCHOR_POOL = 2_000_000


def _sample(rec: StayRecords, cap: int, seed: int) -> StayRecords:
    """A uniform random sample of at most ``cap`` stays (all of them when fewer)."""
    if len(rec) <= cap:
        return rec
    keep = np.sort(np.random.default_rng(seed).choice(len(rec), cap, replace=False))
    return StayRecords(
        rec.source,
        rec.key_column,
        rec.area_keys[keep],
        rec.stay_time[keep],
        rec.arrival_minute[keep],
        rec.weekday[keep],
        rec.is_holiday[keep],
        None if rec.mesh_sizes is None else rec.mesh_sizes[keep],
    )


def mesh_truth(codes: np.ndarray, sizes: np.ndarray, cell_codes: np.ndarray, cell_district: np.ndarray) -> np.ndarray:
    """District type of each mesh: the cell's own (50 m) or the most common among its cells (250 m)."""
    lookup = pd.Series(cell_district, index=cell_codes)
    out = np.full(len(codes), -1, dtype=np.int64)
    small = sizes == 50
    out[small] = lookup.reindex(codes[small]).fillna(-1).to_numpy(np.int64)
    big = ~small
    if big.any():
        parents = parent_code(cell_codes, 50, 250)
        table = pd.DataFrame({"p": parents, "d": cell_district}).groupby("p")["d"].agg(lambda s: int(np.bincount(s).argmax()))
        out[big] = table.reindex(codes[big]).fillna(-1).to_numpy(np.int64)
    return out


# Each phase's share of a default build's time. Measured here on a loaded 2-core machine (load 6-13,
# `python -m bench.bench_first_start`, torch on the free cores): stays 48 %, anchors 34 %, training
# 16 %, clusters and writing 2 % of 376 s; with torch on both busy cores the torch phases took 85 %.
# These only weigh each phase's own progress into the whole build's fraction; the ETA comes from
# the rate measured while it runs (EtaClock).
PHASES: tuple[tuple[str, float], ...] = (("stays", 0.42), ("anchors", 0.33), ("train", 0.19), ("cluster", 0.04), ("write", 0.02))
# Within one training (Area2VecTrainer.fit): the share of its decoder, embed and refine steps.
_FIT_SHARES = {"decoder": (0.0, 0.4), "embed": (0.4, 0.3), "refine": (0.7, 0.3)}
# Within the anchor set: the first fit, k-means and record sampling, the second fit (with the anchors).
_ANCHOR_SHARES = ((0.0, 0.45), (0.45, 0.1), (0.55, 0.45))


class _Items:
    """Progress over items of unequal cost: ``at(i, sub)`` is the share done when item ``i`` is ``sub`` done."""

    def __init__(self, weights: list[float]) -> None:
        w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
        self.total = float(w.sum())
        self.before = np.concatenate([[0.0], np.cumsum(w)[:-1]])
        self.weights = w

    def at(self, i: int, sub: float = 0.0) -> float:
        return float((self.before[i] + self.weights[i] * min(max(sub, 0.0), 1.0)) / self.total)


class _BuildProgress:
    """The whole build's progress: each report's phase and share of that phase, to one fraction and an ETA."""

    def __init__(self, progress: Callable[[Progress], None] | None, t0: float) -> None:
        self.progress = progress
        self.t0 = t0
        self.clock = EtaClock()
        starts = np.concatenate([[0.0], np.cumsum([share for _, share in PHASES])[:-1]])
        self.span = {name: (float(start), share) for (name, share), start in zip(PHASES, starts, strict=True)}

    def __call__(self, phase: str, within: float, step: int, total: int, message: str = "") -> None:
        if self.progress is None:
            return
        start, share = self.span.get(phase, (1.0, 0.0))  # "done": the whole build
        fraction = min(start + share * min(max(within, 0.0), 1.0), 1.0)
        elapsed = time.perf_counter() - self.t0
        eta = self.clock.update(fraction, elapsed)
        self.progress(Progress(phase, step, max(total, 1), elapsed=elapsed, message=message, fraction=fraction, eta=eta))


class _FitProgress:
    """A trainer's progress callback inside one phase: its steps move the phase; a new decoder run starts the next fit.

    Args:
        report: the build's progress.
        phase: the phase that the trainer runs in.
        to_within: (fit number from 0, share of that fit done) -> share of ``phase`` done.
        label: the text shown before the trainer's own step (or fit number -> that text).
    """

    def __init__(
        self,
        report: _BuildProgress,
        phase: str,
        to_within: Callable[[int, float], float],
        label: str | Callable[[int], str],
    ) -> None:
        self.report, self.phase, self.to_within, self.label = report, phase, to_within, label
        self.fit = -1
        self._last = ""

    def __call__(self, p: Progress) -> None:
        if p.stage == "decoder" and self._last != "decoder":
            self.fit += 1
        self._last = p.stage
        start, share = _FIT_SHARES.get(p.stage, (0.0, 1.0))
        n = max(self.fit, 0)
        within = self.to_within(n, start + share * p.step / max(p.total, 1))
        label = self.label if isinstance(self.label, str) else self.label(n)
        self.report(self.phase, within, p.step, p.total, f"{label}{p.stage} {p.step}/{p.total}")


def _item_share(items: _Items, i: int, _fit: int, in_fit: float) -> float:
    """The share of a phase of items done when item ``i``'s (only) fit is ``in_fit`` done."""
    return items.at(i, in_fit)


def _cost_of_people(city: str, scale: DemoScale) -> float:
    """Relative cost of simulating one month of a city: its residents (area x density), a little superlinear."""
    spec = _city_spec(city, scale)
    return float((spec.radius_km**2 * spec.residents_per_cell) ** 1.3)


def build_demo(
    data_dir: str | Path,
    scale: str = "default",
    seed: int = 0,
    cities: tuple[str, ...] | None = None,
    progress: Callable[[Progress], None] | None = None,
    name: str = DEMO_NAME,
    only: tuple[str, ...] | None = None,
) -> dict:
    """Build the demo release under ``data_dir/name`` (replacing an older one atomically).

    Returns:
        A summary (plain data): datasets with mesh counts, build seconds, anchors.

    Args:
        scale: one of :data:`SCALES` (``knobs.DEMO_SCALE``'s choices).
        only: build just these datasets (e.g. ``("nagoya_2019_04", "nagoya_2020_04")``), for tests.
        progress: called with :class:`Progress` reports in every phase (``stays``, ``anchors``,
            ``train``, ``cluster``, ``write``, then ``done``), each with the whole build's
            ``fraction`` and, once measurable, its ``eta``.
    """
    if scale not in SCALES or scale not in (knobs.DEMO_SCALE.choices or ()):
        raise ParameterError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")
    sc = SCALES[scale]
    t0 = time.perf_counter()
    datasets = demo_datasets(cities)
    only = only if only is not None else sc.datasets
    if only is not None:
        datasets = [(c, p) for c, p in datasets if f"{c}_{p.label}" in only]
        if not datasets:
            raise ParameterError(f"none of {only} is a demo dataset")
    total = len(datasets)
    report = _BuildProgress(progress, t0)
    # The first month of a city also builds its grid and people (about as long as simulating the month).
    first_of_city = [i == next(j for j, (c2, _) in enumerate(datasets) if c2 == c) for i, (c, _) in enumerate(datasets)]
    stays_items = _Items([_cost_of_people(c, sc) * (1.6 if first else 1.0) for (c, _), first in zip(datasets, first_of_city)])

    with atomic_dir(Path(data_dir) / name) as root:
        (root / "stays").mkdir()
        (root / "truth").mkdir()
        grids, pops = {}, {}
        records: list[StayRecords] = []  # per dataset: a sample of its stays, for the anchor set
        all_counts = []  # per dataset: the full per-mesh counts, for training
        meta: list[dict] = []
        mesh_frames: list[pd.DataFrame] = []
        city_seed = {c: seed * 1000 + 17 * k for k, c in enumerate(CITIES)}
        for n, (city, period) in enumerate(datasets):
            ds_name = f"{city}_{period.label}"
            first = first_of_city[n]
            if city not in grids:
                report("stays", stays_items.at(n), n, total, f"{ds_name}: city grid and residents")
                spec = _city_spec(city, sc)
                grids[city] = build_grid(spec, city_seed[city])
                pops[city] = make_population(grids[city], spec.residents_per_cell, city_seed[city] + 1)
                pops[city].frame(grids[city]).to_parquet(root / "truth" / f"people_{city}.parquet", index=False)
            grid, pop = grids[city], pops[city]
            fest = mall = None
            if city == FESTIVAL["city"]:
                if (period.year, period.month) in ((2021, 9), (2021, 10)):
                    fest = grid.cells_near(FESTIVAL["lat"], FESTIVAL["lon"], FESTIVAL["radius_km"])
                if (period.year, period.month) >= (2021, 10):
                    mall = grid.cells_near(MALL["lat"], MALL["lon"], MALL["radius_km"])
            report("stays", stays_items.at(n, 0.4 if first else 0.0), n, total, f"{ds_name}: a month of stays")
            stays = simulate_month(
                grid, pop, period, seed=city_seed[city] + 7 * n + 3, observe=sc.observe, festival_cells=fest, mall_cells=mall
            )
            report("stays", stays_items.at(n, 0.85 if first else 0.75), n, total, f"{ds_name}: stays to meshes")
            assigned = assign_meshes(stays["user_id"].to_numpy(), stays["lat"].to_numpy(), stays["lon"].to_numpy())
            keep = assigned.kept
            stays = stays.loc[keep].reset_index(drop=True)
            stays["code"] = assigned.code[keep]
            stays["mesh_size"] = assigned.mesh_size[keep].astype(np.int16)
            stays.drop(columns=["cell"]).to_parquet(root / "stays" / f"{ds_name}.parquet", index=False)
            rec = StayRecords(
                ds_name,
                "code",
                stays["code"].to_numpy(),
                stays["stay_time"].to_numpy(),
                stays["arrival_time"].cat.codes.to_numpy().astype(np.int16),
                stays["day_of_week"].cat.codes.to_numpy().astype(np.int8),
                stays["is_holiday"].to_numpy(),
                stays["mesh_size"].to_numpy().astype(np.int64),
            )
            all_counts.append(rec.to_counts())
            records.append(_sample(rec, ANCHOR_POOL, seed + n))
            meta.append(
                {
                    "name": ds_name,
                    "city": city,
                    "year": period.year,
                    "month": period.month,
                    "severity": period.severity,
                    "stays": len(rec),
                    "users": int(stays["user_id"].nunique()),
                }
            )

        n_meshes = sum(c.n_areas for c in all_counts)
        report("anchors", 0.0, 0, 1, f"{sc.n_anchors} anchors from {total} datasets ({n_meshes:,} meshes)")

        def anchor_share(fit: int, in_fit: float) -> float:
            start, share = _ANCHOR_SHARES[2 if fit else 0]
            return start + share * in_fit

        fits = _FitProgress(report, "anchors", anchor_share, lambda fit: f"fit {fit + 1} of 2, ")

        def anchors_progress(p: Progress) -> None:
            fits(p)
            if fits.fit == 0 and p.stage == "refine" and p.step >= p.total:
                # k-means and record sampling follow the first fit with no steps of their own: say so at once.
                report("anchors", _ANCHOR_SHARES[1][0], 0, 1, f"k-means into {sc.n_anchors} anchors, sampling their records")

        anchors = build_anchor_set(
            records,
            n_anchors=sc.n_anchors,
            records_per_anchor=sc.anchor_records,
            config=TrainConfig(seed=seed),
            seed=seed,
            counts=all_counts,
            progress=anchors_progress,
        )
        del records
        anchors.save(root / ANCHOR_DIR)
        write_util_files(root)

        trained = []
        # Training cost: the decoder phase sees at most TrainConfig.sample_areas meshes, the others all of them.
        mesh_items = _Items([c.n_areas + 2000 for c in all_counts])
        for n, (counts, m) in enumerate(zip(all_counts, meta, strict=True)):
            report("train", mesh_items.at(n), n, total, f"{m['name']} ({n + 1}/{total})")
            fit = _FitProgress(report, "train", partial(_item_share, mesh_items, n), f"{m['name']} ({n + 1}/{total}): ")
            trained.append(train_embeddings(counts, anchors, TrainConfig(seed=seed + n), progress=fit))
        # One shared space: the released labels are joint clusters over every dataset (as OpenUAS's).
        parts = {m["name"]: SpacePart(emb.vectors, emb.decoder) for emb, m in zip(trained, meta, strict=True)}
        joint = {}
        k_items = _Items([k + 10 for k in RELEASED_KS])  # k-means takes longer with more centres
        for i, k in enumerate(RELEASED_KS):
            report("cluster", k_items.at(i), i, len(RELEASED_KS), f"joint clusters of {n_meshes:,} meshes, k = {k}")
            joint[k] = fit_joint(parts, k, space=name, seed=KMEANS_SEED)
            save_joint(clusters_file(root, k), joint[k])
        for n, (counts, m, emb) in enumerate(zip(all_counts, meta, trained, strict=True)):
            report("write", mesh_items.at(n), n, total, f"{m['name']} ({n + 1}/{total})")
            labels = {k: jc.assign(emb.vectors, emb.decoder) for k, jc in joint.items()}
            mesh_sizes = np.asarray(counts.mesh_sizes)  # counts keyed by mesh code always carry sizes
            codes, sizes, vectors, lab, comp = with_complemented(counts.keys, mesh_sizes, emb.vectors, labels)
            write_dataset(root, m["name"], codes, sizes, vectors, emb.decoder, lab, comp)
            grid = grids[m["city"]]
            truth = mesh_truth(counts.keys, mesh_sizes, grid.code, grid.district)
            frame = pd.DataFrame(
                {
                    "dataset": m["name"],
                    "code": counts.keys,
                    "mesh_size": counts.mesh_sizes,
                    "district": np.asarray(DISTRICTS + ("unknown",))[truth],
                    "stays": counts.dense().sum(axis=1).astype(np.int64),
                }
            )
            frame["change"] = _designed_change(m, frame, grid)
            frame["changed"] = frame["change"] != ""
            mesh_frames.append(frame)
            m.update(
                {
                    "meshes_50m": int((mesh_sizes == 50).sum()),
                    "meshes_250m": int((mesh_sizes == 250).sum()),
                    "complemented": int(comp.sum()),
                    "approximation_loss": emb.metrics["approximation_loss"],
                }
            )
        report("write", 1.0, total, total, "ground truth")
        pd.concat(mesh_frames, ignore_index=True).to_parquet(root / "truth" / "meshes.parquet", index=False)
        # The named districts and stations: search and the offline map's labels read them (core.geo.places).
        write_places(root, pd.concat([city_places(c) for c in grids], ignore_index=True))
        summary = {
            "scale": scale,
            "seed": seed,
            "seconds": time.perf_counter() - t0,
            "n_anchors": anchors.n_anchors,
            "anchor_records": sc.anchor_records,
            "datasets": meta,
            "events": {
                "festival": {k: str(v) for k, v in FESTIVAL.items()},
                "mall": {k: str(v) for k, v in MALL.items()},
                "pandemic_severity": {f"{y}_{mo:02d}": s for (y, mo), s in SEVERITY.items()},
            },
        }
        (root / "truth" / "summary.json").write_text(json.dumps(summary, indent=2))
    report("done", 1.0, total, total, f"built in {time.perf_counter() - t0:.0f} s")
    return summary


def _designed_change(meta: dict, frame: pd.DataFrame, grid) -> pd.Series:
    """How the design changed each mesh against April 2019 (Nagoya only; empty text elsewhere).

    The pandemic's strong change (severity >= 0.5) hits nightlife and restaurant / shopping
    districts: their evening and weekend stays vanish. The festival changes its park area in
    Sep-Oct 2021; the mall replaces offices and homes from its opening (25 Oct 2021).
    """
    reason = np.full(len(frame), "", dtype=object)
    if meta["city"] != "nagoya":
        return pd.Series(reason, index=frame.index)
    codes = frame["code"].to_numpy()
    if meta["severity"] >= 0.5:
        hit = frame["district"].isin([DISTRICTS[NIGHT], DISTRICTS[SHOP]]).to_numpy()
        reason[hit] = "pandemic: evening and weekend stays lost"
    if (meta["year"], meta["month"]) in ((2021, 9), (2021, 10)):
        fest = grid.code[grid.cells_near(FESTIVAL["lat"], FESTIVAL["lon"], FESTIVAL["radius_km"])]
        reason[np.isin(codes, fest) | np.isin(codes, parent_code(fest, 50, 250))] = "festival in the park"
    if (meta["year"], meta["month"]) >= (2021, 10):
        mall = grid.code[grid.cells_near(MALL["lat"], MALL["lon"], MALL["radius_km"])]
        reason[np.isin(codes, mall) | np.isin(codes, parent_code(mall, 50, 250))] = "mall replaced offices and homes"
    return pd.Series(reason, index=frame.index)
