"""Issue 17: epoch-second times in a GPS CSV work as documented; mesh codes must be on Earth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.geo.meshcode import OutsideJapanWarning, invalid_codes, parse_code_column
from core.mobility.gps import GpsOptions, gps_to_stays

P = (35.681236, 139.767125)  # Tokyo station


def fixes(times):
    return pd.DataFrame({"user_id": "u", "timestamp": times, "lat": P[0], "lon": P[1]})


@pytest.mark.parametrize("scale", [1, 1000])
def test_epoch_seconds_in_a_csv(tmp_path, scale):
    start = pd.Timestamp("2021-04-05 09:00", tz="Asia/Tokyo")  # a Monday
    epoch = [int((start + pd.Timedelta(minutes=m)).timestamp()) * scale for m in range(11)]
    iso = [(start + pd.Timedelta(minutes=m)).tz_localize(None).isoformat(sep=" ") for m in range(11)]
    fixes(epoch).to_csv(tmp_path / "epoch.csv", index=False)
    fixes(iso).to_csv(tmp_path / "iso.csv", index=False)
    a, report = gps_to_stays([tmp_path / "epoch.csv"], GpsOptions())
    b, _ = gps_to_stays([tmp_path / "iso.csv"], GpsOptions())
    cols = ["arrival_time", "stay_time", "day_of_week"]
    assert (
        a[cols].to_dict("records")
        == b[cols].to_dict("records")
        == [{"arrival_time": "09:00", "stay_time": 10, "day_of_week": "Monday"}]
    )


def test_epoch_column_with_text_rows_names_them(tmp_path):
    fixes(["1617580800", "1617580860", "soon"]).to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(InputError, match="row 3"):
        gps_to_stays([tmp_path / "mixed.csv"], GpsOptions())


def test_mesh_code_east_of_180_degrees_is_malformed():
    # 5399: lat 35.3, lon 100 + 99 = 199.9 degrees: not on Earth.
    assert invalid_codes(np.array([53990000, 5399000011, 53394509]), np.array([1000, 250, 1000])).tolist() == [True, True, False]
    with pytest.raises(InputError, match="malformed mesh code"):
        parse_code_column(np.array(["5399000011"]), "s.csv", "code")


def test_mesh_code_outside_japan_warns():
    with pytest.warns(OutsideJapanWarning, match="row 2"):
        parse_code_column(np.array(["5339450911", "1010000011"]), "s.csv", "code")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_code_column(np.array(["5339450911"]), "s.csv", "code")  # Tokyo: no warning
