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
from pathlib import Path

import numpy as np
import pandas as pd

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
from core.progress import Progress
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
    """Size knobs: city radius multipliers (per city where given), anchors."""

    radius: float = 1.0
    city_radius: tuple[tuple[str, float], ...] = ()
    residents: float = 1.0
    observe: float = 0.2
    n_anchors: int = 512
    anchor_records: int = 4000

    def radius_of(self, city: str) -> float:
        return dict(self.city_radius).get(city, self.radius)


SCALES = {
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


def _inner(report: Callable[[str, int, int, str], None], stage: str) -> Callable[[Progress], None]:
    """The terminal keeps moving inside a long phase: the trainer's own steps, under this stage's name."""

    def forward(p: Progress) -> None:
        report(stage, p.step, p.total, f"{p.stage} {p.step}/{p.total}")

    return forward


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
        only: build just these datasets (e.g. ``("nagoya_2019_04", "nagoya_2020_04")``), for tests.
    """
    if scale not in SCALES:
        raise ParameterError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")
    sc = SCALES[scale]
    t0 = time.perf_counter()
    datasets = demo_datasets(cities)
    if only is not None:
        datasets = [(c, p) for c, p in datasets if f"{c}_{p.label}" in only]
        if not datasets:
            raise ParameterError(f"none of {only} is a demo dataset")
    total = len(datasets)

    def report(stage: str, done: int, tot: int, detail: str = "") -> None:
        if progress is not None:
            progress(Progress(stage, done, tot, elapsed=time.perf_counter() - t0, message=detail))

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
            report("stays", n, total, ds_name)
            if city not in grids:
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
            stays = simulate_month(
                grid, pop, period, seed=city_seed[city] + 7 * n + 3, observe=sc.observe, festival_cells=fest, mall_cells=mall
            )
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

        report("anchors", 0, 1, f"{sc.n_anchors} anchors from {total} datasets")

        anchors = build_anchor_set(
            records,
            n_anchors=sc.n_anchors,
            records_per_anchor=sc.anchor_records,
            config=TrainConfig(seed=seed),
            seed=seed,
            counts=all_counts,
            progress=_inner(report, "anchors"),
        )
        del records
        anchors.save(root / ANCHOR_DIR)
        write_util_files(root)

        trained = []
        for n, (counts, m) in enumerate(zip(all_counts, meta, strict=True)):
            report("train", n, total, m["name"])
            trained.append(
                train_embeddings(counts, anchors, TrainConfig(seed=seed + n), progress=_inner(report, f"train {m['name']}"))
            )
        # One shared space: the released labels are joint clusters over every dataset (as OpenUAS's).
        report("cluster", 0, len(RELEASED_KS), "joint clusters")
        parts = {m["name"]: SpacePart(emb.vectors, emb.decoder) for emb, m in zip(trained, meta, strict=True)}
        joint = {}
        for i, k in enumerate(RELEASED_KS):
            joint[k] = fit_joint(parts, k, space=name, seed=KMEANS_SEED)
            save_joint(clusters_file(root, k), joint[k])
            report("cluster", i + 1, len(RELEASED_KS), f"k = {k}")
        for counts, m, emb in zip(all_counts, meta, trained, strict=True):
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
        report("done", total, total)
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
