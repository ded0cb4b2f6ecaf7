"""Trained area embeddings with their keys: train, save (CSV + OpenUAS .pth + metrics), load."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.area2vec.metrics import approximation_loss
from core.area2vec.model import load_state_dict, save_state_dict
from core.area2vec.trainer import Area2VecTrainer, Progress, TrainConfig
from core.atomic import atomic_dir, check_output_dir, readable, write_text_atomic
from core.constants import MESH_CODE, MESH_ID, MESH_SIZE
from core.errors import InputError
from core.mobility.stays import AreaCounts

if TYPE_CHECKING:
    from core.area2vec.anchors import AnchorSet

EMBEDDINGS_CSV = "embeddings.csv"
MODEL_PTH = "model.pth"
METRICS_JSON = "metrics.json"
RUN_FILES = (EMBEDDINGS_CSV, MODEL_PTH, METRICS_JSON)


@dataclass
class AreaEmbeddings:
    """Embeddings of areas, keyed as in the input (``mesh_id`` or ``code``), and the decoder.

    Attributes:
        key_column: ``mesh_id`` or ``code``.
        keys: area keys (int64), one per row of ``vectors``.
        vectors: ``areas x dim`` (float32).
        decoder: ``168 x dim`` (float32).
        mesh_sizes: mesh size per area for ``code`` keys.
        metrics: plain data about the training (loss, epochs, seconds...).
    """

    key_column: str
    keys: np.ndarray
    vectors: np.ndarray
    decoder: np.ndarray
    mesh_sizes: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def frame(self) -> pd.DataFrame:
        """Keys then one column per dimension (``e0 .. e7``)."""
        df = pd.DataFrame(self.vectors, columns=[f"e{i}" for i in range(self.dim)])
        df.insert(0, self.key_column, self.keys)
        if self.mesh_sizes is not None:
            df.insert(1, MESH_SIZE, self.mesh_sizes)
        return df

    def save(self, out_dir: str | Path, overwrite: bool = True) -> Path:
        """Write ``embeddings.csv``, ``model.pth`` (OpenUAS layout) and ``metrics.json`` as a whole.

        The run is written into a temporary folder beside ``out_dir`` that then replaces it
        (:func:`~core.atomic.atomic_dir`): a save failing part-way leaves the previous run as it was.

        Raises:
            CoreError: when ``out_dir`` holds files that are not a run's, or a run and not ``overwrite``.
        """
        out = check_output_dir(Path(out_dir), overwrite, keep=RUN_FILES)
        import pyarrow as pa
        import pyarrow.csv as pacsv

        with atomic_dir(out) as tmp:
            table = pa.Table.from_pandas(self.frame(), preserve_index=False)
            pacsv.write_csv(table, tmp / EMBEDDINGS_CSV, pacsv.WriteOptions(quoting_style="none"))
            save_state_dict(tmp / MODEL_PTH, self.vectors, self.decoder)
            write_text_atomic(tmp / METRICS_JSON, json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
            readable(tmp / EMBEDDINGS_CSV)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> AreaEmbeddings:
        """Read what :meth:`save` wrote."""
        out = Path(out_dir)
        emb = read_embeddings_csv(out / EMBEDDINGS_CSV)
        _, decoder = load_state_dict(out / MODEL_PTH)
        metrics = json.loads((out / METRICS_JSON).read_text()) if (out / METRICS_JSON).exists() else {}
        emb.decoder, emb.metrics = decoder, metrics
        return emb


def read_embeddings_csv(path: str | Path) -> AreaEmbeddings:
    """Read an embeddings CSV: a key column (``mesh_id`` or ``code``), optional ``mesh_size``, then numbers."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    df = pd.read_csv(path)
    if df.empty:
        raise InputError(path.name, "has no rows", expected="one row per area")
    key = df.columns[0]
    if key not in (MESH_ID, MESH_CODE):
        raise InputError(path.name, f"first column is '{key}'", expected=f"'{MESH_ID}' or '{MESH_CODE}'")
    sizes = df[MESH_SIZE].to_numpy(np.int64) if MESH_SIZE in df.columns else None
    vec_cols = [c for c in df.columns[1:] if c != MESH_SIZE]
    vectors = df[vec_cols].to_numpy(np.float32)
    if not np.isfinite(vectors).all():
        rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        raise InputError(
            path.name, "non-numeric embedding values", rows=(rows[:5] + 1).tolist(), n_bad=len(rows), expected="finite numbers"
        )
    return AreaEmbeddings(key, df[key].to_numpy(np.int64), vectors, np.zeros((168, vectors.shape[1]), np.float32), sizes)


def train_embeddings(
    counts: AreaCounts,
    anchors: AnchorSet | None = None,
    config: TrainConfig | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> AreaEmbeddings:
    """Train Area2Vec on per-area counts, anchored to an :class:`core.area2vec.anchors.AnchorSet` or free.

    The metrics hold ``approximation_loss``, ``cross_entropy``, ``epochs``, ``seconds``,
    ``n_meshes``, ``n_stays``, ``anchored`` and the configuration.
    """
    config = config or TrainConfig()
    pair = None
    if anchors is not None:
        if anchors.dim != config.dim:
            config = TrainConfig(**{**config.to_dict(), "dim": anchors.dim})
        pair = (anchors.counts, anchors.embeddings)
    dense = counts.dense()
    result = Area2VecTrainer(config).fit(dense, anchors=pair, progress=progress, cancel=cancel)
    metrics = {
        "approximation_loss": approximation_loss(dense, result.embeddings, result.decoder),
        "cross_entropy": result.final_loss,
        "epochs": result.epochs,
        "newton_iters": result.newton_iters,
        "converged": result.converged,
        "seconds": result.seconds,
        "n_meshes": counts.n_areas,
        "n_stays": counts.n_stays,
        "anchored": anchors is not None,
        "n_anchors": int(anchors.n_anchors) if anchors is not None else 0,
        "config": config.to_dict(),
    }
    return AreaEmbeddings(counts.key_column, counts.keys, result.embeddings, result.decoder, counts.mesh_sizes, metrics)
