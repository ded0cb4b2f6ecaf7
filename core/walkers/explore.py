"""The People explorer's logic: people with embeddings, a 2-D projection, selections and what they show.

A :class:`People` holds one embedding per person, their known attributes (commuter, role, home
district, activity) and their stays (person, region, arrival hour, weekend and holiday flags, stay
token), all as numpy arrays sorted by person. A stay's day type is the one of the cluster charts:
a Saturday, Sunday or national holiday (from the calendar, :mod:`core.mobility.calendar`) is a
"holiday"; a source without calendar dates (HuMob) knows neither. Everything a selection shows is
a numpy group-by over those arrays: per-region stay counts for the heatmap, the 168-token
histogram behind the stacked stay-pattern chart, and a summary. No Dash here (the dashboard's
People view is a thin adapter).

Embeddings come from a walkers run (``python -m core walkers train TRAJ --out DIR``: ``users.csv``,
and ``metrics.json`` naming TRAJ) or, when no run exists, from :func:`simple_features`: a dozen
per-person numbers (where, how far, when, how long), labelled as such everywhere they are shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import knobs
from core.errors import InputError
from core.walkers.trajectories import (
    DAY_MINUTES,
    HUMOB,
    Trajectories,
    find_demo_truth,
    people_table,
    read_trajectories,
)

FEATURES = "simple per-person features (no model run)"
# HuMob cells are not georeferenced: the map places the grid at a nominal origin (cell 100, 100 there).
NOMINAL_ORIGIN = (35.17, 136.88)
DAYS = ("all", "weekday", "holiday")  # day filter: every day, working days, weekends and national holidays
MAX_LASSO_VERTICES = 5000  # a browser lasso sends at most this many vertices (more are thinned)
N_CLUSTERS = 6


@dataclass
class People:
    """People with embeddings and their stays (arrays aligned by person row ``0..n-1``).

    Attributes:
        name: shown name of the source.
        encoder: what the embeddings are (a walkers run, or :data:`FEATURES`).
        uids: person labels (n).
        embeddings: n x d float32.
        attrs: n rows: ``activity`` and, where known, ``commuter``, ``role``, ``home_district``.
        person: person row of each stay (m, ascending).
        region: row in ``codes`` / ``sizes`` of each stay's region.
        codes, sizes: the regions' JIS mesh codes and sizes (metres).
        hour: arrival hour 0..23 of each stay.
        weekend: stay on a Saturday or Sunday (False where the weekday is unknown).
        holiday: stay on a national holiday of the source's calendar (False without calendar dates).
        token: the stay's Area2Vec token 0..167 (day type, 2-hour bin, duration class).
        start: minutes from the first day's midnight; duration: minutes.
        weekday_known: False for HuMob files (anonymised days).
        day0: the date of day 0 (days since 1970-01-01), None without calendar dates.
        country: the holiday calendar (ISO code) of ``holiday``.
    """

    name: str
    encoder: str
    uids: np.ndarray
    embeddings: np.ndarray
    attrs: pd.DataFrame
    person: np.ndarray
    region: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray
    hour: np.ndarray
    weekend: np.ndarray
    holiday: np.ndarray
    token: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    weekday: np.ndarray
    weekday_known: bool = True
    day0: int | None = None
    country: str = knobs.COUNTRY.default
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(self.uids.shape[0])

    def offsets(self) -> np.ndarray:
        """Where each person's stays start in the stay arrays (``n + 1`` values; computed once)."""
        if "offsets" not in self._cache:
            self._cache["offsets"] = np.searchsorted(self.person, np.arange(self.n + 1)).astype(np.int64)
        return self._cache["offsets"]

    @property
    def dates_known(self) -> bool:
        """Whether the stays have calendar dates (then national holidays are known too)."""
        return self.day0 is not None

    @property
    def day_off(self) -> np.ndarray:
        """The day type of each stay as in the cluster charts: Saturday, Sunday or a national holiday."""
        return self.weekend | self.holiday


# ---------------------------------------------------------------- building


