"""A synthetic, agent-based Japan: cities on real coordinates, districts, people, and their stays.

Each city is a disc of 50 m cells around its real centre. Cells get a district type from hubs
placed at real places (business districts, stations, nightlife and shopping streets, parks,
universities, ports), with organic noise. People have a home, most a workplace or school, and
live through each day of a month (a maintained holiday calendar decides weekdays and holidays):
night at home, commute through a station, work, lunch, after-work drinks, shopping, parks.
Periods change behaviour the way the OpenUAS paper reports for 2020 (nightlife and restaurants lose
evenings and weekends, fewer office stays, homes fill during the day). Everything is vectorised
over person-days and seeded: the same seed gives the same stays.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pandas as pd

from core.constants import WEEKDAYS
from core.errors import ParameterError
from core.geo.meshcode import LAT_UNITS, LON_UNITS, cells_to_code
from core.simulation.synthetic import TIMES_OF_DAY

DISTRICTS = ("residential", "business", "station", "nightlife", "shopping", "park", "university", "industrial")
RES, BUS, STA, NIGHT, SHOP, PARK, UNI, IND = range(len(DISTRICTS))
KM_PER_DEG_LAT = 111.32
HUB_SPREAD = 2.2


@dataclass(frozen=True)
class Hub:
    """A real place shaping the districts around it."""

    kind: int
    lat: float
    lon: float
    radius_km: float
    weight: float = 1.0
    name: str = ""  # the place's name (the demo release lists named hubs as its known places)


@dataclass(frozen=True)
class CitySpec:
    """A city: its centre, extent, water to leave out and its hubs."""

    name: str
    lat: float
    lon: float
    radius_km: float
    hubs: tuple[Hub, ...]
    # Rectangles of water (lat_min, lat_max, lon_min, lon_max): no cells there.
    water: tuple[tuple[float, float, float, float], ...] = ()
    residents_per_cell: float = 16.0


def _h(kind: int, lat: float, lon: float, r: float, w: float = 1.0, name: str = "") -> Hub:
    return Hub(kind, lat, lon, r, w, name)


CITIES: dict[str, CitySpec] = {
    "tokyo": CitySpec(
        "tokyo",
        35.684,
        139.738,
        7.2,
        (
            _h(BUS, 35.6840, 139.7640, 0.8, name="Marunouchi"),
            _h(BUS, 35.6910, 139.6930, 0.6, name="Nishi-Shinjuku"),
            _h(BUS, 35.6285, 139.7387, 0.5, name="Shinagawa business district"),
            _h(BUS, 35.6650, 139.7600, 0.45, name="Shiodome"),
            _h(BUS, 35.6960, 139.7560, 0.35, name="Kanda"),
            _h(STA, 35.6812, 139.7671, 0.16, 1.6, name="Tokyo Station"),
            _h(STA, 35.6896, 139.7006, 0.18, 1.6, name="Shinjuku Station"),
            _h(STA, 35.6580, 139.7016, 0.15, 1.6, name="Shibuya Station"),
            _h(STA, 35.7295, 139.7109, 0.15, 1.6, name="Ikebukuro Station"),
            _h(STA, 35.6285, 139.7387, 0.13, 1.6, name="Shinagawa Station"),
            _h(STA, 35.7138, 139.7773, 0.12, 1.6, name="Ueno Station"),
            _h(STA, 35.6984, 139.7731, 0.10, 1.6, name="Akihabara Station"),
            _h(NIGHT, 35.6950, 139.7030, 0.35, 1.2, name="Kabukicho"),
            _h(NIGHT, 35.6628, 139.7314, 0.35, 1.2, name="Roppongi"),
            _h(NIGHT, 35.6660, 139.7580, 0.25, 1.2, name="Shimbashi"),
            _h(NIGHT, 35.6600, 139.6990, 0.22, 1.2, name="Dogenzaka"),
            _h(NIGHT, 35.7300, 139.7150, 0.22, 1.2, name="Ikebukuro nightlife"),
            _h(SHOP, 35.6717, 139.7650, 0.45, 1.1, name="Ginza"),
            _h(SHOP, 35.6920, 139.7040, 0.3, 1.1, name="Shinjuku shopping street"),
            _h(SHOP, 35.6590, 139.7030, 0.3, 1.1, name="Shibuya Center Gai"),
            _h(SHOP, 35.6654, 139.7121, 0.3, 1.1, name="Omotesando"),
            _h(SHOP, 35.6984, 139.7731, 0.3, 1.1, name="Akihabara Electric Town"),
            _h(SHOP, 35.7295, 139.7109, 0.3, 1.1, name="Sunshine City"),
            _h(SHOP, 35.7100, 139.7745, 0.2, 1.1, name="Ameyoko"),
            _h(PARK, 35.6852, 139.7528, 0.75, 1.5, name="Imperial Palace"),
            _h(PARK, 35.6717, 139.6949, 0.45, 1.5, name="Yoyogi Park"),
            _h(PARK, 35.6852, 139.7100, 0.35, 1.5, name="Shinjuku Gyoen"),
            _h(PARK, 35.7156, 139.7745, 0.35, 1.5, name="Ueno Park"),
            _h(PARK, 35.6737, 139.7560, 0.15, 1.5, name="Hibiya Park"),
            _h(UNI, 35.7126, 139.7620, 0.35, 1.3, name="University of Tokyo (Hongo)"),
            _h(UNI, 35.7090, 139.7193, 0.3, 1.3, name="Waseda University"),
            _h(UNI, 35.6495, 139.7424, 0.2, 1.3, name="Keio University (Mita)"),
            _h(IND, 35.6350, 139.7500, 0.6, name="Shibaura"),
            _h(IND, 35.6480, 139.7900, 0.6, name="Toyosu"),
        ),
        water=((35.0, 35.645, 139.765, 140.0), (35.0, 35.625, 139.748, 140.0)),
    ),
    "osaka": CitySpec(
        "osaka",
        34.690,
        135.505,
        4.0,
        (
            _h(BUS, 34.7025, 135.4959, 0.6, name="Umeda"),
            _h(BUS, 34.6880, 135.5020, 0.5, name="Yodoyabashi"),
            _h(STA, 34.7025, 135.4959, 0.16, 1.6, name="Osaka Station"),
            _h(STA, 34.6660, 135.5010, 0.14, 1.6, name="Namba Station"),
            _h(STA, 34.6465, 135.5133, 0.13, 1.6, name="Tennoji Station"),
            _h(STA, 34.6967, 135.5340, 0.12, 1.6, name="Kyobashi Station"),
            _h(NIGHT, 34.6970, 135.4980, 0.25, 1.2, name="Kitashinchi"),
            _h(NIGHT, 34.6687, 135.5013, 0.35, 1.2, name="Dotonbori"),
            _h(SHOP, 34.6750, 135.5010, 0.35, 1.1, name="Shinsaibashi"),
            _h(SHOP, 34.7040, 135.4980, 0.3, 1.1, name="Chayamachi"),
            _h(SHOP, 34.7000, 135.5115, 0.2, 1.1, name="Tenjinbashisuji"),
            _h(PARK, 34.6873, 135.5262, 0.5, 1.5, name="Osaka Castle Park"),
            _h(PARK, 34.6850, 135.4920, 0.15, 1.5, name="Utsubo Park"),
            _h(PARK, 34.6500, 135.5100, 0.25, 1.5, name="Tennoji Park"),
            _h(UNI, 34.6920, 135.4900, 0.15, 1.3, name="Nakanoshima campus"),
            _h(IND, 34.6700, 135.4650, 0.6, name="Taisho"),
        ),
        water=((34.0, 35.0, 135.0, 135.455),),
        residents_per_cell=15.0,
    ),
    "nagoya": CitySpec(
        "nagoya",
        35.165,
        136.900,
        2.9,
        (
            _h(BUS, 35.1709, 136.8815, 0.5, name="Meieki"),
            _h(BUS, 35.1690, 136.8970, 0.4, name="Fushimi"),
            _h(BUS, 35.1780, 136.9000, 0.3, name="Marunouchi (Nagoya)"),
            _h(STA, 35.1709, 136.8815, 0.15, 1.6, name="Nagoya Station"),
            _h(STA, 35.1700, 136.9085, 0.12, 1.6, name="Sakae Station"),
            _h(STA, 35.1430, 136.9010, 0.12, 1.6, name="Kanayama Station"),
            _h(STA, 35.1700, 136.9310, 0.10, 1.6, name="Chikusa Station"),
            _h(NIGHT, 35.1710, 136.9050, 0.25, 1.2, name="Nishiki 3-chome"),
            _h(NIGHT, 35.1655, 136.9100, 0.18, 1.2, name="Higashi-Sakae"),
            _h(SHOP, 35.1685, 136.9085, 0.28, 1.1, name="Sakae shopping district"),
            _h(SHOP, 35.1590, 136.9020, 0.25, 1.1, name="Osu"),
            _h(SHOP, 35.1720, 136.8840, 0.2, 1.1, name="Meieki shopping street"),
            _h(PARK, 35.1856, 136.8992, 0.35, 1.5, name="Meijo Park"),
            _h(PARK, 35.1580, 136.9190, 0.25, 1.5, name="Tsurumai Park"),
            _h(PARK, 35.1400, 136.9000, 0.15, 1.5, name="Atsuta"),
            _h(PARK, 35.1735, 136.9088, 0.07, 2.2, name="Hisaya Odori Park"),
            _h(UNI, 35.1570, 136.9260, 0.2, 1.3, name="Nagoya Institute of Technology"),
            _h(UNI, 35.1880, 136.9180, 0.18, 1.3, name="Higashi campus"),
            _h(IND, 35.1450, 136.8700, 0.45, name="Nakagawa"),
        ),
        residents_per_cell=16.0,
    ),
    "sapporo": CitySpec(
        "sapporo",
        43.062,
        141.352,
        2.4,
        (
            _h(BUS, 43.0650, 141.3530, 0.5, name="Odori business district"),
            _h(STA, 43.0687, 141.3508, 0.16, 1.6, name="Sapporo Station"),
            _h(STA, 43.0556, 141.3530, 0.1, 1.6, name="Susukino Station"),
            _h(NIGHT, 43.0545, 141.3530, 0.3, 1.2, name="Susukino"),
            _h(SHOP, 43.0590, 141.3540, 0.3, 1.1, name="Tanukikoji"),
            _h(SHOP, 43.0680, 141.3490, 0.2, 1.1, name="Sapporo Station shops"),
            _h(PARK, 43.0598, 141.3486, 0.15, 1.5, name="Odori Park"),
            _h(PARK, 43.0520, 141.3300, 0.3, 1.5, name="Maruyama"),
            _h(UNI, 43.0770, 141.3410, 0.4, 1.3, name="Hokkaido University"),
            _h(IND, 43.0750, 141.3800, 0.35, name="Higashi industrial area"),
        ),
    ),
    "fukuoka": CitySpec(
        "fukuoka",
        33.590,
        130.410,
        2.5,
        (
            _h(BUS, 33.5897, 130.4207, 0.45, name="Hakata business district"),
            _h(BUS, 33.5900, 130.4000, 0.35, name="Tenjin"),
            _h(STA, 33.5897, 130.4207, 0.15, 1.6, name="Hakata Station"),
            _h(STA, 33.5914, 130.3989, 0.12, 1.6, name="Tenjin Station"),
            _h(NIGHT, 33.5936, 130.4065, 0.25, 1.2, name="Nakasu"),
            _h(SHOP, 33.5914, 130.3989, 0.3, 1.1, name="Tenjin shopping district"),
            _h(SHOP, 33.5890, 130.4180, 0.2, 1.1, name="Hakata Station shops"),
            _h(PARK, 33.5860, 130.3830, 0.35, 1.5, name="Ohori Park"),
            _h(UNI, 33.5790, 130.4030, 0.15, 1.3, name="Yakuin campus"),
            _h(IND, 33.6050, 130.4050, 0.4, name="Hakata Port"),
        ),
        water=((33.607, 34.0, 130.0, 131.0),),
    ),
    "sendai": CitySpec(
        "sendai",
        38.262,
        140.875,
        2.4,
        (
            _h(BUS, 38.2620, 140.8800, 0.45, name="Sendai business district"),
            _h(STA, 38.2601, 140.8824, 0.15, 1.6, name="Sendai Station"),
            _h(NIGHT, 38.2650, 140.8700, 0.3, 1.2, name="Kokubuncho"),
            _h(SHOP, 38.2610, 140.8730, 0.3, 1.1, name="Ichibancho"),
            _h(PARK, 38.2680, 140.8600, 0.3, 1.5, name="Nishi Park"),
            _h(UNI, 38.2540, 140.8500, 0.4, 1.3, name="Tohoku University"),
            _h(IND, 38.2500, 140.9000, 0.35, name="Sendai east industrial area"),
        ),
    ),
    "hiroshima": CitySpec(
        "hiroshima",
        34.393,
        132.466,
        2.4,
        (
            _h(BUS, 34.3930, 132.4620, 0.4, name="Hatchobori"),
            _h(STA, 34.3979, 132.4753, 0.15, 1.6, name="Hiroshima Station"),
            _h(NIGHT, 34.3914, 132.4650, 0.25, 1.2, name="Nagarekawa"),
            _h(SHOP, 34.3934, 132.4586, 0.3, 1.1, name="Hondori"),
            _h(PARK, 34.3925, 132.4528, 0.3, 1.5, name="Peace Memorial Park"),
            _h(PARK, 34.4000, 132.4590, 0.25, 1.5, name="Hiroshima Castle"),
            _h(UNI, 34.3780, 132.4700, 0.2, 1.3, name="Kasumi campus"),
            _h(IND, 34.3750, 132.4850, 0.35, name="Minami industrial area"),
        ),
        water=((34.0, 34.374, 132.0, 133.0),),
    ),
    "kyoto": CitySpec(
        "kyoto",
        35.003,
        135.763,
        2.6,
        (
            _h(BUS, 35.0050, 135.7600, 0.35, name="Karasuma"),
            _h(STA, 34.9858, 135.7588, 0.15, 1.6, name="Kyoto Station"),
            _h(STA, 35.0037, 135.7686, 0.1, 1.6, name="Kawaramachi Station"),
            _h(NIGHT, 35.0037, 135.7750, 0.25, 1.2, name="Gion"),
            _h(SHOP, 35.0037, 135.7660, 0.3, 1.1, name="Shijo shopping street"),
            _h(PARK, 35.0254, 135.7621, 0.4, 1.5, name="Kyoto Imperial Park"),
            _h(UNI, 35.0262, 135.7808, 0.3, 1.3, name="Kyoto University"),
            _h(IND, 34.9800, 135.7400, 0.3, name="Minami industrial area (Kyoto)"),
        ),
    ),
}


def city_places(city: str) -> pd.DataFrame:
    """The named places of a demo city: its centre and its hubs (``name, kind, city, lat, lon``).

    ``kind`` is ``city`` for the centre, else the hub's district type; a name shared by two hubs
    (a station that is also a business centre) is listed once, as its first hub.
    """
    spec = CITIES[city]
    named = [h for h in spec.hubs if h.name]
    frame = pd.DataFrame(
        {
            "name": [city.capitalize()] + [h.name for h in named],
            "kind": ["city"] + [DISTRICTS[h.kind] for h in named],
            "city": city,
            "lat": [spec.lat] + [h.lat for h in named],
            "lon": [spec.lon] + [h.lon for h in named],
        }
    )
    return frame.drop_duplicates("name").reset_index(drop=True)


class FestivalSpec(TypedDict):
    """Where and when the demo's festival takes place (a disc of cells in one city)."""

    city: str
    lat: float
    lon: float
    radius_km: float
    start: dt.date
    end: dt.date


