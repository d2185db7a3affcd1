"""clean: flights without a label are removed and counted by reason; nothing else is."""

from __future__ import annotations

from conftest import NAN, flight, frame
from flightdelay.steps import WEATHER_FIELDS, clean


def test_cancelled_and_diverted_are_removed_and_counted() -> None:
    flights = frame(
        flight(),
        flight(dep_time=NAN, dep_delay=NAN, arr_time=NAN, arr_delay=NAN),  # cancelled
        flight(arr_time=NAN, arr_delay=NAN),  # diverted: it left, but never arrived where planned
        flight(arr_delay=-12.0),
        flight(dep_time=NAN, dep_delay=NAN, arr_time=NAN, arr_delay=NAN),  # cancelled
        index=[1, 2, 3, 4, 5],
    )
    kept, removed = clean(flights)
    assert list(kept.index) == [1, 4]
    assert removed == {"cancelled": 2, "diverted": 1}


def test_nothing_to_remove_counts_zero() -> None:
    kept, removed = clean(frame(flight(), flight(arr_delay=40.0)))
    assert len(kept) == 2
    assert removed.get("cancelled", 0) == 0 and removed.get("diverted", 0) == 0


def test_flights_without_weather_are_not_cleaned_away() -> None:
    no_weather = flight(**dict.fromkeys(WEATHER_FIELDS, NAN))
    kept, _ = clean(frame(no_weather, flight(**dict.fromkeys(WEATHER_FIELDS, 3.0))))
    assert len(kept) == 2
