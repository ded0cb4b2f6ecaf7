"""Cross-city region embeddings from OD flows: CoRE (ICML 2025) and baselines, with honest label transfer.

A sibling of :mod:`core.area2vec`: regions are polygons or JIS meshes, the signal is the flow of
people between them, and the output is one embedding space shared by several cities. torch is
imported only by the functions that train.
"""

from core.regions.config import BASELINES, DEFAULT_LABELS, METHODS, SCALES, CoreConfig, TransferConfig
from core.regions.evaluate import evaluate_embeddings, scores, transfer
from core.regions.graph import RegionGraph, graph_from_stays, read_city
from core.regions.methods import fit_method

__all__ = [
    "BASELINES",
    "DEFAULT_LABELS",
    "METHODS",
    "SCALES",
    "CoreConfig",
    "RegionGraph",
    "TransferConfig",
    "evaluate_embeddings",
    "fit_method",
    "graph_from_stays",
    "read_city",
    "scores",
    "transfer",
]