class MallSpec(TypedDict):
    """Where the demo's mall stands and the day it opens."""

    city: str
    lat: float
    lon: float
    radius_km: float
    opens: dt.date


# The demo's designed events in Nagoya (SPEC-free: they are ours, recorded as ground truth).
# Hisaya Odori Park (Sakae) hosts the festival; the mall replaces offices and homes south-west of Sakae.
FESTIVAL: FestivalSpec = {
    "city": "nagoya",
    "lat": 35.1735,
    "lon": 136.9088,
    "radius_km": 0.15,
    "start": dt.date(2021, 9, 18),
    "end": dt.date(2021, 10, 31),
}
MALL: MallSpec = {"city": "nagoya", "lat": 35.1560, "lon": 136.8880, "radius_km": 0.2, "opens": dt.date(2021, 10, 25)}


@dataclass
class CityGrid:
    """The 50 m cells of a city: centres, codes and district types."""

    name: str
    i: np.ndarray
    j: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    code: np.ndarray
    district: np.ndarray
    x_km: np.ndarray
    y_km: np.ndarray
    lat0: float = 0.0  # the city centre the km coordinates are measured from
    lon0: float = 0.0
    _neighbours: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def cells_near(self, lat: float, lon: float, radius_km: float) -> np.ndarray:
        """Indices of cells within ``radius_km`` of a point."""
        y = (lat - self.lat0) * KM_PER_DEG_LAT
        x = (lon - self.lon0) * KM_PER_DEG_LAT * np.cos(np.radians(self.lat0))
        return np.flatnonzero((self.x_km - x) ** 2 + (self.y_km - y) ** 2 <= radius_km**2)


