"""join_weather: the weather at the origin airport in the scheduled departure's local hour."""

from __future__ import annotations

import pandas as pd
from conftest import flight, frame, weather_row
from flightdelay.steps import WEATHER_FIELDS, join_weather

# 1 January 2013: a reading each hour at JFK (temp tells them apart), and LGA and EWR at 8.
WEATHER = pd.DataFrame([
    weather_row("JFK", 2013, 1, 1, 7, temp=40.0),
    weather_row("JFK", 2013, 1, 1, 8, temp=50.0),
    weather_row("JFK", 2013, 1, 1, 9, temp=60.0),
    weather_row("LGA", 2013, 1, 1, 8, temp=99.0),
    weather_row("EWR", 2013, 1, 1, 8, temp=70.0),
    weather_row("JFK", 2013, 1, 2, 8, temp=11.0),
])


def temps(flights: pd.DataFrame) -> list[float]:
    return join_weather(flights, WEATHER)["temp"].tolist()


def test_the_scheduled_local_hour_at_the_origin() -> None:
    flights = frame(flight(sched_dep_time=800), flight(sched_dep_time=859), flight(sched_dep_time=900),
                    flight(sched_dep_time=759))
    assert temps(flights) == [50.0, 50.0, 60.0, 40.0]


def test_the_origin_not_the_destination() -> None:
    flights = frame(flight(origin="JFK", dest="LGA"), flight(origin="EWR", dest="JFK"),
                    flight(origin="LGA", dest="EWR"))
    assert temps(flights) == [50.0, 70.0, 99.0]


def test_the_scheduled_not_the_actual_departure() -> None:
    late = flight(sched_dep_time=830, dep_time=955.0, dep_delay=85.0)
    assert temps(frame(late)) == [50.0]


def test_the_date_matters() -> None:
    assert temps(frame(flight(day=2))) == [11.0]


def test_a_flight_without_weather_is_kept_with_nan_in_order() -> None:
    flights = frame(flight(sched_dep_time=1500), flight(), flight(month=3, sched_dep_time=830),
                    index=[9, 2, 5])
    joined = join_weather(flights, WEATHER)
    assert list(joined.index) == [9, 2, 5]
    assert joined.loc[2, "temp"] == 50.0
    assert joined.loc[[9, 5], list(WEATHER_FIELDS)].isna().all(axis=None)


def test_flight_columns_are_kept_and_every_weather_field_added() -> None:
    flights = frame(flight(), flight(dest="ORD"))
    joined = join_weather(flights, WEATHER)
    assert joined[list(flights.columns)].equals(flights)
    assert set(WEATHER_FIELDS) <= set(joined.columns)
    assert len(joined) == 2


def test_the_repeated_hour_at_the_end_of_daylight_saving_time_keeps_its_first_reading() -> None:
    weather = pd.DataFrame([weather_row("JFK", 2013, 11, 3, 1, temp=45.0),  # 1 am EDT
                            weather_row("JFK", 2013, 11, 3, 1, temp=41.0)])  # 1 am EST, an hour later
    joined = join_weather(frame(flight(month=11, day=3, sched_dep_time=130)), weather)
    assert joined["temp"].tolist() == [45.0]