def _regions(traj: Trajectories) -> tuple[np.ndarray, np.ndarray]:
    """JIS code and size of each record: the table's own meshes, 50 m from lat/lon, HuMob cells nominally placed."""
    from core.geo.meshcode import latlon_to_code

    if traj.space == HUMOB:
        lat0, lon0 = NOMINAL_ORIGIN
        lat = lat0 + (traj.v - 100.5) * 0.5 / 111.32
        lon = lon0 + (traj.u - 100.5) * 0.5 / (111.32 * np.cos(np.radians(lat0)))
        return latlon_to_code(lat, lon, 250), np.full(len(traj), 250, np.int64)
    if traj.code is not None:
        sizes = traj.mesh_size if traj.mesh_size is not None else np.full(len(traj), 50, np.int64)
        return np.asarray(traj.code, np.int64), np.asarray(sizes, np.int64)
    return latlon_to_code(traj.u, traj.v, 50), np.full(len(traj), 50, np.int64)


def simple_features(traj: Trajectories) -> np.ndarray:
    """Per-person features, no model: mean position, spread, reach, activity, when and how long (n x 12).

    Columns: mean x, mean y (km), radius of gyration, farthest distance from the mean, log records,
    share of records arriving in each of five periods (0-7, 7-10, 10-16, 16-20, 20-24 h), weekend
    share, mean log duration. All bincounts over the records.
    """
    n = traj.n_users
    uid = traj.uid
    x, y = traj.km()
    cnt = np.maximum(np.bincount(uid, minlength=n), 1).astype(np.float64)
    mx = np.bincount(uid, x, n) / cnt
    my = np.bincount(uid, y, n) / cnt
    d2 = (x - mx[uid]) ** 2 + (y - my[uid]) ** 2
    rg = np.sqrt(np.bincount(uid, d2, n) / cnt)
    far = np.zeros(n)
    np.maximum.at(far, uid, np.sqrt(d2))
    hour = (traj.start % 1440) // 60
    period = np.searchsorted(np.array([7, 10, 16, 20]), hour, side="right")
    shares = np.bincount(uid * 5 + period, minlength=n * 5).reshape(n, 5) / cnt[:, None]
    weekend = np.bincount(uid, (traj.weekday >= 5).astype(np.float64), n) / cnt
    logdur = np.bincount(uid, np.log1p(traj.duration), n) / cnt
    return np.column_stack([mx, my, rg, far, np.log(cnt), shares, weekend, logdur]).astype(np.float32)


