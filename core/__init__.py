"""Area embeddings learned from human stays: the OpenUAS / Area2Vec method with anchoring.

Heavy dependencies (torch, scikit-learn) are imported where they are used, so ``import core``
stays quick. This package never imports Dash.
"""

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
