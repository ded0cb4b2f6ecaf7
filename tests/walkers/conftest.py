"""Small synthetic trajectories with a known rule, shared by the walker tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def commute_frame(n_people: int = 60, days: int = 6, seed: int = 0) -> pd.DataFrame:
    """People alternate between home (evening, night) and work 3 km east of it (day).

    A stay table with user ids: home from 18:00 (14 h), work from 08:00 (9 h), every day; homes
    are spread over ~10 km around Nagoya, so the next place depends on the time of day only.
    """
    rng = np.random.default_rng(seed)
    lat0, lon0 = 35.17, 136.90
    home_x = rng.uniform(-5, 5, n_people)
    home_y = rng.uniform(-5, 5, n_people)
    rows = []
    for d in range(days):
        for kind, hour, minutes, dx in (("work", 8, 540, 3.0), ("home", 18, 840, 0.0)):
            x = home_x + dx + rng.normal(0, 0.05, n_people)
            y = home_y + rng.normal(0, 0.05, n_people)
            rows.append(
                pd.DataFrame(
                    {
                        "user_id": np.arange(n_people),
                        "lat": lat0 + y / 111.32,
                        "lon": lon0 + x / (111.32 * np.cos(np.radians(lat0))),
                        "date": pd.Timestamp("2021-04-05") + pd.Timedelta(days=d),
                        "arrival_time": f"{hour:02d}:{(d * 7) % 60:02d}",
                        "stay_time": minutes,
                        "place": kind,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models: one torch thread is fastest, and stays fast on a busy shared box (NOTES)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AREA_THREADS", "1")
        yield


@pytest.fixture
def commute() -> pd.DataFrame:
    return commute_frame()
