"""Server-side data of the Regions view: cities on offer, their graphs, aligned embeddings cached on disk.

Cities, found under the data folder (``DATA``):

- ``regions/<name>``: a LibCity-style city folder ``DATA/regions/<name>/`` (``*.geo``, ``*.mob``,
  ``<label>_*.npy``; :func:`core.regions.graph.read_city`);
- ``demo/<dataset>``: a demo stays file ``DATA/demo/stays/<dataset>.parquet``, turned into a region
  graph of 1 km meshes (:func:`core.regions.graph.graph_from_stays`, label ``stays``), cached under
  ``DATA/.cache/regions/graphs/``.

Aligned embeddings of a (source, target, method, seed, epochs) choice are trained once (in the
view's background job, :func:`fit_and_cache`) and kept under ``DATA/.cache/regions/embeddings/``,
keyed by the choice and by a fingerprint of both cities' files, so that a changed city is retrained.
Everything here returns plain data (frames, dicts, lists) or plotly figures; the view module only
wires it to components. The logic of the two-city view itself is :mod:`core.regions.explore`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import InputError
from core.progress import Progress
from core.regions.config import EPOCHS, METHOD, SCALE, SEED, CoreConfig
from core.regions.evaluate import scores
from core.regions.explore import joint_projection, nearest_regions, predicted_vs_true
from core.regions.graph import RegionGraph, graph_from_stays, read_city

from .figures import count_of

CITY_FOLDERS = "regions"  # DATA/regions/<name>/
DEMO_STAYS = ("demo", "stays")  # DATA/demo/stays/<dataset>.parquet
DEMO_MESH = 1000  # mesh size (m) of the regions of demo-derived cities
CACHE = (".cache", "regions")
NEAREST = 5  # nearest regions listed for a clicked region
COLOUR_BY = ("predicted", "true", "error")
CITY_COLOURS = ("#1f77b4", "#ff7f0e")  # source, target (projection and legends)
# Predicted and true share one sequential scale (viridis stops); the error is diverging (blue = too low).
SEQUENTIAL = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
DIVERGING = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
NO_VALUE = "#bdbdbd"
FEW_REGIONS = 30  # below this many regions in a city, the view warns that a ridge and an alignment say little
FLAT_SPREAD = 1e-3  # a prediction whose spread is below this share of the truth's is "nearly constant"

_LOCK = threading.RLock()
_GRAPHS: OrderedDict[tuple[str, str], RegionGraph] = OrderedDict()
_EMB: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray, dict]] = OrderedDict()
_SHAPES: OrderedDict[tuple[str, str], dict] = OrderedDict()
_MAX = 8


def _put(cache: OrderedDict, key: Any, value: Any) -> Any:
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _MAX:
            cache.popitem(last=False)
    return value


@dataclass(frozen=True)
class City:
    """A city the view offers.

    Attributes:
        key: ``regions/<name>`` or ``demo/<dataset>`` (what the browser sends back).
        label: the name shown in the selectors.
        path: the city folder or the stays file.
        kind: ``"folder"`` or ``"stays"``.
    """

    key: str
    label: str
    path: Path
    kind: str

    @property
    def name(self) -> str:
        """The short name (folder or dataset name)."""
        return self.key.split("/", 1)[1]


def _is_city_folder(folder: Path) -> bool:
    return folder.is_dir() and len(list(folder.glob("*.geo"))) == 1 and len(list(folder.glob("*.mob"))) == 1


def cities(data_dir: Path) -> dict[str, City]:
    """Every city under ``data_dir``: LibCity folders first, then the demo's stays files."""
    data_dir = Path(data_dir)
    out: dict[str, City] = {}
    for folder in sorted((data_dir / CITY_FOLDERS).glob("*")):
        if not folder.name.startswith(".") and _is_city_folder(folder):
            out[f"regions/{folder.name}"] = City(f"regions/{folder.name}", folder.name, folder, "folder")
    for path in sorted(data_dir.joinpath(*DEMO_STAYS).glob("*.parquet")):
        key = f"demo/{path.stem}"
        out[key] = City(key, f"{path.stem} (demo stays, {DEMO_MESH // 1000} km meshes)", path, "stays")
    return out


def fingerprint(city: City) -> str:
    """A short hash of the city's files (names, sizes, modification times): changes when they change."""
    files = sorted(p for p in city.path.iterdir() if p.is_file()) if city.kind == "folder" else [city.path]
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha1(json.dumps([city.kind, DEMO_MESH, stamp]).encode()).hexdigest()[:12]


