"""Local calendars: weekday names and national holidays from maintained libraries (SPEC §9).

Japan uses ``jpholiday``; every other country the ``holidays`` package. Both are asked once per
distinct date range, never per stay: membership is a vectorised ``isin`` over day numbers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from core.constants import WEEKDAYS
from core.errors import InputError

_EPOCH = dt.date(1970, 1, 1)


def holiday_days(country: str, first_day: int, last_day: int) -> np.ndarray:
    """National holidays of ``country`` between two day numbers (days since 1970-01-01), as day numbers.

    Raises:
        InputError: when the country code is not known to the ``holidays`` package.
    """
    start = _EPOCH + dt.timedelta(days=int(first_day))
    end = _EPOCH + dt.timedelta(days=int(last_day))
    code = (country or "").upper()
    if code == "JP":
        import jpholiday

        dates = [d for d, _name in jpholiday.between(start, end)]
    else:
        import holidays

        try:
            cal = holidays.country_holidays(code, years=range(start.year, end.year + 1))
        except NotImplementedError as exc:
            raise InputError(
                "holiday calendar", f"unknown country code {country!r}", expected="an ISO 3166 code such as JP, DE, US"
            ) from exc
        dates = [d for d in cal if start <= d <= end]
    return np.array(sorted((d - _EPOCH).days for d in dates), dtype=np.int64)


def is_holiday(days: np.ndarray, country: str = "JP") -> np.ndarray:
    """Whether each day number (days since 1970-01-01, local dates) is a national holiday."""
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0:
        return np.zeros(0, dtype=bool)
    return np.isin(days, holiday_days(country, int(days.min()), int(days.max())))


def weekday_index(days: np.ndarray) -> np.ndarray:
    """0 = Monday .. 6 = Sunday for day numbers (1970-01-01 was a Thursday)."""
    return ((np.asarray(days, dtype=np.int64) + 3) % 7).astype(np.int8)


def weekday_names(days: np.ndarray) -> np.ndarray:
    """English weekday names for day numbers."""
    return np.asarray(WEEKDAYS, dtype=object)[weekday_index(days)]
