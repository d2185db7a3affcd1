"""Realistic requests for the serving lab's API, built from the flight data.

The harness owns this conversion (it never imports a team's code): a flight row plus the
weather at its origin in its scheduled hour becomes one ``POST /predict`` body, in the lab's
contract (see ``labs/serving/README.md``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from autograder import data
from autograder.checks.serving_contract import Weather

WEATHER_FIELDS: tuple[str, ...] = tuple(Weather.model_fields)
"""The weather fields of a request, as the lab's contract names them."""
REQUEST_COLUMNS = ("carrier", "origin", "dest", "scheduled_departure", "distance", "flight", *WEATHER_FIELDS)
"""The flat CSV layout of the offline ``predict`` command's input (one request per row)."""


def labelled_flights(split: str, rows: int, seed: int = 13, data_dir: Path | None = None) -> pd.DataFrame:
    """``rows`` flights of ``split`` that have a label, spread evenly over its months, with
    the weather at departure joined by origin and scheduled hour (it may be missing), and
    the label in ``late``."""
    flights = data.load_flights(split, data_dir)
    flights = flights.assign(late=data.late_label(flights))
    flights = flights[flights["late"].notna()]
    per_month = max(1, rows // flights["month"].nunique())
    parts = [g.sample(min(len(g), per_month), random_state=seed) for _, g in flights.groupby("month")]
    sample = pd.concat(parts).head(rows)
    weather = data.load_weather(data_dir)[["origin", "time_hour", *WEATHER_FIELDS]].drop_duplicates(["origin", "time_hour"])
    joined = sample.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    return joined.reset_index(drop=True)


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return float(value)


def to_request(row: pd.Series) -> dict[str, Any]:
    """One flight row as a ``POST /predict`` body."""
    hhmm = int(row["sched_dep_time"])
    when = f"{int(row['year']):04d}-{int(row['month']):02d}-{int(row['day']):02d}T{hhmm // 100:02d}:{hhmm % 100:02d}:00"
    weather = {name: _number(row.get(name)) for name in WEATHER_FIELDS}
    return {
        "carrier": str(row["carrier"]),
        "origin": str(row["origin"]),
        "dest": str(row["dest"]),
        "scheduled_departure": when,
        "distance": float(row["distance"]),
        "flight": int(row["flight"]),
        "weather": weather,
    }


def to_requests(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [to_request(row) for _, row in frame.iterrows()]


def requests_table(requests: list[dict[str, Any]]) -> pd.DataFrame:
    """Requests as the flat table the offline ``predict`` command reads (``REQUEST_COLUMNS``)."""
    flat = [{**{k: v for k, v in r.items() if k != "weather"}, **(r.get("weather") or {})} for r in requests]
    return pd.DataFrame(flat, columns=list(REQUEST_COLUMNS))
