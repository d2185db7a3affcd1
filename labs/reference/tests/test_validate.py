"""validate: the data contract. Bad rows are rejected with their reason, good rows all kept,
and a table with a missing or mistyped column stops the pipeline with the column's name."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import CARRIERS, NAN, flight, frame
from flightdelay.steps import SchemaError, validate


def test_valid_rows_are_all_kept_with_their_index(airports: pd.DataFrame) -> None:
    flights = frame(flight(), flight(dest="ORD", distance=740), flight(origin="EWR", dest="SFO"),
                    index=[10, 3, 7])
    valid, rejected = validate(flights, airports)
    assert list(valid.index) == [10, 3, 7]
    assert valid["dest"].tolist() == ["LAX", "ORD", "SFO"]
    assert rejected.empty


def test_every_real_carrier_and_a_new_one_are_kept(airports: pd.DataFrame) -> None:
    codes = [*CARRIERS, "ZZ"]  # ZZ: a code airlines.csv.gz does not have yet; the model copes
    valid, rejected = validate(frame(*[flight(carrier=c) for c in codes]), airports)
    assert sorted(valid["carrier"]) == sorted(codes)
    assert rejected.empty


def test_cancelled_and_diverted_flights_are_valid_rows(airports: pd.DataFrame) -> None:
    # They have no label, but nothing is wrong with them: clean removes them, not validate.
    flights = frame(flight(dep_time=NAN, dep_delay=NAN, arr_time=NAN, arr_delay=NAN),
                    flight(arr_time=NAN, arr_delay=NAN))
    valid, rejected = validate(flights, airports)
    assert len(valid) == 2 and rejected.empty


BAD_ROWS = [
    ("distance", {"distance": -100}),
    ("distance", {"distance": 0}),
    ("sched_dep_time", {"sched_dep_time": 2575}),
    ("sched_dep_time", {"sched_dep_time": 1261}),
    ("sched_dep_time", {"sched_dep_time": 2400}),
    ("origin", {"origin": "BOS"}),
    ("origin", {"origin": "PHL"}),
    ("dest", {"dest": "X1"}),
    ("dest", {"dest": "LAXX"}),
    ("dest", {"dest": NAN}),
]


@pytest.mark.parametrize(("column", "changes"), BAD_ROWS, ids=[f"{c}={v}" for c, d in BAD_ROWS for v in d.values()])
def test_a_bad_row_is_rejected_with_its_column(airports: pd.DataFrame, column: str, changes: dict[str, object]) -> None:
    flights = frame(flight(), flight(**changes), flight(dest="ATL"), index=[4, 5, 6])
    valid, rejected = validate(flights, airports)
    assert list(valid.index) == [4, 6]
    assert list(rejected.index) == [5]
    assert rejected.loc[5, "reason"] == f"invalid:{column}"
    assert rejected.loc[5, "carrier"] == "AA"  # the rejected row keeps its columns


def test_the_reason_is_the_first_bad_column_in_file_order(airports: pd.DataFrame) -> None:
    row = flight(sched_dep_time=2575, distance=-5)
    valid, rejected = validate(frame(row), airports)
    assert rejected["reason"].tolist() == ["invalid:sched_dep_time"]
    reordered = frame(row)[["distance", *[c for c in row if c != "distance"]]]
    assert validate(reordered, airports)[1]["reason"].tolist() == ["invalid:distance"]


def test_no_row_is_lost(airports: pd.DataFrame) -> None:
    rows = [flight(), flight(distance=-1), flight(origin="BOS"), flight(carrier="9E"),
            flight(dep_time=NAN, arr_delay=NAN), flight(sched_dep_time=1159), flight(dest="SJU")]
    valid, rejected = validate(frame(*rows), airports)
    assert len(valid) + len(rejected) == len(rows)
    assert sorted([*valid.index, *rejected.index]) == list(range(len(rows)))
    assert sorted(rejected["reason"]) == ["invalid:distance", "invalid:origin"]


def names(column: str, message: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){column}(?![A-Za-z0-9_])", message) is not None


@pytest.mark.parametrize("column", ["carrier", "dest", "distance", "sched_dep_time", "arr_delay", "dep_time"])
def test_a_missing_column_stops_with_its_name(airports: pd.DataFrame, column: str) -> None:
    flights = frame(flight(), flight()).drop(columns=[column])
    with pytest.raises(SchemaError) as err:
        validate(flights, airports)
    assert isinstance(err.value, ValueError) and names(column, str(err.value))


def test_a_renamed_column_stops_with_the_missing_name(airports: pd.DataFrame) -> None:
    flights = frame(flight(), flight()).rename(columns={"dest": "destination"})
    with pytest.raises(SchemaError) as err:
        validate(flights, airports)
    assert names("dest", str(err.value))


def test_numbers_written_as_text_stop_with_the_column(airports: pd.DataFrame) -> None:
    flights = frame(flight(), flight(dest="ORD", distance=740))
    flights["distance"] = flights["distance"].astype(str) + " mi"
    with pytest.raises(SchemaError) as err:
        validate(flights, airports)
    assert names("distance", str(err.value))


def test_a_destination_the_airports_table_lacks_is_kept(airports: pd.DataFrame) -> None:
    # airports.csv.gz lacks real destinations (San Juan, St. Thomas, ...): their flights are real.
    flights = frame(flight(dest="SJU"), flight(dest="STT"), flight(), index=[2, 0, 1])
    valid, rejected = validate(flights, airports)
    assert list(valid.index) == [2, 0, 1] and valid["dest"].tolist() == ["SJU", "STT", "LAX"]
    assert rejected.empty


def test_only_flights_out_of_new_york_are_valid(airports: pd.DataFrame) -> None:
    # The product covers New York departures: another origin is an error, even a known airport.
    origins = ["EWR", "JFK", "LGA", "BOS", "ORD", "jfk"]
    valid, rejected = validate(frame(*[flight(origin=o) for o in origins]), airports)
    assert valid["origin"].tolist() == ["EWR", "JFK", "LGA"]
    assert rejected["origin"].tolist() == ["BOS", "ORD", "jfk"]
    assert set(rejected["reason"]) == {"invalid:origin"}
