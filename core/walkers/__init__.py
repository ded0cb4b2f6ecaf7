"""Walkers: trajectory models (RAW, "Regions are who walk them") -> user and region embeddings.

Heavy imports (torch, scikit-learn) happen inside the functions that need them, so importing this
package stays light.
"""

from core.walkers.model import WalkerConfig, WalkerModel
from core.walkers.regions import RegionEmbeddings, read_regions_csv, read_users_csv, region_embeddings
from core.walkers.trajectories import Trajectories, people_table, read_trajectories, split_users, trajectories_from_frame

__all__ = [
    "RegionEmbeddings",
    "Trajectories",
    "WalkerConfig",
    "WalkerModel",
    "people_table",
    "read_regions_csv",
    "read_trajectories",
    "read_users_csv",
    "region_embeddings",
    "split_users",
    "trajectories_from_frame",
]
