"""Anchor sets (SPEC §4): read / write the OpenUAS layout, and build a new set from stay datasets.

An anchor set is ``n`` anchors, each with stay records (``anchor_df.csv``: ``anchor_id,
stay_time, arrival_time, day_of_week, is_holiday``, times in 15-minute steps) and a fixed
embedding (``anchor_embeddings.pth``: an ``n x dim`` tensor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.area2vec.tokens import make_tokens
from core.area2vec.trainer import Area2VecTrainer, Progress, TrainConfig
from core.atomic import atomic_dir
from core.constants import ANCHOR_ID, ARRIVAL_TIME, DAY_OF_WEEK, IS_HOLIDAY, MESH_ID, N_TOKENS, STAY_TIME, WEEKDAYS
from core.errors import CoreError, InputError
from core.mobility.stays import StayRecords, count_matrix, factorize_keys, stack_counts

ANCHOR_CSV = "anchor_df.csv"
ANCHOR_PTH = "anchor_embeddings.pth"
ANCHOR_TENSOR_NAMES = (ANCHOR_PTH, "anchor_embeddings.pt")  # the code writes .pth, the paper says .pt


def anchor_tensor_path(folder: str | Path) -> Path | None:
    """The anchor embedding tensor of an anchor folder (``.pth`` or ``.pt``), or ``None``."""
    return next((Path(folder) / n for n in ANCHOR_TENSOR_NAMES if (Path(folder) / n).is_file()), None)


QUANTUM = 15  # minutes


@dataclass(frozen=True)
class AnchorSet:
    """Anchors: per-anchor token counts, fixed embeddings and (optionally) their records.

    Attributes:
        counts: ``n x 168`` token counts of each anchor's records.
        embeddings: ``n x dim`` fixed anchor embeddings (row i = anchor i).
        records: the anchor records, when read from or built as a table.
    """

    counts: np.ndarray
    embeddings: np.ndarray
    records: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.counts.shape != (self.embeddings.shape[0], N_TOKENS):
            raise CoreError(f"anchor counts {self.counts.shape} and embeddings {self.embeddings.shape} do not match")
        if self.embeddings.shape[0] < 2:
            raise CoreError(
                f"an anchor set needs at least 2 anchors to fix a common space; this one has {self.embeddings.shape[0]}"
            )

    @property
    def n_anchors(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def save(self, folder: str | Path) -> Path:
        """Write ``anchor_df.csv`` and ``anchor_embeddings.pth`` into ``folder`` (replaced atomically)."""
        import torch

        if self.records is None:
            raise CoreError("this anchor set has no records to write")
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            import pyarrow as pa
            import pyarrow.csv as pacsv

            pacsv.write_csv(pa.Table.from_pandas(self.records, preserve_index=False), tmp / ANCHOR_CSV)
            torch.save(torch.from_numpy(np.ascontiguousarray(self.embeddings, dtype=np.float32)), tmp / ANCHOR_PTH)
        return folder


def _load_anchor_tensor(path: Path) -> np.ndarray:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path.name, f"cannot be read as a PyTorch tensor file: {exc}") from exc
    if isinstance(obj, dict):
        tensors = [v for v in obj.values() if hasattr(v, "ndim") and v.ndim == 2]
        if len(tensors) != 1:
            raise InputError(path.name, f"holds {sorted(obj)}", expected="one anchors x dim tensor")
        obj = tensors[0]
    if not hasattr(obj, "ndim") or obj.ndim != 2:
        raise InputError(path.name, f"holds {type(obj).__name__}", expected="an anchors x dim tensor")
    return obj.detach().cpu().numpy().astype(np.float32)


def read_anchor_set(folder: str | Path) -> AnchorSet:
    """Read an anchor set in the OpenUAS layout (``anchor_df.csv`` + ``anchor_embeddings.pth``).

    Anchor ids are matched to embedding rows in ascending order. The tensor file is loaded with
    ``weights_only=True``.

    Raises:
        InputError: a file is missing or malformed, or the ids do not match the embedding rows.
    """
    folder = Path(folder)
    csv_path, pth_path = folder / ANCHOR_CSV, anchor_tensor_path(folder) or folder / ANCHOR_PTH
    for p in (csv_path, pth_path):
        if not p.is_file():
            raise InputError(str(p), "missing", expected=f"an anchor folder with {ANCHOR_CSV} and {ANCHOR_PTH}")
    emb = _load_anchor_tensor(pth_path)
    frame = pd.read_csv(csv_path)
    if ANCHOR_ID not in frame.columns:
        raise InputError(
            ANCHOR_CSV,
            f"missing column '{ANCHOR_ID}'",
            expected=f"{ANCHOR_ID}, {STAY_TIME}, {ARRIVAL_TIME}, {DAY_OF_WEEK}, {IS_HOLIDAY}",
        )
    from core.mobility.stays import stays_from_frame

    recs = stays_from_frame(frame.rename(columns={ANCHOR_ID: MESH_ID}), source=ANCHOR_CSV)
    ids, index = factorize_keys(recs.area_keys)
    if len(ids) != emb.shape[0]:
        raise InputError(
            ANCHOR_CSV,
            f"has {len(ids)} distinct anchor ids but {ANCHOR_PTH} has {emb.shape[0]} embeddings",
            column=ANCHOR_ID,
            expected="one embedding row per anchor id",
        )
    counts = count_matrix(index, recs.tokens(), len(ids)).toarray()
    return AnchorSet(counts.astype(np.float32), emb, frame)


def quantise(stay_time: np.ndarray, arrival_minute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stay times rounded up and arrivals rounded down to 15 minutes.

    Every duration bound (30, 60, ... 720) and every 2-hour bin edge is a multiple of 15, so the
    quantised records keep their exact token.
    """
    stay = (np.ceil(np.asarray(stay_time, dtype=np.float64) / QUANTUM) * QUANTUM).astype(np.int64)
    arrival = (np.asarray(arrival_minute, dtype=np.int64) // QUANTUM) * QUANTUM
    return stay, arrival


def build_anchor_set(
    datasets: list[StayRecords],
    n_anchors: int = 512,
    records_per_anchor: int = 20000,
    config: TrainConfig | None = None,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
    counts: list | None = None,
) -> AnchorSet:
    """Build an anchor set from several stay datasets (SPEC §4).

    Embeds all datasets together (free), k-means the areas into ``n_anchors`` clusters, samples
    ``records_per_anchor`` stay records per cluster (no geography kept; times quantised to 15
    minutes), trains again with the anchors as extra areas and keeps the anchors' embeddings.

    Args:
        datasets: stay records of each dataset (may be a random sample of each dataset's stays
            when ``counts`` gives the full per-area counts: large builds keep only a sample).
        counts: full :class:`~core.mobility.stays.AreaCounts` per dataset (default: from ``datasets``).

    Raises:
        CoreError: for fewer than 2 anchors or more anchors than areas.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    config = config or TrainConfig(seed=seed)
    if n_anchors < 2:
        raise CoreError(f"an anchor set needs at least 2 anchors, got n_anchors={n_anchors}")
    if records_per_anchor < 1:
        raise CoreError(f"records_per_anchor must be >= 1, got {records_per_anchor}")
    parts = counts if counts is not None else [d.to_counts() for d in datasets]
    if len(parts) != len(datasets):
        raise CoreError("counts and datasets must have one entry per dataset")
    stacked, _ = stack_counts(parts)
    n_areas = stacked.shape[0]
    if n_anchors > n_areas:
        raise CoreError(f"{n_anchors} anchors need at least as many areas; the datasets have {n_areas}")
    dense = stacked.toarray()
    first = Area2VecTrainer(config).fit(dense, progress=progress)
    # Each record's row in the stacked counts (areas of dataset i are offset by earlier datasets).
    rows_parts, stays, arrivals, weekdays, holidays = [], [], [], [], []
    offset = 0
    for d, part in zip(datasets, parts, strict=True):
        rows_parts.append(offset + np.searchsorted(part.keys, d.area_keys))
        stays.append(d.stay_time)
        arrivals.append(d.arrival_minute)
        weekdays.append(d.weekday)
        holidays.append(d.is_holiday)
        offset += part.n_areas
    rec_rows = np.concatenate(rows_parts)
    # Anchors are clusters of the areas that have records to sample (with sampled records, e.g. the
    # demo's, some areas have counts only): k-means over those areas alone, so no cluster is empty.
    with_records = np.unique(rec_rows)
    if n_anchors > len(with_records):
        raise CoreError(f"{n_anchors} anchors need at least as many areas with records; the records cover {len(with_records)}")
    km_cls = MiniBatchKMeans if len(with_records) > 50_000 else KMeans
    km = km_cls(n_clusters=n_anchors, random_state=seed, n_init=3).fit(first.embeddings[with_records].astype(np.float64))
    area_cluster = np.full(n_areas, -1, dtype=np.int64)
    area_cluster[with_records] = km.labels_
    rec_cluster = area_cluster[rec_rows]
    sizes = np.bincount(rec_cluster, minlength=n_anchors)
    if (sizes == 0).any():  # mini-batch k-means may still leave a centre without areas: drop it
        keep = np.flatnonzero(sizes > 0)
        renumber = np.full(n_anchors, -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        rec_cluster = renumber[rec_cluster]
        n_anchors = len(keep)
        sizes = sizes[keep]
    rng = np.random.default_rng(seed)
    # Sample per cluster without a Python loop over records: shuffle, stable-sort by cluster,
    # then take `records_per_anchor` positions per cluster (cycling when a cluster is small).
    perm = rng.permutation(len(rec_cluster))
    order = perm[np.argsort(rec_cluster[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(records_per_anchor)
    take = order[(starts[:, None] + pos[None, :] % sizes[:, None]).ravel()]
    anchor_id = np.repeat(np.arange(n_anchors), records_per_anchor)
    stay, arrival = quantise(np.concatenate(stays)[take], np.concatenate(arrivals)[take])
    weekday = np.concatenate(weekdays)[take]
    holiday = np.concatenate(holidays)[take]
    hh, mm = np.divmod(arrival, 60)
    records = pd.DataFrame(
        {
            ANCHOR_ID: anchor_id,
            STAY_TIME: stay,
            ARRIVAL_TIME: _hhmm(hh, mm),
            DAY_OF_WEEK: np.asarray(WEEKDAYS)[weekday],
            IS_HOLIDAY: holiday,
        }
    )
    anchor_counts = count_matrix(anchor_id, make_tokens(stay, arrival, weekday, holiday), n_anchors).toarray().astype(np.float32)
    plus = np.vstack([dense, anchor_counts])
    second = Area2VecTrainer(TrainConfig(**{**config.to_dict(), "seed": config.seed + 1})).fit(plus, progress=progress)
    return AnchorSet(anchor_counts, second.embeddings[n_areas:].copy(), records)


def _hhmm(hh: np.ndarray, mm: np.ndarray) -> np.ndarray:
    """'HH:MM' strings, vectorised."""
    h = np.char.zfill(hh.astype(str), 2)
    m = np.char.zfill(mm.astype(str), 2)
    return np.char.add(np.char.add(h, ":"), m)
