"""build_features: the model's features, in New York local time, and nothing known only after
departure."""

from __future__ import annotations

import pandas as pd
from conftest import flight, frame
from flightdelay.steps import FEATURES, WEATHER_FIELDS, build_features

WEATHER = {name: float(i) for i, name in enumerate(WEATHER_FIELDS)}


def rows(*flights: dict, index: list[int] | None = None) -> pd.DataFrame:
    return frame(*[{**WEATHER, **f} for f in flights], index=index)


def test_the_columns_are_the_features_in_order() -> None:
    out = build_features(rows(flight(), flight(), index=[7, 3]))
    assert list(out.columns) == list(FEATURES)
    assert list(out.index) == [7, 3]


def test_departure_time_is_new_york_local() -> None:
    out = build_features(rows(
        flight(year=2013, month=1, day=1, sched_dep_time=830),     # Tuesday morning, winter
        flight(year=2013, month=7, day=27, sched_dep_time=2359),   # Saturday night, summer
        flight(year=2013, month=3, day=10, sched_dep_time=106),    # Sunday, 1:06 am: clocks change at 2
    ))
    assert out["dep_hour"].tolist() == [8, 23, 1]
    assert out["dep_minute_of_day"].tolist() == [8 * 60 + 30, 23 * 60 + 59, 66]
    assert out["weekday"].tolist() == [1, 5, 6]


def test_flight_and_weather_fields_are_carried_over() -> None:
    out = build_features(rows(flight(carrier="B6", origin="LGA", dest="ORD", distance=733)))
    assert out.loc[0, ["carrier", "origin", "dest"]].tolist() == ["B6", "LGA", "ORD"]
    assert out.loc[0, "distance"] == 733
    assert out.loc[0, list(WEATHER_FIELDS)].tolist() == list(WEATHER.values())


AFTER_DEPARTURE = {"dep_time": 1402.0, "dep_delay": 332.0, "arr_time": 1903.0, "arr_delay": 328.0,
                   "air_time": 301.0}


def test_nothing_known_only_after_departure_is_a_feature() -> None:
    on_time = rows(flight(), flight(sched_dep_time=1510))
    late = rows(flight(**AFTER_DEPARTURE), flight(sched_dep_time=1510, **AFTER_DEPARTURE))
    pd.testing.assert_frame_equal(build_features(on_time), build_features(late))
    assert not set(AFTER_DEPARTURE) & set(build_features(late).columns)