def _city(data_dir: Path, key: object) -> City:
    offered = cities(data_dir)
    if not isinstance(key, str) or key not in offered:
        raise InputError("city", f"unknown city {key!r}", expected=f"one of {', '.join(offered) or 'none found'}")
    return offered[key]


def load_graph(data_dir: Path, key: object) -> RegionGraph:
    """The region graph of an offered city (memoised; demo graphs also cached on disk).

    Raises:
        InputError: an unknown city key, or a city whose files are malformed.
    """
    data_dir = Path(data_dir)
    city = _city(data_dir, key)
    fp = fingerprint(city)
    with _LOCK:
        if (city.key, fp) in _GRAPHS:
            return _GRAPHS[(city.key, fp)]
    if city.kind == "folder":
        graph = read_city(city.path, name=city.name)
    else:
        # v2: with each region's stay-token counts (the area2vec method embeds them)
        path = data_dir.joinpath(*CACHE, "graphs", f"{city.name}-{DEMO_MESH}m-v2-{fp}.npz")
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                graph = RegionGraph.from_arrays(city.name, z)
        else:
            import pyarrow.parquet as pq

            have = set(pq.read_schema(city.path).names)
            wanted = ["user_id", "lat", "lon", "date", "arrival_time", "stay_time", "day_of_week", "is_holiday"]
            stays = pd.read_parquet(city.path, columns=[c for c in wanted if c in have])
            graph = graph_from_stays(stays, DEMO_MESH, name=city.name, source=city.path.name)
            from core.atomic import atomic_path

            arrays: dict[str, Any] = graph.to_arrays()
            with atomic_path(path) as tmp, tmp.open("wb") as fh:
                np.savez(fh, **arrays)
    return _put(_GRAPHS, (city.key, fp), graph)


def common_labels(source: RegionGraph, target: RegionGraph) -> list[str]:
    """The labels both cities carry (the ridge trains on the source's, scores on the target's)."""
    return sorted(set(source.labels) & set(target.labels))


@dataclass(frozen=True)
class Selection:
    """What to align: two offered cities, a method, a seed and a number of epochs (all validated)."""

    source: str
    target: str
    method: str
    seed: int
    epochs: int

    @classmethod
    def from_browser(
        cls, data_dir: Path, source: object, target: object, method: object, seed: object, epochs: object
    ) -> Selection:
        """Validate the form: cities from the offered set, the method from the declared choices,
        seed and epochs clamped into their ranges (an empty field takes the default).

        Raises:
            InputError: an unknown city, or the same city twice.
        """
        src, tgt = _city(data_dir, source), _city(data_dir, target)
        if src.key == tgt.key:
            raise InputError("cities", f"{src.key} twice", expected="two different cities (source and target)")
        return cls(
            source=src.key,
            target=tgt.key,
            method=METHOD.clamp(method),
            seed=SEED.default if seed in (None, "") else SEED.clamp(seed),
            epochs=EPOCHS.default if epochs in (None, "") else EPOCHS.clamp(epochs),
        )

    def describe(self) -> str:
        """One line for messages."""
        return f"{self.method}, {self.epochs} epochs, seed {self.seed}"

    def cache_path(self, data_dir: Path) -> Path:
        """Where the aligned embeddings of this choice (and of these versions of the cities' files) live."""
        data_dir = Path(data_dir)
        fps = [fingerprint(_city(data_dir, k)) for k in (self.source, self.target)]
        digest = hashlib.sha1(json.dumps([asdict(self), fps]).encode()).hexdigest()[:16]
        stem = f"{self.source}__{self.target}__{self.method}__s{self.seed}__e{self.epochs}".replace("/", "-")
        return data_dir.joinpath(*CACHE, "embeddings", f"{stem}__{digest}.npz")


def cached_embeddings(data_dir: Path, sel: Selection) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The source's and the target's embeddings and the run's facts, or ``None`` when not trained yet."""
    path = sel.cache_path(data_dir)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    key = (str(path), stamp)
    with _LOCK:
        if key in _EMB:
            return _EMB[key]
    with np.load(path, allow_pickle=False) as z:
        value = (z["source"], z["target"], json.loads(str(z["info"])))
    return _put(_EMB, key, value)