def build_grid(spec: CitySpec, seed: int) -> CityGrid:
    """Cells of the city disc (water left out) with their district types."""
    rng = np.random.default_rng(seed)
    coslat = np.cos(np.radians(spec.lat))
    di = int(np.ceil(spec.radius_km / KM_PER_DEG_LAT * LAT_UNITS))
    dj = int(np.ceil(spec.radius_km / (KM_PER_DEG_LAT * coslat) * LON_UNITS))
    i0, j0 = int(spec.lat * LAT_UNITS), int((spec.lon - 100) * LON_UNITS)
    gi, gj = np.meshgrid(np.arange(i0 - di, i0 + di + 1), np.arange(j0 - dj, j0 + dj + 1), indexing="ij")
    ii, jj = gi.ravel(), gj.ravel()
    lat = (ii + 0.5) / LAT_UNITS
    lon = 100 + (jj + 0.5) / LON_UNITS
    y = (lat - spec.lat) * KM_PER_DEG_LAT
    x = (lon - spec.lon) * KM_PER_DEG_LAT * coslat
    # A slightly ragged edge: the radius varies smoothly with the bearing.
    bearing = np.arctan2(y, x)
    phase = rng.uniform(0, 2 * np.pi, 3)
    edge = spec.radius_km * (1 + 0.06 * np.sin(3 * bearing + phase[0]) + 0.04 * np.sin(5 * bearing + phase[1]))
    keep = x**2 + y**2 <= edge**2
    for lat_lo, lat_hi, lon_lo, lon_hi in spec.water:
        keep &= ~((lat >= lat_lo) & (lat <= lat_hi) & (lon >= lon_lo) & (lon <= lon_hi))
    ii, jj, lat, lon, x, y = (a[keep] for a in (ii, jj, lat, lon, x, y))

    # Named districts are drawn larger than their cores (city centres are mostly non-residential).
    hubs = [Hub(h.kind, h.lat, h.lon, h.radius_km * (1.0 if h.kind == STA else HUB_SPREAD), h.weight) for h in spec.hubs]
    # Local stations with a small shopping street, and pocket parks, scattered over the city.
    area = np.pi * spec.radius_km**2
    for _ in range(int(area / 2.5)):
        k = rng.integers(0, len(x))
        hubs.append(Hub(STA, float(lat[k]), float(lon[k]), 0.07, 1.6))
        hubs.append(Hub(SHOP, float(lat[k]), float(lon[k]) + 0.0012, 0.10, 0.9))
    for _ in range(int(area / 1.5)):
        k = rng.integers(0, len(x))
        hubs.append(Hub(PARK, float(lat[k]), float(lon[k]), 0.06, 1.3))
    influence = np.zeros((len(DISTRICTS), len(x)))
    noise = rng.lognormal(0.0, 0.25, len(x))
    for h in hubs:
        hy = (h.lat - spec.lat) * KM_PER_DEG_LAT
        hx = (h.lon - spec.lon) * KM_PER_DEG_LAT * coslat
        d2 = (x - hx) ** 2 + (y - hy) ** 2
        near = d2 <= (3 * h.radius_km) ** 2
        val = h.weight * np.exp(-d2[near] / h.radius_km**2) * noise[near]
        influence[h.kind, near] = np.maximum(influence[h.kind, near], val)
    district = np.argmax(influence, axis=0)
    district[influence.max(axis=0) < 0.4] = RES
    return CityGrid(spec.name, ii, jj, lat, lon, cells_to_code(ii, jj, 50), district.astype(np.int8), x, y, spec.lat, spec.lon)


