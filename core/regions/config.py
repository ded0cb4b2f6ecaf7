"""Hyper-parameters, method names and label scales of cross-city region alignment, declared once.

The command line and the dashboard's Regions view read their defaults, ranges and choices from the
knobs at the end (:data:`METHOD`, :data:`EPOCHS`, :data:`SEED`, :data:`SCALE`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.knobs import Knob

# Methods of :func:`core.regions.methods.fit_method`: CoRE (one stage), each city alone, post-hoc
# alignment of the "individual" embeddings on shared-rank anchors (Yabe et al. 2020's RP / RA), and
# Area2Vec anchored to a shared anchor set (cities built from stays only).
METHODS = ("core", "individual", "procrustes", "affine", "area2vec")
# Regions of a city built from a stay table: JIS meshes, or the joint clusters of its release.
REGION_KINDS = ("meshes", "clusters")
# How CoRE's losses are normalised: as the paper writes them (per-region mean RE, cosine anchors, cycle
# against Z Z^T), or as the authors' public code computes them (summed RE, dot-product anchors / N_a,
# cycle against the city's own attention, biased Q / K): the weights of the three losses differ.
LOSS_FORMS = ("paper", "reference")
# Label scales of the evaluation: as given (sums over a region), per km^2, log(1 + sum).
SCALES = ("sum", "density", "log")
# Baselines reported beside every method: the source city's mean, a ridge on log area alone.
BASELINES = ("mean", "area")
# The label files of the CoRE data (``<label>_<city>_sum.npy``).
DEFAULT_LABELS = ("gdp", "population", "co2")


@dataclass(frozen=True)
class CoreConfig:
    """Hyper-parameters of the CoRE encoder and its alignment losses (paper section 4.1 unless noted)."""

    dim: int = 128
    heads: int = 8
    epochs: int = 300  # the reference runs 600; 300 keeps one pair near 5 minutes here (README, CoRE section)
    lr: float = 1e-3
    n_anchors: int = 1000  # virtual parallel anchors of the manifold alignment (N_a)
    alpha: float = 1.0  # weight of the latent manifold alignment loss
    beta: float = 1.0  # weight of the latent individual alignment loss
    seed: int = 0
    losses: str = "paper"  # "paper": the paper's normalisations; "reference": the public code's (LOSS_FORMS)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class TransferConfig:
    """The evaluation protocol of the paper (section 4.2.3): a ridge on all source regions."""

    ridge_alpha: float = 1.0
    seeds: int = 5


# The settings a user picks (command line and dashboard), each declared once.
METHOD = Knob("method", "core", str, "embedding method", choices=METHODS)
EPOCHS = Knob("epochs", CoreConfig.epochs, int, "training epochs, full batch", 1, 5000)
SEED = Knob("seed", CoreConfig.seed, int, "first seed", 0, 2**31 - 1)
LOSSES = Knob(
    "loss form",
    CoreConfig.losses,
    str,
    "CoRE's loss normalisations: as the paper writes them, or as the authors' public code computes them",
    choices=LOSS_FORMS,
)
SCALE = Knob("label scale", "sum", str, "label scale: as given, per km^2, or log(1 + sum)", choices=SCALES)
# Cities given as stay tables (and the area2vec method).
REGIONS = Knob(
    "regions", "meshes", str, "regions of a stay table: JIS meshes, or the joint clusters of its release", choices=REGION_KINDS
)
MESH_SIZE = Knob("mesh size", 1000, int, "mesh size of the regions of a stay table (1000, 250 or 50)", 50, 1000, unit="m")
CLUSTERS_K = Knob("number of clusters", 10, int, "k of the release's joint clusters (--regions clusters)", 2, 50)
ANCHORS = Knob(
    "anchor set",
    None,
    str,
    "anchor folder (anchor_df.csv + anchor_embeddings.pth) of the area2vec method; "
    "none: the anchor_data/ of the release that holds the stay tables",
)