def fit_and_cache(
    data_dir: Path,
    sel: Selection,
    progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Train ``sel.method`` on the two cities (unless cached) and store the embeddings.

    Runs in the view's background job (which sets torch to one thread first: see the view's ``align``).

    Returns:
        ``{"state": "done", "seconds": training seconds, "cached": bool, "path": file name}``.
    """
    data_dir = Path(data_dir)
    path = sel.cache_path(data_dir)
    found = cached_embeddings(data_dir, sel)
    if found is not None:
        return {"state": "done", "seconds": found[2].get("seconds", 0.0), "cached": True, "path": path.name}
    from core.regions.methods import fit_method

    source, target = load_graph(data_dir, sel.source), load_graph(data_dir, sel.target)
    start = time.perf_counter()
    anchors = None
    if sel.method == "area2vec":  # the demo cities' stays are anchored to the demo release's anchor set
        from core.regions.sources import release_anchor_dir

        anchors = release_anchor_dir(_city(data_dir, sel.source).path)
    config = replace(CoreConfig(), epochs=sel.epochs, seed=sel.seed)
    z = fit_method([source, target], sel.method, config, progress, anchors=anchors)
    seconds = time.perf_counter() - start
    info = {**asdict(sel), "seconds": seconds, "regions": [source.n, target.n]}
    from core.atomic import atomic_path

    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, source=z[0], target=z[1], info=np.array(json.dumps(info)))
    return {"state": "done", "seconds": seconds, "cached": False, "path": path.name}


def progress_text(sel: Selection, p: Progress) -> tuple[int, str]:
    """Progress bar value (0..100) and a line for a training report (absolute: only the last survives)."""
    frac = float(p.fraction if p.fraction is not None else p.step / max(p.total, 1))
    parts = [f"Training {sel.describe()}: epoch {p.step}/{p.total}"]
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3f}")
    if p.eta is not None:
        parts.append(f"about {p.eta:.0f} s left")
    return int(round(100 * frac)), " · ".join(parts)


# ----------------------------------------------------------------------------------------------------
# What the view draws


def transfer_table(data_dir: Path, sel: Selection, label: str, scale: object) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Per target region the prediction, truth and error; and the metrics row of the method and the baselines.

    Returns:
        The frame of :func:`core.regions.explore.predicted_vs_true` and rows ``{"method", "mae",
        "spearman", "r2"}`` for the method, ``mean`` (the source's mean) and ``area`` (ridge on log area).

    Raises:
        InputError: not trained yet, or a label that one of the cities lacks.
    """
    found = cached_embeddings(data_dir, sel)
    if found is None:
        raise InputError("embeddings", f"not trained yet ({sel.describe()})", expected="press Align first")
    source, target = load_graph(data_dir, sel.source), load_graph(data_dir, sel.target)
    labels = common_labels(source, target)
    if label not in labels:
        raise InputError("label", f"unknown label {label!r}", expected=f"one of {', '.join(labels) or 'none (no common label)'}")
    table = predicted_vs_true(source, target, found[0], found[1], label, SCALE.clamp(scale))
    y = table["true"].to_numpy()
    rows = [
        {"method": name, **scores(y, table[col].to_numpy())}
        for name, col in ((sel.method, "predicted"), ("mean", "mean"), ("area", "area"))
    ]
    return table, rows


def transfer_notes(table: pd.DataFrame, regions: tuple[int, int], method: str) -> list[str]:
    """Plain-language warnings about a transfer: too few regions, a (nearly) constant prediction.

    A ridge on embeddings that carry no signal for the label predicts about the source's mean for
    every target region; tiny differences between those predictions still give a rank order, so
    Spearman can read 1 while the MAE equals the mean baseline's. The view says so instead of
    presenting such a row as a success.

    Args:
        table: the frame of :func:`transfer_table` (``true``, ``predicted``).
        regions: the number of regions of the source and the target city.
        method: the method's label, for the message.
    """
    notes = []
    few = min(regions)
    if few < FEW_REGIONS:
        notes.append(
            f"Only {count_of(few, 'region')} in the smaller city: too few for a reliable alignment "
            f"or ridge (at least {FEW_REGIONS} recommended); read these numbers as a smoke test."
        )
    y = table["true"].to_numpy(dtype=np.float64)
    pred = table["predicted"].to_numpy(dtype=np.float64)
    spread_true = float(np.ptp(y)) if y.size else 0.0
    spread_pred = float(np.ptp(pred)) if pred.size else 0.0
    if spread_true > 0 and spread_pred <= FLAT_SPREAD * spread_true:
        share = 100.0 * spread_pred / spread_true
        said = "under 0.01 %" if share < 0.01 else f"{share:.2g} %"
        notes.append(
            f"{method}'s prediction is nearly constant (its spread is {said} of the true values'): "
            "the embeddings carry no usable signal for this label, so its Spearman reflects tiny differences "
            "and its MAE is about the mean baseline's."
        )
    return notes


