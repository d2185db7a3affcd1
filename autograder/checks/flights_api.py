"""Realistic requests for the serving lab's API, built from the flight data.

The harness owns this conversion (it never imports a team's code): a flight row plus the
weather at its origin in its scheduled hour becomes one ``POST /predict`` body, in the lab's
contract (see ``labs/serving/README.md``).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from autograder import data
from autograder.checkapi import CheckFailed, CommandResult
from autograder.checks.serving_contract import Prediction, Weather
from autograder.errors import explain_validation

WEATHER_FIELDS: tuple[str, ...] = tuple(Weather.model_fields)
"""The weather fields of a request, as the lab's contract names them."""
TRAINING_COLUMNS = (
    "year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight", "tailnum",
    "origin", "dest", "distance", "hour", "minute", "time_hour",
)
"""The offline ``predict`` command's input: the flights table's own columns, as training reads
them, less the outcomes (departure and arrival times and delays, air time) a prediction made
before departure cannot know."""


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


def training_rows(frame: pd.DataFrame) -> bytes:
    """Flights as a CSV in the flights table's layout (``TRAINING_COLUMNS``), times as the data
    files write them: the offline path then runs the team's training feature code."""
    rows = frame[list(TRAINING_COLUMNS)].copy()
    rows["time_hour"] = rows["time_hour"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return rows.to_csv(index=False, lineterminator="\n").encode()


def offline_predictions(result: CommandResult, rows: int, what: str) -> np.ndarray:
    """The ``delay_probability`` column of the CSV a team's ``predict`` command wrote to
    ``{output}``, one value per input row; CheckFailed saying what to change when the command
    failed, wrote nothing readable, or wrote another number of rows. ``what`` names the run."""
    if not result.ok:
        raise CheckFailed(f"{what} failed: {result.explain()}. Last lines:\n{result.tail(10)}")
    if "output" not in result.files:
        raise CheckFailed(f"{what} wrote no file at {{output}}; write the predictions CSV to the path it is given")
    try:
        proba = pd.read_csv(io.BytesIO(result.files["output"]))["delay_probability"].to_numpy(dtype=float)
    except (KeyError, ValueError) as exc:
        raise CheckFailed(f"could not read a delay_probability column of numbers from the {{output}} CSV of {what} ({exc})") from None
    if len(proba) != rows:
        raise CheckFailed(f"{what} wrote {len(proba)} rows for {rows} input rows; write one prediction per row, in order")
    return proba


def traffic(public: Path, heldout: Path | None, rows: int, seed: int) -> pd.DataFrame:
    """Ordinary traffic: flights of the validation months and, when grading (the held-out data is
    at hand), half from the held-out months, shuffled, so that no request's date tells a service
    whether a hidden check is running.

    Only flights of carriers and destinations the train months show: a public check must give
    the same verdict every run and in a self-check as in grading, so rare categories are not
    left to the luck of the draw (api_contract and bad_input send them on purpose).
    """
    seen = data.load_flights("train", public)
    carriers, dests = set(seen["carrier"]), set(seen["dest"])

    def ordinary(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["carrier"].isin(carriers) & frame["dest"].isin(dests)]

    late = ordinary(labelled_flights("heldout", rows // 2, seed=seed, data_dir=heldout)) if heldout is not None else None
    early = ordinary(labelled_flights("validation", rows + 50 - (0 if late is None else len(late)), seed=seed, data_dir=public))
    mixed = early if late is None else pd.concat([early, late])
    return mixed.sample(frac=1.0, random_state=seed).head(rows).reset_index(drop=True)


def short(body: Any, limit: int = 160) -> str:
    """A request or answer body shortened for a message."""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def prediction_problem(body: Any, version: str | None = None, need_version: bool = True) -> str:
    """What is wrong with a /predict answer, or '' when it keeps the contract (``Prediction``)."""
    if not isinstance(body, dict):
        return f"the answer is not a JSON object: {short(body)}"
    if not need_version and not body.get("model_version"):
        body = {**body, "model_version": "-"}
    try:
        answer = Prediction.model_validate(body, strict=True)  # JSON types as they came: no "true" for true
    except ValidationError as exc:
        return f"{explain_validation(exc, top='the answer')} (see the contract's Prediction)"
    if answer.delayed != (answer.delay_probability >= answer.threshold):
        return (f"delayed={answer.delayed} contradicts delay_probability={answer.delay_probability} with threshold="
                f"{answer.threshold} (delayed means probability >= threshold)")
    if version is not None and answer.model_version != version:
        return f"model_version {answer.model_version!r} differs from /version's {version!r}"
    return ""
