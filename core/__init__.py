"""Area embeddings learned from human stays: the OpenUAS / Area2Vec method with anchoring.

Heavy dependencies (torch, scikit-learn) are imported where they are used, and the names below
are imported on first use (PEP 562), so ``import core`` -- and ``core.knobs``, which the app's
first start reads before it answers -- stays quick. This package never imports Dash.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.analysis.charts import area_patterns, cluster_patterns, stay_patterns, stay_weight_matrix
    from core.analysis.clustering import cluster_areas, order_scores
    from core.analysis.similarity import distance_classes, distances, similar_across, top_k, within
    from core.area2vec.anchors import AnchorSet, build_anchor_set, read_anchor_set
    from core.area2vec.embeddings import AreaEmbeddings, read_embeddings_csv, train_embeddings
    from core.area2vec.metrics import approximation_loss, misalignment
    from core.area2vec.tokens import make_tokens
    from core.area2vec.trainer import Area2VecTrainer, TrainConfig, anchor_power
    from core.errors import CoreError, InputError, ReleaseError, TrainingCancelled
    from core.geo.meshcode import code_bounds, code_centers, latlon_to_code
    from core.mobility.stays import AreaCounts, StayRecords, read_counts, read_stays, stays_from_frame
    from core.progress import Progress
    from core.release.layout import DatasetRef, ReleaseDataset, discover, read_dataset, write_dataset

# Each public name and the module that defines it, imported when the name is first used.
_LAZY = {
    "AnchorSet": "core.area2vec.anchors",
    "Area2VecTrainer": "core.area2vec.trainer",
    "AreaCounts": "core.mobility.stays",
    "AreaEmbeddings": "core.area2vec.embeddings",
    "CoreError": "core.errors",
    "DatasetRef": "core.release.layout",
    "InputError": "core.errors",
    "Progress": "core.progress",
    "ReleaseDataset": "core.release.layout",
    "ReleaseError": "core.errors",
    "StayRecords": "core.mobility.stays",
    "TrainConfig": "core.area2vec.trainer",
    "TrainingCancelled": "core.errors",
    "anchor_power": "core.area2vec.trainer",
    "approximation_loss": "core.area2vec.metrics",
    "area_patterns": "core.analysis.charts",
    "build_anchor_set": "core.area2vec.anchors",
    "cluster_areas": "core.analysis.clustering",
    "cluster_patterns": "core.analysis.charts",
    "code_bounds": "core.geo.meshcode",
    "code_centers": "core.geo.meshcode",
    "discover": "core.release.layout",
    "distance_classes": "core.analysis.similarity",
    "distances": "core.analysis.similarity",
    "latlon_to_code": "core.geo.meshcode",
    "make_tokens": "core.area2vec.tokens",
    "misalignment": "core.area2vec.metrics",
    "order_scores": "core.analysis.clustering",
    "read_anchor_set": "core.area2vec.anchors",
    "read_counts": "core.mobility.stays",
    "read_dataset": "core.release.layout",
    "read_embeddings_csv": "core.area2vec.embeddings",
    "read_stays": "core.mobility.stays",
    "similar_across": "core.analysis.similarity",
    "stay_patterns": "core.analysis.charts",
    "stay_weight_matrix": "core.analysis.charts",
    "stays_from_frame": "core.mobility.stays",
    "top_k": "core.analysis.similarity",
    "train_embeddings": "core.area2vec.embeddings",
    "within": "core.analysis.similarity",
    "write_dataset": "core.release.layout",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AnchorSet",
    "Area2VecTrainer",
    "AreaCounts",
    "AreaEmbeddings",
    "CoreError",
    "DatasetRef",
    "InputError",
    "Progress",
    "ReleaseDataset",
    "ReleaseError",
    "StayRecords",
    "TrainConfig",
    "TrainingCancelled",
    "anchor_power",
    "approximation_loss",
    "area_patterns",
    "build_anchor_set",
    "cluster_areas",
    "cluster_patterns",
    "code_bounds",
    "code_centers",
    "discover",
    "distance_classes",
    "distances",
    "latlon_to_code",
    "make_tokens",
    "misalignment",
    "order_scores",
    "read_anchor_set",
    "read_counts",
    "read_dataset",
    "read_embeddings_csv",
    "read_stays",
    "similar_across",
    "stay_patterns",
    "stay_weight_matrix",
    "stays_from_frame",
    "top_k",
    "train_embeddings",
    "within",
    "write_dataset",
]