# ---------------------------------------------------------------- people

ROLES = ("worker", "student", "other")
WORKER, STUDENT, OTHER = range(3)
# Residents per cell relative to residential, by district type.
_RESIDENT_SHARE = np.array([1.0, 0.0, 0.0, 0.25, 0.25, 0.0, 0.05, 0.08])
# Attraction of workplaces by district type.
_WORK_WEIGHT = np.array([0.25, 30.0, 5.0, 3.0, 6.0, 0.3, 0.6, 12.0])


@dataclass
class Population:
    """People of a city: home and work cells, role, commuter flag (ground truth)."""

    home: np.ndarray
    work: np.ndarray  # -1 for people without a workplace or school
    role: np.ndarray
    commuter: np.ndarray

    def __len__(self) -> int:
        return int(self.home.shape[0])

    def frame(self, grid: CityGrid) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_id": np.arange(len(self)),
                "role": np.asarray(ROLES)[self.role],
                "home_code": grid.code[self.home],
                "work_code": np.where(self.work >= 0, grid.code[np.maximum(self.work, 0)], -1),
                "commuter": self.commuter,
            }
        )


def make_population(grid: CityGrid, residents_per_cell: float, seed: int) -> Population:
    """Homes by district, roles, workplaces (by attraction) and schools."""
    rng = np.random.default_rng(seed)
    lam = residents_per_cell * _RESIDENT_SHARE[grid.district]
    residents = rng.poisson(lam)
    home = np.repeat(np.arange(len(grid)), residents)
    n = len(home)
    # Neighbourhoods are mixed evenly: within each cell, roles follow the city-wide shares
    # (60 % workers, 10 % students, 30 % others) up to rounding, in a random order.
    rank = np.arange(n) - np.repeat(np.cumsum(residents) - residents, residents)
    share = (rank + rng.random(n)) / np.repeat(np.maximum(residents, 1), residents)
    role = np.where(share < 0.6, WORKER, np.where(share < 0.7, STUDENT, OTHER))
    work = np.full(n, -1, dtype=np.int64)
    w = _WORK_WEIGHT[grid.district].astype(np.float64)
    workers = role == WORKER
    work[workers] = rng.choice(len(grid), size=int(workers.sum()), p=w / w.sum())
    unis = np.flatnonzero(grid.district == UNI)
    students = role == STUDENT
    if unis.size:
        work[students] = rng.choice(unis, size=int(students.sum()))
    else:
        role[students] = OTHER
    dist = np.hypot(grid.x_km[home] - grid.x_km[np.maximum(work, 0)], grid.y_km[home] - grid.y_km[np.maximum(work, 0)])
    commuter = (role == WORKER) & (dist > 3.0)
    return Population(home, work, role, commuter)


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A month and how strongly the pandemic changed behaviour in it (severity 0..1)."""

    year: int
    month: int
    severity: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.year}_{self.month:02d}"


# Multipliers at severity 1 (April 2020, Aichi's first state of emergency).
# Offices lose volume (fewer workers) but keep their pattern; nightlife and restaurant / shopping
# districts lose their evening and weekend visits, not their weekday daytime ones.
_PANDEMIC = {
    "work": 0.6,
    "lunch": 0.8,
    "night": 0.12,
    "shop_evening": 0.1,
    "shop_weekend": 0.15,
    "shop_day": 0.9,
    "station": 0.6,
    "park": 0.9,
}
# Share of the workers not at work who stay at home through the day (homes fill during the day).
_REMOTE_AT_HOME = 0.35


def factor(name: str, severity: float) -> float:
    """Probability multiplier of an activity at a pandemic severity."""
    return 1.0 - severity * (1.0 - _PANDEMIC.get(name, 1.0))


def month_days(year: int, month: int) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """Dates of a month, their weekday (Monday = 0) and national-holiday flag (jpholiday)."""
    import jpholiday

    n = calendar.monthrange(year, month)[1]
    dates = [dt.date(year, month, d) for d in range(1, n + 1)]
    hol = {d for d, _ in jpholiday.month_holidays(year, month)}
    return dates, np.array([d.weekday() for d in dates]), np.array([d in hol for d in dates])


# ---------------------------------------------------------------- stays


@dataclass
class _Acc:
    """Accumulates stays slot by slot."""

    user: list = field(default_factory=list)
    cell: list = field(default_factory=list)
    day: list = field(default_factory=list)
    arrival: list = field(default_factory=list)
    stay: list = field(default_factory=list)

    def add(self, user: np.ndarray, cell: np.ndarray, day: np.ndarray, arrival_h: np.ndarray, minutes: np.ndarray) -> None:
        self.user.append(user)
        self.cell.append(cell)
        self.day.append(day)
        self.arrival.append(arrival_h)
        self.stay.append(minutes)


def _pick(rng: np.random.Generator, choices: np.ndarray, n: int) -> np.ndarray:
    if len(choices) == 0:
        raise ParameterError("no cells to choose from")
    return choices[rng.integers(0, len(choices), n)]


def _near(grid: CityGrid, targets: np.ndarray, k: int) -> np.ndarray:
    """For each cell, its k nearest cells among ``targets`` (cached)."""
    key = (id(targets), k)
    if key not in grid._neighbours:
        from sklearn.neighbors import NearestNeighbors

        k = min(k, len(targets))
        nn = NearestNeighbors(n_neighbors=k).fit(np.c_[grid.x_km[targets], grid.y_km[targets]])
        _, idx = nn.kneighbors(np.c_[grid.x_km, grid.y_km])
        grid._neighbours[key] = targets[idx]
    return grid._neighbours[key]


def simulate_month(
    grid: CityGrid,
    people: Population,
    period: Period,
    seed: int,
    observe: float = 0.12,
    festival_cells: np.ndarray | None = None,
    mall_cells: np.ndarray | None = None,
) -> pd.DataFrame:
    """Stays of the people of ``grid`` during ``period``.

    Each person is observed on a day with probability ``observe`` (a GPS panel sees a sample of
    days). Returns one row per stay: ``user_id, lat, lon, code_50m, date, day_of_week,
    is_holiday, arrival_time, stay_time`` and the cell index.
    """
    rng = np.random.default_rng(seed)
    dates, weekday, holiday = month_days(period.year, period.month)
    n_days = len(dates)
    seen = rng.random((len(people), n_days)) < observe
    pid, day = np.nonzero(seen)
    role = people.role[pid]
    off = (weekday[day] >= 5) | holiday[day]
    fri = weekday[day] == 4
    sev = period.severity
    acc = _Acc()
    n = len(pid)
    u = lambda: rng.random(n)  # noqa: E731
    home, work = people.home[pid], people.work[pid]

    def of(*kinds: int) -> np.ndarray:
        cells = np.flatnonzero(np.isin(grid.district, kinds))
        return cells if cells.size else np.arange(len(grid))

    # Lunch is in the shopping streets' restaurants; nightlife districts live in the evening.
    shops, nights, parks, stations, food = of(SHOP), of(NIGHT), of(PARK), of(STA), of(SHOP)

    everywhere = np.arange(len(grid))

    def local(targets: np.ndarray, at: np.ndarray, k: int) -> np.ndarray:
        # A small city may lack a district type: then any cell will do.
        nb = _near(grid, targets if len(targets) else everywhere, k)
        return nb[at, rng.integers(0, nb.shape[1], len(at))]

    def normal(mean: float, sd: float, lo: float, hi: float, size: int) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, size), lo, hi)

    def lognormal(median_min: float, sigma: float, size: int) -> np.ndarray:
        return np.maximum(1.0, rng.lognormal(np.log(median_min), sigma, size))

    # Mall: from its opening its cells are a mall; homes and offices there are gone.
    closed = np.zeros(len(grid), dtype=bool)
    mall_open = np.zeros(n, dtype=bool)
    if mall_cells is not None and len(mall_cells):
        closed[mall_cells] = True
        opens = np.array([d >= MALL["opens"] for d in dates])
        mall_open = opens[day]

    # Night at home (everyone).
    m = (u() < 0.95) & ~(mall_open & closed[home])
    arr = np.where(off[m], normal(18.8, 1.6, 15.5, 23.9, m.sum()), normal(20.0, 1.4, 16.0, 23.9, m.sum()))
    wake = normal(7.2, 0.8, 5.0, 10.5, m.sum()) + np.where(off[m], 1.5, 0.0)
    acc.add(pid[m], home[m], day[m], arr, (24 - arr + wake) * 60)

    # Work and school. Factories run shifts (early, late, night) and work on days off too;
    # campuses see students come and go through the day.
    factory = (role == WORKER) & (work >= 0) & (grid.district[np.maximum(work, 0)] == IND)
    p_work = np.where(
        role == WORKER, 0.93 * factor("work", sev), np.where(role == STUDENT, 0.85 * factor("work", sev * 0.7), 0.0)
    )
    p_work = np.where(off, np.where(factory, 0.45, np.where(role == WORKER, 0.07, 0.0)), p_work)
    p_work = np.where(factory & ~off, 0.93, p_work)
    at_work = (u() < p_work) & (work >= 0) & ~(mall_open & closed[np.maximum(work, 0)])
    m = at_work
    k = int(m.sum())
    shift = rng.choice(3, size=k, p=[0.5, 0.3, 0.2])
    start = np.where(role[m] == STUDENT, normal(10.5, 1.6, 8.0, 16.0, k), normal(8.8, 0.6, 6.5, 11.5, k))
    hours = np.where(role[m] == STUDENT, lognormal(210, 0.45, k) / 60, normal(9.3, 1.0, 5.0, 13.0, k))
    fac = factory[m]
    start = np.where(
        fac,
        np.choose(shift, [normal(6.2, 0.3, 5.0, 7.5, k), normal(14.1, 0.3, 13.0, 15.5, k), normal(22.0, 0.3, 21.0, 23.5, k)]),
        start,
    )
    hours = np.where(fac, normal(8.5, 0.4, 7.0, 10.0, k), hours)
    acc.add(pid[m], work[m], day[m], start, hours * 60)
    end = np.zeros(n)
    end[m] = np.minimum(start + hours, 23.9)
    begin = np.zeros(n)
    begin[m] = start

    # Homes fill during the day: workers not at work on a weekday, and people without work.
    wd_worker_home = (~off) & (role == WORKER) & ~at_work & (u() < _REMOTE_AT_HOME * sev)
    other_home = (role == OTHER) & (u() < np.where(off, 0.45, 0.75))
    m = (wd_worker_home | other_home) & ~(mall_open & closed[home])
    acc.add(pid[m], home[m], day[m], normal(9.8, 1.0, 8.0, 13.0, m.sum()), normal(6.0, 1.8, 2.0, 10.0, m.sum()) * 60)

    # Station on the way to and from work.
    m = at_work & (u() < 0.55 * factor("station", sev))
    acc.add(pid[m], local(stations, home[m], 3), day[m], np.maximum(begin[m] - 0.45, 5.0), lognormal(8, 0.5, m.sum()))
    m = at_work & (u() < 0.45 * factor("station", sev))
    acc.add(
        pid[m], local(stations, np.maximum(work[m], 0), 3), day[m], np.minimum(end[m] + 0.1, 23.9), lognormal(9, 0.5, m.sum())
    )

    # Lunch near work.
    m = at_work & (role == WORKER) & (u() < 0.45 * factor("lunch", sev))
    acc.add(
        pid[m],
        local(food, np.maximum(work[m], 0), 12),
        day[m],
        normal(12.1, 0.35, 11.0, 14.0, m.sum()),
        lognormal(40, 0.35, m.sum()),
    )

    # After work: drinks (more on Fridays), evening shopping.
    p_night = np.where(fri, 0.32, 0.10) * factor("night", sev)
    m = at_work & (role != STUDENT) & (u() < p_night)
    acc.add(pid[m], _pick(rng, nights, m.sum()), day[m], np.minimum(end[m] + 0.4, 23.5), lognormal(130, 0.4, m.sum()))
    m = at_work & (u() < 0.12 * factor("shop_evening", sev))
    acc.add(pid[m], local(shops, np.maximum(work[m], 0), 20), day[m], np.minimum(end[m] + 0.2, 23.5), lognormal(35, 0.5, m.sum()))

    # Days off and people without work: shopping, parks, nights out, station trips.
    free = off | (role == OTHER)
    m = free & (u() < np.where(off, 0.55 * factor("shop_weekend", sev), 0.40 * factor("shop_day", sev)))
    near_home = u()[m] < 0.5
    cells = np.where(near_home, local(shops, home[m], 40), _pick(rng, shops, m.sum()))
    acc.add(pid[m], cells, day[m], normal(14.0, 2.0, 10.0, 20.0, m.sum()), lognormal(90, 0.5, m.sum()))
    # Parks: early walks on any day (mostly people without work), long family outings on days off.
    m = (role == OTHER) & (u() < 0.30 * factor("park", sev))
    acc.add(pid[m], local(parks, home[m], 20), day[m], normal(7.0, 0.7, 5.0, 9.5, m.sum()), lognormal(45, 0.3, m.sum()))
    m = off & (u() < 0.30 * factor("park", sev))
    near_home = u()[m] < 0.5
    cells = np.where(near_home, local(parks, home[m], 20), _pick(rng, parks, m.sum()))
    acc.add(pid[m], cells, day[m], normal(10.5, 1.0, 8.0, 14.0, m.sum()), lognormal(200, 0.3, m.sum()))
    m = off & (role != OTHER) & (u() < 0.20 * factor("night", sev))
    acc.add(pid[m], _pick(rng, nights, m.sum()), day[m], normal(19.5, 1.2, 17.0, 23.5, m.sum()), lognormal(160, 0.4, m.sum()))
    m = off & (u() < 0.35 * factor("station", sev))
    acc.add(pid[m], local(stations, home[m], 3), day[m], normal(11.5, 2.5, 7.0, 21.0, m.sum()), lognormal(10, 0.5, m.sum()))

    # The festival in the park, late September to October 2021.
    if festival_cells is not None and len(festival_cells):
        fest = np.array([FESTIVAL["start"] <= d <= FESTIVAL["end"] for d in dates])[day]
        m = fest & (u() < np.where(off, 0.10, 0.025))
        acc.add(
            pid[m],
            _pick(rng, festival_cells, m.sum()),
            day[m],
            np.where(off[m], normal(14.5, 2.5, 10.0, 20.5, m.sum()), normal(18.5, 1.0, 16.5, 21.0, m.sum())),
            lognormal(110, 0.35, m.sum()),
        )
    # The mall, from its opening day.
    if mall_cells is not None and len(mall_cells):
        m = mall_open & (u() < np.where(off, 0.18, 0.05))
        acc.add(
            pid[m], _pick(rng, mall_cells, m.sum()), day[m], normal(14.0, 2.5, 10.0, 20.5, m.sum()), lognormal(110, 0.4, m.sum())
        )

    user = np.concatenate(acc.user)
    cell = np.concatenate(acc.cell).astype(np.int64)
    dayi = np.concatenate(acc.day)
    arrival_h = np.concatenate(acc.arrival)
    minutes = np.round(np.concatenate(acc.stay)).astype(np.int64)
    minute_of_day = np.clip((arrival_h * 60).astype(np.int64), 0, 1439)
    # Jitter positions inside the cell so that lat/lon are real coordinates.
    jlat = grid.lat[cell] + (rng.random(len(cell)) - 0.5) * 0.9 / LAT_UNITS
    jlon = grid.lon[cell] + (rng.random(len(cell)) - 0.5) * 0.9 / LON_UNITS
    order = np.lexsort((minute_of_day, dayi, user))
    frame = pd.DataFrame(
        {
            "user_id": user[order],
            "lat": jlat[order],
            "lon": jlon[order],
            "cell": cell[order],
            "date": pd.to_datetime(np.asarray(dates, dtype="datetime64[D]")[dayi[order]]),
            "day_of_week": pd.Categorical.from_codes(weekday[dayi[order]].astype(np.int8), categories=pd.Index(list(WEEKDAYS))),
            "is_holiday": holiday[dayi[order]],
            "arrival_time": pd.Categorical.from_codes(
                minute_of_day[order].astype(np.int16), categories=pd.Index(list(TIMES_OF_DAY))
            ),
            "stay_time": minutes[order],
        }
    )
    return frame
