"""Server-side data access for the app: discovered datasets, read once and cached in memory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from core.meshcode import code_centers
from core.release import DatasetRef, ReleaseDataset, discover, read_dataset


class Catalog:
    """The datasets under a data folder (releases found by their layout)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = self.data_dir / ".cache"
        self.refresh()

    def refresh(self) -> None:
        self.refs: dict[str, DatasetRef] = {f"{r.release}/{r.name}": r for r in discover(self.data_dir)}
        self._read.cache_clear()

    def keys(self) -> list[str]:
        return sorted(self.refs)

    def get(self, key: str) -> ReleaseDataset:
        if key not in self.refs:
            raise KeyError(f"unknown dataset {key!r}")
        return self._read(key)

    @lru_cache(maxsize=8)
    def _read(self, key: str) -> ReleaseDataset:
        return read_dataset(self.refs[key], cache_dir=self.cache_dir)

    def centres(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        ds = self.get(key)
        return code_centers(ds.codes, ds.mesh_sizes)