def format_value(v: float | None) -> str:
    """A number for tables and legends: thousands separated from 1,000 up, 3 significant digits below
    (e-notation only under 0.001); ``–`` for a missing value."""
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(float(v))
    if a >= 1000:
        return f"{v:,.0f}"
    if a == 0:
        return "0"
    if a < 0.001:
        return f"{v:.2e}"
    digits = max(0, 2 - int(np.floor(np.log10(a))))
    return f"{v:.{digits}f}"


def colour_scale(
    values: np.ndarray, diverging: bool = False, limits: tuple[float, float] | None = None
) -> tuple[list[str], dict]:
    """One hex colour per value and the legend of the scale.

    Sequential scales span the 2nd-98th percentile (or ``limits``); diverging ones are symmetric
    around 0 up to the 98th percentile of ``|value|``. Values beyond the ends take the end colours,
    NaN the grey of "no value".

    Returns:
        The colours and ``{"colours", "low", "high", "clipped_low", "clipped_high"}``.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    stops = DIVERGING if diverging else SEQUENTIAL
    if limits is not None:
        lo, hi = limits
    elif finite.size == 0:
        lo, hi = 0.0, 1.0
    elif diverging:
        hi = float(np.percentile(np.abs(finite), 98)) or float(np.abs(finite).max()) or 1.0
        lo = -hi
    else:
        lo, hi = (float(x) for x in np.percentile(finite, [2, 98]))
    span = hi - lo if hi > lo else 1.0
    t = np.clip((v - lo) / span, 0.0, 1.0)
    idx = np.rint(np.nan_to_num(t) * (len(stops) - 1)).astype(np.int64)
    colours = np.asarray(stops, dtype=object)[idx]
    colours[~np.isfinite(v)] = NO_VALUE
    legend = {
        "colours": list(stops),
        "low": lo,
        "high": hi,
        "clipped_low": bool(finite.size and finite.min() < lo),
        "clipped_high": bool(finite.size and finite.max() > hi),
    }
    return colours.tolist(), legend


def map_colours(
    table: pd.DataFrame | None, target: RegionGraph, label: str | None, scale: str, by: str
) -> tuple[list[str], dict | None]:
    """The target's region colours for ``by`` (predicted / true / error) and the legend.

    Predicted and true share one scale (their pooled 2nd-98th percentiles) so that the two maps can
    be compared; without a prediction (not trained yet) the truth is shown, and without a label grey.
    """
    if table is None:
        if label is None or label not in target.labels:
            return [NO_VALUE] * target.n, None
        from core.regions.evaluate import scaled_label

        return colour_scale(scaled_label(target, label, scale))
    if by == "error":
        return colour_scale(table["error"].to_numpy(), diverging=True)
    pooled = np.concatenate([table["true"].to_numpy(), table["predicted"].to_numpy()])
    lo, hi = (float(x) for x in np.percentile(pooled, [2, 98]))
    return colour_scale(table["true" if by == "true" else "predicted"].to_numpy(), limits=(lo, hi))


def region_shapes(data_dir: Path, key: str) -> dict:
    """The city's regions as a GeoJSON FeatureCollection (simplified outlines; ``region`` = row position).

    Regions without an outline become squares of their area around their centre.
    """
    import shapely

    city = _city(data_dir, key)
    memo = (city.key, fingerprint(city))
    with _LOCK:
        if memo in _SHAPES:
            return _SHAPES[memo]
    g = load_graph(data_dir, key)
    if g.geometry is not None:
        geoms = shapely.from_wkt(np.asarray(g.geometry, dtype=object))
    else:
        half_lat = np.sqrt(g.area_km2) / 2 / 111.32
        half_lon = half_lat / np.cos(np.radians(g.lat))
        geoms = shapely.box(g.lon - half_lon, g.lat - half_lat, g.lon + half_lon, g.lat + half_lat)
    geoms = shapely.set_precision(shapely.simplify(geoms, 1e-4, preserve_topology=True), 1e-5)
    features = [
        {"type": "Feature", "geometry": json.loads(js), "properties": {"region": i, "id": int(rid)}}
        for i, (js, rid) in enumerate(zip(shapely.to_geojson(geoms).tolist(), g.region_ids.tolist()))
    ]
    return _put(_SHAPES, memo, {"type": "FeatureCollection", "features": features})


def subset(shapes: dict, regions: Iterable[int]) -> dict:
    """The features of some regions (row positions) of :func:`region_shapes`."""
    keep = [shapes["features"][r] for r in regions if 0 <= r < len(shapes["features"])]
    return {"type": "FeatureCollection", "features": keep}


@dataclass(frozen=True)
class Pick:
    """A clicked region: which side (0 = source, 1 = target) and its row position there."""

    side: int
    region: int

    @classmethod
    def from_map(cls, click: object, n_target: int) -> Pick | None:
        """A click on the target's map (dash-leaflet sends the clicked feature), validated."""
        try:
            region = int(click["properties"]["region"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None
        return cls(1, region) if 0 <= region < n_target else None

    @classmethod
    def from_projection(cls, click: object, sizes: tuple[int, int]) -> Pick | None:
        """A click on the projection (plotly sends the point's ``customdata`` = [side, region]), validated."""
        try:
            side, region = (int(x) for x in click["points"][0]["customdata"])  # type: ignore[index]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return cls(side, region) if side in (0, 1) and 0 <= region < sizes[side] else None

    @classmethod
    def from_store(cls, data: object, sizes: tuple[int, int]) -> Pick | None:
        """The pick kept in the browser's store, checked again."""
        return (
            cls.from_projection({"points": [{"customdata": [data.get("side"), data.get("region")]}]}, sizes)
            if isinstance(data, dict)
            else None
        )


def nearest_table(data_dir: Path, sel: Selection, pick: Pick, k: int = NEAREST) -> pd.DataFrame:
    """The ``k`` regions of the other city nearest (cosine) to the picked one.

    Returns:
        Rows ``region`` (position in the other city), ``region_id``, ``similarity``, best first.
    """
    found = cached_embeddings(data_dir, sel)
    if found is None:
        raise InputError("embeddings", f"not trained yet ({sel.describe()})", expected="press Align first")
    z = (found[0], found[1])
    other = load_graph(data_dir, (sel.source, sel.target)[1 - pick.side])
    near = nearest_regions(z[pick.side], pick.region, z[1 - pick.side], k)
    near.insert(1, "region_id", other.region_ids[near["region"].to_numpy()])
    return near


def projection(data_dir: Path, sel: Selection) -> pd.DataFrame:
    """Both cities' embeddings projected together (PCA); ``side`` 0 = source, 1 = target."""
    found = cached_embeddings(data_dir, sel)
    if found is None:
        raise InputError("embeddings", f"not trained yet ({sel.describe()})", expected="press Align first")
    frame = joint_projection({sel.source: found[0], sel.target: found[1]}, "pca")
    frame["side"] = (frame["city"] == sel.target).astype(np.int64)
    return frame


def _pairs(side: int, regions: np.ndarray) -> list[list[int]]:
    """``[side, region]`` per point as plain lists: a 2-D typed array's rows do not reach Dash's clickData."""
    return np.column_stack([np.full(len(regions), side), regions]).astype(np.int64).tolist()


def projection_figure(
    frame: pd.DataFrame, names: tuple[str, str], ids: tuple[np.ndarray, np.ndarray], pick: Pick | None, near: pd.DataFrame | None
) -> go.Figure:
    """The joint projection, one colour per city; the picked region a black star, its nearest regions ringed.

    Every point carries ``customdata = [side, region]`` (what a click sends back).
    """
    fig = go.Figure()
    for side in (0, 1):
        part = frame[frame["side"] == side]
        rid = ids[side][part["region"].to_numpy()]
        fig.add_trace(
            go.Scatter(
                x=part["x"],
                y=part["y"],
                mode="markers",
                name=f"{names[side]} ({'source' if side == 0 else 'target'}, {len(part):,})",
                customdata=_pairs(side, part["region"].to_numpy()),
                text=rid.astype(str),
                marker={"size": 6, "color": CITY_COLOURS[side], "opacity": 0.7},
                hovertemplate=f"{names[side]} region %{{text}}<extra></extra>",
            )
        )
    if pick is not None:
        at = frame[(frame["side"] == pick.side) & (frame["region"] == pick.region)]
        if near is not None and len(near):
            other = frame[frame["side"] == 1 - pick.side].set_index("region").loc[near["region"].to_numpy()]
            fig.add_trace(
                go.Scatter(
                    x=other["x"],
                    y=other["y"],
                    mode="markers",
                    name=f"nearest in {names[1 - pick.side]}",
                    customdata=_pairs(1 - pick.side, other.index.to_numpy()),
                    marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "#d62728", "width": 2.5}},
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=at["x"],
                y=at["y"],
                mode="markers",
                name=f"picked ({names[pick.side]})",
                customdata=_pairs(pick.side, at["region"].to_numpy()),
                marker={"size": 16, "color": "#000", "symbol": "star"},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=480,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        title={"text": "Both cities' embeddings, PCA of the joint space (click a point)", "font": {"size": 13}},
        legend={"orientation": "h", "y": -0.15, "font": {"size": 11}},
        xaxis={"title": {"text": "component 1"}},
        yaxis={"title": {"text": "component 2"}},
        uirevision="regions",
        clickmode="event",
    )
    return fig
