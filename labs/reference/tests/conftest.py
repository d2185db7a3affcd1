"""Small hand-built tables for the pipeline's tests: each test states the rows it needs.

A flight row has the flights table's columns in the file's order; ``flight(**changes)`` is a
valid, labelled flight (JFK to LAX, Tuesday 1 January 2013, 08:30 New York time) with some
fields changed. Nothing here reads the data folder or fits a model, so the suite runs in a
couple of seconds.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from flightdelay.steps import WEATHER_FIELDS

FLIGHT: dict[str, Any] = {
    "year": 2013, "month": 1, "day": 1, "dep_time": 833.0, "sched_dep_time": 830,
    "dep_delay": 3.0, "arr_time": 1140.0, "sched_arr_time": 1135, "arr_delay": 5.0,
    "carrier": "AA", "flight": 1, "tailnum": "N1", "origin": "JFK", "dest": "LAX",
    "air_time": 330.0, "distance": 2475, "hour": 8, "minute": 30,
    "time_hour": "2013-01-01T13:00:00Z",
}
AIRPORTS = ("LAX", "ORD", "ATL", "BOS", "SFO", "MIA", "EWR", "JFK", "LGA")
CARRIERS = ("9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US",
            "VX", "WN", "YV")
"""Every carrier of airlines.csv.gz."""
NAN = math.nan


def flight(**changes: Any) -> dict[str, Any]:
    return {**FLIGHT, **changes}


def frame(*rows: dict[str, Any], index: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(list(rows), index=index)


def weather_row(origin: str, year: int, month: int, day: int, hour: int, temp: float) -> dict[str, Any]:
    """A weather reading with ``temp`` as its marker and the other fields fixed."""
    fields = dict.fromkeys(WEATHER_FIELDS, 1.0)
    return {"origin": origin, "year": year, "month": month, "day": day, "hour": hour,
            **fields, "temp": temp, "time_hour": "2013-01-01T00:00:00Z"}


@pytest.fixture
def airports() -> pd.DataFrame:
    return pd.DataFrame({"faa": list(AIRPORTS), "name": [f"airport {c}" for c in AIRPORTS]})