def stay_holidays(traj: Trajectories, country: str = knobs.COUNTRY.default) -> np.ndarray:
    """Whether each record falls on a national holiday of ``country`` (all False without calendar dates).

    The calendar is the project's (:func:`core.mobility.calendar.is_holiday`: jpholiday for JP, the
    ``holidays`` package elsewhere), asked once for the records' date range.
    """
    if traj.day0 is None or traj.space == HUMOB or len(traj) == 0:
        return np.zeros(len(traj), bool)
    from core.mobility.calendar import is_holiday

    return is_holiday(traj.day0 + (traj.start // DAY_MINUTES).astype(np.int64), country)


def people_from_trajectories(
    traj: Trajectories,
    embeddings: np.ndarray | None = None,
    attrs: pd.DataFrame | None = None,
    name: str = "",
    encoder: str = FEATURES,
    country: str = knobs.COUNTRY.default,
) -> People:
    """Assemble :class:`People` (embeddings: one row per ``traj.users``; None = :func:`simple_features`).

    ``country`` names the holiday calendar of sources with calendar dates (stay tables).
    """
    from core.area2vec.tokens import make_tokens

    emb = simple_features(traj) if embeddings is None else np.asarray(embeddings, np.float32)
    if emb.shape[0] != traj.n_users:
        raise InputError(name or traj.source, f"{emb.shape[0]} embeddings for {traj.n_users} people", expected="one per person")
    codes, sizes = _regions(traj)
    key = codes * 10_000 + sizes
    uniq, region = np.unique(key, return_inverse=True)
    minute = (traj.start % 1440).astype(np.int64)
    known = traj.space != HUMOB
    wd = np.where(traj.weekday >= 0, traj.weekday, 0).astype(np.int64)
    holiday = stay_holidays(traj, country)
    tok = make_tokens(np.round(traj.duration).astype(np.int64), minute, wd, holiday)
    if attrs is None:
        attrs = pd.DataFrame({"activity": np.bincount(traj.uid, minlength=traj.n_users)})
    return People(
        name=name or traj.source,
        encoder=encoder,
        uids=np.asarray(traj.users),
        embeddings=emb,
        attrs=attrs.reset_index(drop=True),
        person=traj.uid.astype(np.int64),
        region=region.astype(np.int64),
        codes=uniq // 10_000,
        sizes=uniq % 10_000,
        hour=(minute // 60).astype(np.int8),
        weekend=(traj.weekday >= 5) if known else np.zeros(len(traj), bool),
        holiday=holiday,
        token=tok.astype(np.uint8),
        start=traj.start,
        duration=traj.duration,
        weekday=traj.weekday.astype(np.int8),
        weekday_known=known,
        day0=traj.day0 if known else None,
        country=country,
    )


def _attrs(traj: Trajectories, path: Path, truth: Path | None) -> pd.DataFrame:
    table = people_table(traj, truth)
    return table.drop(columns=[c for c in ("uid", "home_code", "work_code") if c in table.columns])


def load_people(path: str | Path, truth: str | Path | None = None, country: str = knobs.COUNTRY.default) -> People:
    """People of a trajectory file (stay table or HuMob) with :func:`simple_features` embeddings."""
    p = Path(path)
    traj = read_trajectories(p)
    t = Path(truth) if truth else find_demo_truth(p)
    return people_from_trajectories(traj, attrs=_attrs(traj, p, t), name=p.name, encoder=FEATURES, country=country)


def load_run(run_dir: str | Path, country: str = knobs.COUNTRY.default) -> People:
    """People of a walkers run (``users.csv`` + ``metrics.json`` naming the trajectory file it embedded)."""
    from core.walkers.regions import read_users_csv

    run = Path(run_dir)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise InputError(str(run), "no metrics.json", expected="a folder written by 'python -m core walkers train'")
    metrics = json.loads(metrics_path.read_text())
    src = Path(metrics.get("source", ""))
    if not src.is_absolute() and not src.is_file():
        src = run / src
    traj = read_trajectories(src)
    labels, emb = read_users_csv(run / "users.csv")
    idx = pd.Index(pd.Series(labels).astype(str)).get_indexer(pd.Index(pd.Series(traj.users).astype(str)))
    keep = idx >= 0
    if not keep.all():  # people without an embedding (no usable record) are left out
        traj = traj.select_users(np.flatnonzero(keep))
        idx = idx[keep]
    truth = Path(metrics["truth"]) if metrics.get("truth") else find_demo_truth(src)
    return people_from_trajectories(
        traj,
        emb[idx],
        attrs=_attrs(traj, src, truth),
        name=run.name,
        encoder=f"run '{run.name}' ({metrics.get('encoder', 'walkers transformer')})",
        country=country,
    )


# ---------------------------------------------------------------- projection


@dataclass
class Projection:
    """2-D coordinates of every person and the explained variance ratio of each PCA component."""

    xy: np.ndarray
    explained: np.ndarray
    method: str


def standardise(emb: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (constant columns become 0)."""
    e = np.asarray(emb, np.float64)
    sd = e.std(axis=0)
    return (e - e.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def project(emb: np.ndarray, method: str = "pca", seed: int = 0) -> Projection:
    """Standardise, then PCA (eigenvectors of the d x d covariance) or UMAP when installed and asked for."""
    z = standardise(emb)
    cov = z.T @ z / max(len(z) - 1, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0, None), vecs[:, order]
    explained = vals / vals.sum() if vals.sum() > 0 else vals
    if method == "umap":
        try:
            import umap
        except ImportError:
            method = "pca"
        else:
            xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(z)
            return Projection(np.asarray(xy, np.float32), explained, "umap")
    xy = z @ vecs[:, :2]
    # A deterministic sign: the larger end of each axis holds the larger absolute loading's side.
    signs = np.sign(vecs[np.abs(vecs[:, :2]).argmax(axis=0), [0, 1]])
    return Projection((xy * np.where(signs == 0, 1, signs)).astype(np.float32), explained, "pca")


def umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def clusters(emb: np.ndarray, k: int = N_CLUSTERS, seed: int = 0) -> np.ndarray:
    """k-means labels of the standardised embeddings."""
    from sklearn.cluster import KMeans

    z = standardise(emb).astype(np.float32)
    return KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(z).astype(np.int64)


def separation(xy: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """How well a linear classifier on the 2-D projection separates two groups: 5-fold balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return float("nan")  # one group only: nothing to separate
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = cross_val_score(
        LogisticRegression(class_weight="balanced", max_iter=1000), xy, y, cv=cv, scoring="balanced_accuracy"
    )
    return float(scores.mean())


# ---------------------------------------------------------------- selections


def in_polygon(xy: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Points inside a polygon (even-odd rule); a loop over the polygon's edges, vectorised over points."""
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    inside = np.zeros(len(xy), bool)
    n = len(px)
    for i in range(n):
        x1, y1, x2, y2 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xi = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xi)
    return inside


def _numbers(values: object, limit: int) -> np.ndarray | None:
    if not isinstance(values, list | tuple) or not 0 < len(values) <= 10 * limit:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1 or not np.isfinite(arr).all():
        return None
    if len(arr) > limit:  # thin an over-long lasso, keep its shape
        arr = arr[np.linspace(0, len(arr) - 1, limit).astype(int)]
    return arr


def select(xy: np.ndarray, selected: object) -> np.ndarray | None:
    """Rows chosen by a plotly ``selectedData`` (its box ``range`` or ``lassoPoints``), validated.

    Anything malformed (or no selection) gives ``None``: "no selection", never an error.
    """
    if not isinstance(selected, dict):
        return None
    rng = selected.get("range")
    if isinstance(rng, dict):
        if not all(isinstance(rng.get(a), list | tuple) and len(rng[a]) == 2 for a in ("x", "y")):
            return None
        xs, ys = _numbers(rng.get("x"), 2), _numbers(rng.get("y"), 2)
        if xs is None or ys is None or len(xs) != 2 or len(ys) != 2:
            return None
        x, y = xy[:, 0], xy[:, 1]
        return np.flatnonzero((x >= xs.min()) & (x <= xs.max()) & (y >= ys.min()) & (y <= ys.max()))
    lasso = selected.get("lassoPoints")
    if isinstance(lasso, dict):
        xs, ys = _numbers(lasso.get("x"), MAX_LASSO_VERTICES), _numbers(lasso.get("y"), MAX_LASSO_VERTICES)
        if xs is None or ys is None or len(xs) != len(ys) or len(xs) < 3:
            return None
        return np.flatnonzero(in_polygon(xy, xs, ys))
    return None


def clicked_row(xy: np.ndarray, click: object) -> int | None:
    """The person behind a plotly ``clickData``: the point's ``customdata`` when it came along, else the
    person drawn exactly at the clicked ``x``, ``y`` (None when neither names one).

    plotly.js leaves a typed (base64) ``customdata`` out of scattergl click events, and the figure
    sends typed arrays (a plain list of 100 k rows costs ~1 s to build); the clicked coordinates are
    the drawn float32 values, so an exact match finds the person.
    """
    try:
        point = click["points"][0]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(point, dict):
        return None
    n = len(xy)
    row = point.get("customdata")
    if isinstance(row, int | float) and not isinstance(row, bool) and float(row).is_integer():
        return int(row) if 0 <= row < n else None
    x, y = point.get("x"), point.get("y")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in (x, y)):
        return None
    hit = np.flatnonzero((xy[:, 0] == np.float32(x)) & (xy[:, 1] == np.float32(y)))
    return int(hit[0]) if len(hit) else None


@dataclass(frozen=True)
class StayFilter:
    """Which stays of the selected people count: day kind and arrival hours ``[h0, h1)``."""

    day: str = "all"
    h0: int = 0
    h1: int = 24

    @classmethod
    def clamp(cls, day: object, hours: object) -> StayFilter:
        """A filter from browser values: unknown day -> all, hours clamped to 0..24 and ordered."""
        d = day if day in DAYS else "all"
        h0, h1 = 0, 24
        if isinstance(hours, list | tuple) and len(hours) == 2:
            try:
                a, b = (int(np.clip(float(v), 0, 24)) for v in hours)
                h0, h1 = min(a, b), max(a, b)
            except (TypeError, ValueError):
                pass
        return cls(str(d), h0, h1)


def stay_mask(people: People, rows: np.ndarray | None, flt: StayFilter = StayFilter()) -> np.ndarray:
    """Stays of the selected people (all people when ``rows`` is None) passing the filter."""
    if rows is None:
        mask = np.ones(len(people.person), bool)
    else:
        chosen = np.zeros(people.n, bool)
        chosen[np.asarray(rows, np.int64)] = True
        mask = chosen[people.person]
    if flt.day == "weekday":
        mask &= ~people.day_off
    elif flt.day == "holiday":
        mask &= people.day_off
    if (flt.h0, flt.h1) != (0, 24):
        mask &= (people.hour >= flt.h0) & (people.hour < flt.h1)
    return mask


def region_counts(people: People, mask: np.ndarray) -> np.ndarray:
    """Stays per region (``len(people.codes)``) among the masked stays."""
    return np.bincount(people.region[mask], minlength=len(people.codes))


HEAT_LEVELS = 8


def heat_classes(counts: np.ndarray) -> np.ndarray:
    """Colour class per region: -1 (none), else 0..7 on a log scale of its count relative to the maximum."""
    c = np.asarray(counts, np.float64)
    out = np.full(len(c), -1, np.int64)
    hit = c > 0
    if hit.any():
        top = np.log1p(c.max())
        out[hit] = np.minimum((np.log1p(c[hit]) / top * HEAT_LEVELS).astype(np.int64), HEAT_LEVELS - 1)
    return out


def token_histogram(people: People, mask: np.ndarray) -> np.ndarray:
    """Counts of the 168 stay tokens among the masked stays."""
    return np.bincount(people.token[mask], minlength=168)


def pattern(people: People, mask: np.ndarray) -> np.ndarray:
    """The stacked stay-pattern chart ``(2, 12, 7)`` of the masked stays (the one drawn for clusters)."""
    from core.analysis.charts import stay_patterns

    return stay_patterns(token_histogram(people, mask)[None, :].astype(np.float64))[0]


def summary(people: People, rows: np.ndarray | None, mask: np.ndarray, top: int = 5) -> dict:
    """People, stays (on holidays: weekends or national holidays; on national holidays), top places
    (code, size, stays) and the share of commuters where known."""
    n_people = people.n if rows is None else len(rows)
    counts = region_counts(people, mask)
    order = np.argsort(-counts, kind="stable")[:top]
    places = [
        {"code": int(people.codes[i]), "mesh_size": int(people.sizes[i]), "stays": int(counts[i])} for i in order if counts[i] > 0
    ]
    out: dict = {
        "people": int(n_people),
        "stays": int(mask.sum()),
        "holiday_stays": int((people.day_off & mask).sum()),
        "national_holiday_stays": int((people.holiday & mask).sum()),
        "top_places": places,
        "commuter_share": None,
    }
    if "commuter" in people.attrs.columns:
        com = pd.to_numeric(people.attrs["commuter"], errors="coerce").to_numpy(np.float64)
        sel = com if rows is None else com[np.asarray(rows, np.int64)]
        known = np.isfinite(sel)
        if known.any():
            out["commuter_share"] = float(sel[known].mean())
    return out


def day_panels(people: People) -> tuple[str, str]:
    """Names of the stay-pattern chart's two day-type panels for these people's stays.

    With calendar dates they mean what they mean in the cluster charts (weekday; Saturday, Sunday or
    national holiday). Without dates only the weekend is known; without weekdays (HuMob), nothing.
    """
    if people.dates_known:
        return "weekday", "holiday"
    if people.weekday_known:
        return "weekday", "weekend (no calendar dates in this source)"
    return "every day (no weekdays in this source)", "holiday (unknown: no calendar dates)"


def calendar_note(people: People) -> str:
    """One sentence on what "holiday" means for these people's stays."""
    if people.dates_known:
        return f"Holiday = a Saturday, Sunday or national holiday ({people.country} calendar), as in the cluster charts."
    if people.weekday_known:
        return "No calendar dates in this source: 'holiday' counts weekends only (national holidays unknown)."
    return "Days are anonymised in this source (no weekdays, no dates): every stay counts as a weekday."


def n_weeks(people: People) -> int:
    """Weeks the source spans, counted from its first day (at least 1)."""
    if "weeks" not in people._cache:
        people._cache["weeks"] = int(people.start.max() // DAY_MINUTES) // 7 + 1 if len(people.start) else 1
    return people._cache["weeks"]


def clamp_week(people: People, week: object) -> int:
    """A week number from a browser value: 1-based, clamped to ``1..n_weeks`` (anything else: 1)."""
    try:
        w = float(week)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    if not np.isfinite(w):
        return 1
    return int(np.clip(np.floor(w), 1, n_weeks(people)))


def first_week(people: People, row: int) -> int:
    """The first week (1-based) in which person ``row`` has a stay; 1 for a person without stays."""
    off = people.offsets()
    row = int(np.clip(row, 0, people.n - 1))
    start = people.start[int(off[row]) : int(off[row + 1])]
    if len(start) == 0:
        return 1
    return int(start.min() // DAY_MINUTES) // 7 + 1


def week_label(people: People, week: int) -> str:
    """``week 2 of 5 (2021-04-08 to 2021-04-14)``, or the day indices without calendar dates."""
    first, last = 7 * (week - 1), 7 * week - 1
    head = f"week {week} of {n_weeks(people)}"
    if people.day0 is None:
        return f"{head} (days {first}-{last})"
    a, b = (str(np.datetime64(people.day0 + d, "D")) for d in (first, last))
    return f"{head} ({a} to {b})"


def person_stays(people: People, row: int, week: int | None = None) -> pd.DataFrame:
    """One person's stays: day index, weekday, start (minutes of day), duration, region code,
    national-holiday flag and a day label (the date where known).

    Args:
        week: only the stays of this week of the source (1-based, days ``7 (week - 1) .. 7 week - 1``);
            None: all of them.
    """
    off = people.offsets()
    row = int(np.clip(row, 0, people.n - 1))
    s = slice(int(off[row]), int(off[row + 1]))
    start = people.start[s]
    day = (start // DAY_MINUTES).astype(np.int64)
    keep = slice(None) if week is None else (day >= 7 * (week - 1)) & (day < 7 * week)
    day, start = day[keep], start[keep]
    weekday = people.weekday[s][keep]
    holiday = people.holiday[s][keep]
    return pd.DataFrame(
        {
            "day": day,
            "weekday": weekday,
            "minute": start % DAY_MINUTES,
            "duration": people.duration[s][keep],
            "code": people.codes[people.region[s][keep]],
            "holiday": holiday,
            "label": _day_labels(people, day, weekday, holiday),
        }
    )


def _day_labels(people: People, day: np.ndarray, weekday: np.ndarray, holiday: np.ndarray) -> list[str]:
    from core.constants import WEEKDAYS

    if people.day0 is None:
        return [f"day {d}" + (f" ({WEEKDAYS[w][:3]})" if 0 <= w < 7 else "") for d, w in zip(day, weekday)]
    dates = (np.datetime64(people.day0, "D") + day).astype(str)
    return [f"{t} ({WEEKDAYS[w][:3]}{', holiday' if h else ''})" for t, w, h in zip(dates, weekday, holiday)]


def colour_values(people: People, attr: str) -> tuple[np.ndarray, list[str]]:
    """A category index per person for colouring, and the category names (``attr`` as in :func:`attribute_options`)."""
    if attr == "cluster":
        key = "_clusters"
        if key not in people._cache:
            people._cache[key] = clusters(people.embeddings)
        lab = people._cache[key]
        return lab, [f"cluster {c}" for c in range(int(lab.max()) + 1)]
    if attr == "activity":
        act = people.attrs["activity"].to_numpy(np.float64)
        edges = np.unique(np.quantile(act, [0.25, 0.5, 0.75]))
        idx = np.searchsorted(edges, act, side="right")
        bounds = [act.min(), *edges, act.max()]
        names = [f"{bounds[i]:.0f}-{bounds[i + 1]:.0f} records" for i in range(len(bounds) - 1)]
        return idx.astype(np.int64), names
    col = people.attrs[attr] if attr in people.attrs.columns else pd.Series(["unknown"] * people.n)
    if attr == "commuter":
        col = col.map({True: "commuter", False: "not a commuter"})
    codes, uniques = pd.factorize(col.astype("object").where(col.notna(), "unknown"), sort=True)
    return codes.astype(np.int64), [str(n) for n in uniques]


def attribute_options(people: People) -> list[str]:
    """Attributes the scatter can be coloured by, for these people; the first is the default.

    Known attributes that tell people apart (two or more values) come first; one that is the same for
    everybody (the small demo scales have no commuters: their cities are too small for a 3 km commute)
    would paint the scatter one colour, so it is offered last, after activity and the clustering.
    """
    known = [c for c in ("commuter", "role", "home_district") if c in people.attrs.columns and people.attrs[c].notna().any()]
    varying = [c for c in known if people.attrs[c].nunique(dropna=True) > 1]
    constant = [c for c in known if c not in varying]
    return [*varying, "activity", "cluster", *constant]
