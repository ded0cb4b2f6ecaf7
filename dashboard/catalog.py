"""Server-side data for the app: discovered datasets, read once, with cached indexes and labels.

The app installs one :class:`AppContext` at start (:func:`install`); callbacks reach the catalog
and the app's settings through :func:`app_context` / :func:`get_catalog`, never through closures.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import knobs
from core.analysis.charts import cluster_charts, stay_patterns
from core.analysis.diff import PeriodDiff, diff_datasets
from core.analysis.joint import JointClusters
from core.analysis.similarity import TopMatches, resolve_space, space_distances, top_matches
from core.analysis.similarity import points as similarity_points
from core.geo.meshcode import code_centers, parent_code
from core.geo.places import empty_places, read_places
from core.geo.tiles import MeshIndex
from core.release.clusters import rename_cluster
from core.release.layout import (
    CITY_CENTRES,
    DatasetRef,
    ReleaseDataset,
    city_in_name,
    discover,
    read_dataset,
    split_name,
)
from core.release.spaces import Space, joint_clusters, spaces_of, stored_path


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


# Cached values that exist per clicked mesh (distances from it, its matches): every click adds one,
# so they live in their own cache; in the heavy one, 20 people clicking evicted the period diffs
# (7 s each to recompute) within seconds (bench_load: diff p95 7.2 s with one client).
_PER_CLICK = frozenset({"from", "matches", "classes", "class-charts"})


def _version_of(stamps: dict[str, tuple]) -> int:
    """The catalog's version: a digest of its datasets' files (path, size, mtime), the same number in
    every server process that sees the same files (the page keeps it to notice new datasets, and its
    requests may reach any of several workers)."""
    digest = hashlib.sha1(repr(sorted(stamps.items())).encode()).hexdigest()
    return int(digest[:12], 16)


class Catalog:
    """The datasets under a data folder (releases found by their layout), with caches."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = self.data_dir / ".cache"
        self._lock = threading.RLock()
        self._flights: dict = {}  # key -> lock held while one thread computes it
        self._looked = -float("inf")  # when refresh_if_stale last looked (time.monotonic)
        self.refresh()

    def refresh(self) -> None:
        with self._lock:
            self.refs: dict[str, DatasetRef] = self._discover()
            self._stamp = self._stamps(self.refs)
            # Similar-area search reads every dataset of a release (the real one has 23): keep them.
            self._data = _LRU(64)
            self._derived = _LRU(64)
            self._clicks = _LRU(128)  # per clicked mesh (a distance per mesh each): never evicts the heavy values
            self._metrics: dict[str, dict | None] = {}
            self.version = _version_of(self._stamp)

    def _discover(self) -> dict[str, DatasetRef]:
        return {f"{r.release}/{r.name}": r for r in discover(self.data_dir)}

    @staticmethod
    def _stamps(refs: dict[str, DatasetRef]) -> dict[str, tuple]:
        out = {}
        for key, ref in refs.items():
            try:
                st = ref.geojson.stat()
                out[key] = (str(ref.geojson), st.st_size, st.st_mtime_ns)
            except OSError:
                out[key] = (str(ref.geojson), -1, -1)
        return out

    def refresh_if_stale(self, seconds: float = 1.0) -> bool:
        """:meth:`refresh_if_changed`, at most once every ``seconds`` (called before every request).

        With several server processes a dataset trained, renamed or deleted through one of them must be
        known to the others at the next request (a page's lists come from one worker, its next callback
        may reach another); a look costs a folder listing and one ``stat`` per dataset.
        """
        now = time.monotonic()
        with self._lock:
            if now - self._looked < seconds:
                return False
            self._looked = now
        return self.refresh_if_changed()

    def refresh_if_changed(self) -> bool:
        """Look for added, removed or rewritten datasets (a finished training job); keep caches of the others."""
        refs = self._discover()
        stamps = self._stamps(refs)
        with self._lock:
            if stamps == self._stamp:
                return False
            changed = {k for k in set(stamps) | set(self._stamp) if stamps.get(k) != self._stamp.get(k)}
            self.refs, self._stamp = refs, stamps
            for key in changed:
                self._data.pop(key, None)
                self._metrics.pop(key, None)
            # Derived values of other datasets may depend on the changed ones (diffs, similar lists): drop them all.
            self._derived = _LRU(64)
            self._clicks = _LRU(128)  # per clicked mesh (a distance per mesh each): never evicts the heavy values
            self.version = _version_of(stamps)
            return True

    def metrics(self, key: str) -> dict | None:
        """Training metrics written beside a dataset trained here (``japan_city/metrics/<name>.json``)."""
        from core.workflow.userdata import read_metrics

        with self._lock:
            if key not in self._metrics:
                self._metrics[key] = read_metrics(self.refs[key].geojson) if key in self.refs else None
            return self._metrics[key]

    def spaces(self) -> dict[str, Space]:
        """The shared space of every dataset (recomputed when datasets come or go)."""
        return self._memo(("spaces", self.version), lambda: spaces_of(self.refs, self.metrics))

    def space(self, key: str) -> str:
        """The embedding space a dataset lives in: its anchor release, or ``free:<key>`` when trained free."""
        return self.spaces()[key].name

    def comparable(self, key: str) -> list[str]:
        """Other datasets in the same space as ``key`` (similar-area search and diffs run over these)."""
        spaces = self.spaces()
        here = spaces[key].name
        return [k for k in self.keys() if k != key and spaces[k].name == here]

    def joint(self, key: str, k: int) -> JointClusters:
        """The joint clusters at ``k`` of ``key``'s space (stored with its release; computed once)."""
        space = self.spaces()[key]
        # Keyed by the stored file's stamp too: names given to the clusters through another server
        # process (several workers) are read again here.
        try:
            st = stored_path(space, k, self.cache_dir / "clusters").stat()
            stamp: tuple = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = ()
        return self._memo(
            ("joint", space.name, k, stamp), lambda: joint_clusters(space, k, self.get, self.cache_dir / "clusters")
        )

    def cluster_names(self, key: str, k: int) -> list[str]:
        """The shown name of every cluster of ``key``'s space at ``k``."""
        return self.joint(key, k).display_names()

    def rename_cluster(self, key: str, k: int, cluster: int, name: object) -> list[str]:
        """Give a cluster of ``key``'s space a user's name (kept with the release); the new names."""
        space = self.spaces()[key]
        self.joint(key, k)  # make sure the clusters are stored
        rename_cluster(stored_path(space, k, self.cache_dir / "clusters"), cluster, name)
        with self._lock:
            for cache_key in list(self._derived):
                if cache_key[0] in ("joint", "summary") and (cache_key[1] == space.name or cache_key[0] == "summary"):
                    self._derived.pop(cache_key, None)
        return self.cluster_names(key, k)

    def keys(self) -> list[str]:
        return sorted(self.refs)

    def label(self, key: str) -> str:
        """A dataset's label: a dataset trained here by the name it was given, exactly (never re-parsed into
        city and period) and its space ("anchored to demo" or "free"); a release's own by city and period."""
        ref = self.refs[key]
        if self.metrics(key) is not None:
            space = self.spaces()[key]
            return f"{ref.release} / {ref.name} · " + ("free" if space.free else f"anchored to {space.name}")
        city = city_in_name(ref.name) or self.get(key).city
        period = split_name(ref.name)[1]
        canonical = re.fullmatch(rf"{re.escape(city)}_\d{{4}}(_\d\d)?", ref.name.lower()) is not None
        if canonical:
            return f"{ref.release} / {city} {period}".strip()
        return f"{ref.release} / {ref.name} ({city} {period})".replace(" )", ")")

    def options(self) -> list[dict]:
        """Dropdown options (searchable by any part of the label), labelled by :meth:`label` (never two alike)."""
        return [{"label": self.label(key), "value": key} for key in self.keys()]

    def diff_options(self) -> list[dict]:
        """Options for period comparisons: a free dataset is a space of its own and is never offered
        (shown, disabled, so that its absence is explained)."""
        spaces = self.spaces()
        return [
            {"label": o["label"] + " (not comparable)", "value": o["value"], "disabled": True} if spaces[o["value"]].free else o
            for o in self.options()
        ]

    def user_options(self) -> list[dict]:
        """Options of the datasets trained here (the ``user`` release): the ones that can be renamed or deleted."""
        from core.workflow.userdata import USER_RELEASE

        return [o for o in self.options() if self.refs[o["value"]].release == USER_RELEASE]

    def period(self, key: str) -> str:
        """The dataset's period: the label given at training, else the one read from its name."""
        m = self.metrics(key) or {}
        return str(m.get("period") or self.get(key).period)

    def max_k(self, key: str) -> int:
        """The most clusters the dataset can show: its trained meshes (complemented ones are copies), at least 2."""
        m = self.metrics(key) or {}
        n = self.get(key).n_meshes
        return max(2, min(n, int(m.get("max_k") or n)))

    def forget(self, name: str) -> None:
        """Drop the read caches of a dataset named ``name`` (after it was renamed or deleted)."""
        pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{20}}\.npz")
        if self.cache_dir.is_dir():
            for f in self.cache_dir.iterdir():
                if pattern.fullmatch(f.name):
                    f.unlink(missing_ok=True)
        self.refresh_if_changed()

    def get(self, key: str) -> ReleaseDataset:
        if key not in self.refs:
            raise KeyError(f"unknown dataset {key!r}")
        with self._lock:
            if key not in self._data:
                self._data.put(key, read_dataset(self.refs[key], cache_dir=self.cache_dir))
            return self._data[key]

    def _store(self, kind: str) -> _LRU:
        return self._clicks if kind in _PER_CLICK else self._derived

    def _memo(self, key, make):
        """The cached value of ``key``, computed once: concurrent requests for a missing key wait for the
        one computing it (20 clients opening the same diff cost one computation, not 20)."""
        with self._lock:
            store = self._store(key[0])
            if key in store:
                return store[key]
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                store = self._store(key[0])
                if key in store:
                    return store[key]
            try:
                value = make()
                with self._lock:
                    return store.put(key, value)
            finally:
                with self._lock:
                    self._flights.pop(key, None)

    def index(self, key: str) -> MeshIndex:
        ds = self.get(key)
        return self._memo(("index", key), lambda: MeshIndex(ds.codes, ds.mesh_sizes))

    def centres(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        ds = self.get(key)
        return self._memo(("centres", key), lambda: code_centers(ds.codes, ds.mesh_sizes))

    def labels(self, key: str, k: int) -> np.ndarray:
        """Joint cluster labels of the dataset's space at ``k``: the same number means the same cluster
        in every dataset of the space (released labels are kept; other datasets assigned to the centres)."""
        ds = self.get(key)
        space = self.spaces()[key]
        jc = self.joint(key, k)
        if jc.source == "released" and key in space.members and k in ds.labels:
            return ds.labels[k]
        return self._memo(("labels", key, k, space.name), lambda: jc.assign(ds.vectors, ds.decoder))

    def distributions(self, key: str) -> np.ndarray:
        """Each mesh's ``softmax(e W^T)`` (float32), squared from the cached sqrt-patterns.

        Only the sqrt-patterns are kept (the similar-areas search needs them): one ``(n, 168)`` float32
        array per dataset instead of two. Callers that keep the result (the cluster charts) cache it.
        """
        return np.square(self.points(key, "pattern"))

    def mesh_pattern(self, key: str, row: int) -> np.ndarray:
        """The chart ``(2, 12, 7)`` of one mesh (zeros without a model file)."""
        if not self.has_model(key):
            return np.zeros((2, 12, 7))
        return stay_patterns(np.square(self.points(key, "pattern")[row : row + 1]))[0]

    def has_model(self, key: str) -> bool:
        return self.get(key).decoder is not None

    def cluster_summary(self, key: str, k: int) -> list[dict]:
        """Per cluster: its meshes in this dataset and the space's name for it (plain data for the legend)."""

        sizes = self._memo(("summary", key, k), lambda: np.bincount(self.labels(key, k), minlength=k))
        names = self.cluster_names(key, k)  # read fresh: another server process may have renamed one
        return [{"cluster": c, "meshes": int(sizes[c]), "description": names[c]} for c in range(k)]

    def cluster_charts(self, key: str, k: int, reduce: str = "sum") -> np.ndarray:
        """Charts per cluster ``(k, 2, 12, 7)`` (zeros when the dataset has no model file)."""
        if not self.has_model(key):
            return np.zeros((k, 2, 12, 7))
        return self._memo(
            ("charts", key, k, reduce), lambda: cluster_charts(self.distributions(key), self.labels(key, k), k, reduce=reduce)
        )

    def same_city(self, key: str) -> list[str]:
        """Datasets of the same release, city and space as ``key`` (periods), sorted by period.

        A free dataset has a space of its own: it is never listed beside an anchored one (their
        distances mean nothing)."""
        ref = self.refs[key]
        ds = self.get(key)
        spaces = self.spaces()
        here = spaces[key].name
        out = [
            k for k, r in self.refs.items() if r.release == ref.release and spaces[k].name == here and self.get(k).city == ds.city
        ]
        return sorted(out, key=lambda k: (self.period(k), k))

    def across_periods(self, key: str, code: int, size: int, k: int) -> list[dict]:
        """The mesh ``(code, size)`` in every period of its city: cluster and distance to ``key``'s embedding."""
        here = self.get(key)
        row_here = int(np.flatnonzero((here.codes == code) & (here.mesh_sizes == size))[0])
        out: list[dict[str, object]] = []
        for other in self.same_city(key):
            o = self.get(other)
            hit = np.flatnonzero((o.codes == code) & (o.mesh_sizes == size))
            if hit.size == 0:
                out.append({"dataset": other, "period": self.period(other), "cluster": None, "distance": None})
                continue
            r = int(hit[0])
            out.append(
                {
                    "dataset": other,
                    "period": self.period(other),
                    "cluster": int(self.labels(other, k)[r]),
                    "distance": float(np.linalg.norm(o.vectors[r].astype(np.float64) - here.vectors[row_here])),
                }
            )
        return out

    def distance_classes(self, key: str, row: int) -> np.ndarray:
        """Each mesh's OpenUAS distance class from mesh ``row`` (0: the mesh itself; embedding distance from
        the mesh whose embedding it shows, :meth:`own_row`, as the map's tiles colour them)."""
        from core.analysis.similarity import distance_classes

        return self._memo(("classes", key, row), lambda: distance_classes(self.distances_from(key, self.own_row(key, row)), row))

    def distance_class_charts(self, key: str, row: int, reduce: str = "sum") -> np.ndarray:
        """Charts ``(6, 2, 12, 7)`` of the meshes in each OpenUAS distance class from mesh ``row``."""
        if not self.has_model(key):
            return np.zeros((6, 2, 12, 7))
        return self._memo(
            ("class-charts", key, row, reduce),
            lambda: cluster_charts(self.distributions(key), self.distance_classes(key, row), 6, reduce=reduce),
        )

    def similarity_space(self, key: str, requested: str | None = None) -> str:
        """The space a similar-area search from ``key`` runs in: ``requested`` (the knob's default when
        ``None`` or unknown: ``knobs.SIMILARITY_SPACE``), or ``embedding`` when ``key`` or another
        dataset of its space has no model file (one list never mixes two kinds of distance)."""
        space = str(knobs.SIMILARITY_SPACE.clamp(requested))
        if space == "embedding":
            return space
        return self._memo(
            ("space-of", key, space), lambda: resolve_space(space, [self.get(k).decoder for k in (key, *self.comparable(key))])
        )

    def points(self, key: str, space: str) -> np.ndarray:
        """The dataset's meshes as points of ``space``: embeddings, or sqrt-patterns (float32, 168 a mesh,
        computed once per dataset and cached)."""
        ds = self.get(key)
        if space == "embedding":
            return ds.vectors
        return self._memo(("sqrt", key), lambda: similarity_points(ds.vectors, ds.decoder, space))

    def distances_from(self, key: str, row: int, space: str = "embedding") -> np.ndarray:
        """Distance in ``space`` of every mesh of ``key`` to its mesh ``row`` (cached per click)."""
        return self._memo(
            ("from", key, row, space), lambda: space_distances(self.points(key, space), self.points(key, space)[row], space)
        )

    def distances_across(self, key: str, row: int, space: str) -> dict[str, np.ndarray]:
        """Distance in ``space`` of every mesh of each other dataset of ``key``'s space to mesh ``row`` of
        ``key`` (``inf`` for complemented meshes: they repeat their parent). Not cached: one per click."""
        query = self.points(key, space)[row]
        out = {}
        for other in self.comparable(key):
            d = space_distances(self.points(other, space), query, space)
            comp = self.get(other).complemented
            if comp is not None and comp.any():
                d = np.where(comp, np.inf, d)
            out[other] = d
        return out

    def release_root(self, key: str) -> Path:
        """The folder of the release holding dataset ``key`` (``<root>/japan_city/geojson/<name>.geojson``)."""
        return self.refs[key].geojson.parent.parent.parent

    def places(self, key: str) -> pd.DataFrame:
        """Named places of ``key``'s release (its ``places.csv``) and the known city centres, within the
        dataset's extent (a margin of 10 %): what search finds and the offline map labels."""

        def make() -> pd.DataFrame:
            own = read_places(self.release_root(key))
            cities = pd.DataFrame(
                [{"name": c.capitalize(), "kind": "city", "city": c, "lat": y, "lon": x} for c, (y, x) in CITY_CENTRES.items()]
            )
            both = pd.concat([own, cities[~cities["name"].isin(own["name"])]], ignore_index=True)
            s, w, n, e = self.index(key).bounds
            my, mx = (n - s) * 0.1, (e - w) * 0.1
            inside = both["lat"].between(s - my, n + my) & both["lon"].between(w - mx, e + mx)
            return both[inside].reset_index(drop=True)

        return self._memo(("places", key, self.version), make)

    def all_places(self) -> pd.DataFrame:
        """Every dataset's places with the dataset they lie in (``key`` column; a place in several periods
        of a city is listed once per dataset)."""

        def make() -> pd.DataFrame:
            frames = [self.places(k).assign(key=k) for k in self.keys()]
            return pd.concat(frames, ignore_index=True) if frames else empty_places().assign(key="")

        return self._memo(("all-places", self.version), make)

    def parent_rows(self, key: str) -> np.ndarray:
        """Row of each complemented mesh's 250 m parent (the mesh whose embedding it shows), -1 elsewhere."""

        def make() -> np.ndarray:
            ds = self.get(key)
            if ds.complemented is None:
                return np.full(ds.n_meshes, -1, dtype=np.int64)
            return np.where(ds.complemented, self.enclosing_rows(key), -1)

        return self._memo(("parents", key), make)

    def enclosing_rows(self, key: str) -> np.ndarray:
        """Row of the 250 m mesh of the dataset that covers each 50 m mesh (complemented or not), -1 elsewhere."""

        def make() -> np.ndarray:
            ds = self.get(key)
            out = np.full(ds.n_meshes, -1, dtype=np.int64)
            small = np.flatnonzero(ds.mesh_sizes == 50)
            big = np.flatnonzero(ds.mesh_sizes == 250)
            if not len(small) or not len(big):
                return out
            parents = parent_code(ds.codes[small], 50, 250)
            order = np.argsort(ds.codes[big], kind="stable")
            pos = np.minimum(np.searchsorted(ds.codes[big][order], parents), len(big) - 1)
            found = big[order][pos]
            ok = ds.codes[found] == parents
            out[small[ok]] = found[ok]
            return out

        return self._memo(("enclosing", key), make)

    def own_row(self, key: str, row: int) -> int:
        """The row whose embedding mesh ``row`` shows: its 250 m parent when complemented, else itself."""
        parent = int(self.parent_rows(key)[row])
        return parent if parent >= 0 else row

    def match_space(self, key: str, by: str, space: str | None = None) -> str:
        """The space of :meth:`matches`: :meth:`similarity_space`, except embedding for a distance
        threshold (the OpenUAS distance classes are in embedding units)."""
        return "embedding" if by == "distance" else self.similarity_space(key, space)

    def matches(self, key: str, row: int, by: str, value: float, space: str | None = None) -> TopMatches:
        """Meshes of ``key`` nearest to mesh ``row`` (a percent, a rank or a distance; see
        :func:`core.analysis.similarity.top_matches`), among meshes with an embedding of their own; the
        query mesh (for a complemented one: its parent) is left out. Distances in :meth:`match_space`."""
        ds = self.get(key)
        query = self.own_row(key, row)
        own = ~ds.complemented if ds.complemented is not None else None
        where = self.match_space(key, by, space)

        return self._memo(
            ("matches", key, query, by, value, where),
            lambda: top_matches(self.distances_from(key, query, where), by, value, candidates=own, exclude=query),
        )

    def datasets_at(self, lat: float, lon: float) -> list[str]:
        """Datasets with a mesh under the point ``(lat, lon)``."""
        out = []
        for key in self.keys():
            s, w, n, e = self.index(key).bounds
            if s <= lat <= n and w <= lon <= e and self.index(key).lookup(np.array([lat]), np.array([lon]))[0] >= 0:
                out.append(key)
        return out

    def diff(self, a: str, b: str, k: int, threshold: float | None = None) -> PeriodDiff:
        """The diff of periods ``a`` and ``b`` on the joint labels at ``k`` (threshold: from the data when ``None``).

        The measures are computed once per pair and k; another threshold only re-flags the meshes.
        """
        base = self._memo(
            ("diff", a, b, k),
            lambda: diff_datasets(self.get(a), self.get(b), k=k, labels_a=self.labels(a, k), labels_b=self.labels(b, k)),
        )
        return base if threshold is None else base.with_threshold(threshold)

    def periods(self, key: str) -> list[str]:
        """The datasets of ``key``'s city in ``key``'s space (``key`` included), sorted by period: what a diff can compare."""
        spaces = self.spaces()
        here, city = spaces[key].name, self.city(key)
        same = [k for k in self.keys() if spaces[k].name == here and self.city(k) == city]
        return sorted(same, key=lambda k: (split_name(self.refs[k].name)[1], k))

    def city(self, key: str) -> str:
        """The dataset's city: from its name when it names one (no read), else from its meshes."""
        return city_in_name(self.refs[key].name) or self.get(key).city


@dataclass
class AppContext:
    """What the running app serves: its catalog and settings (one per server process)."""

    catalog: Catalog
    basemap: str | None
    upload_cap: int
    people_files: tuple[Path, ...] = ()  # HuMob / stay files given on the command line (People view)

    @property
    def data_dir(self) -> Path:
        return self.catalog.data_dir

    @property
    def registry(self):  # -> core.workflow.jobs.JobRegistry
        from core.workflow.jobs import JobRegistry
        from core.workflow.userdata import USER_RELEASE

        return JobRegistry(self.data_dir / USER_RELEASE)


_CONTEXT: AppContext | None = None


def install(context: AppContext) -> AppContext:
    """Make ``context`` the one the callbacks of this process use."""
    global _CONTEXT
    _CONTEXT = context
    return context


def app_context() -> AppContext:
    """The installed context (raises when no app was created in this process)."""
    if _CONTEXT is None:
        raise RuntimeError("no app context: create the app with app.create_app() first")
    return _CONTEXT


def get_catalog() -> Catalog:
    """The catalog of the running app."""
    return app_context().catalog
