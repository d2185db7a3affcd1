"""Offline batch prediction: the reference the live service is compared with (serving skew).

    python -m flightdelay.predict --model model.joblib --input rows.csv --output preds.csv

``rows.csv`` has one scheduled flight per row with the model's input fields (``FLIGHT_FIELDS``
and ``WEATHER_FIELDS`` of flightdelay.features; empty weather values are missing). Rows
without weather columns need ``--data DIR``: the weather is then joined from that folder.

``preds.csv`` has one row per input row, in the same order: ``id`` (when the input has one),
``delay_probability`` (printed so that it reads back exactly) and ``late`` (1 when
delay_probability >= the model's threshold).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from autograder.errors import ShipmlError
from flightdelay.features import model_input

BUNDLE_KEYS = ("pipeline", "threshold", "model_version", "input_fields")
_TEXT_COLUMNS = {"carrier": str, "origin": str, "dest": str, "id": str}


def load_model(path: Path | str) -> dict[str, Any]:
    """The bundle written by flightdelay.train (a dict with the pipeline and its threshold)."""
    bundle = joblib.load(path)
    missing = [key for key in BUNDLE_KEYS if not isinstance(bundle, dict) or key not in bundle]
    if missing:
        raise ValueError(f"{path}: not a flightdelay model bundle (missing {missing})")
    return bundle


def predict_proba(bundle: dict[str, Any], rows: pd.DataFrame,
                  weather: pd.DataFrame | None = None) -> np.ndarray:
    """Probability of a late arrival for each row (weather from the rows or from ``weather``)."""
    return bundle["pipeline"].predict_proba(model_input(rows, weather))[:, 1]


def read_rows(path: Path | str) -> pd.DataFrame:
    """Input rows from CSV: codes stay text; only empty fields are missing values.

    Rows in the serving API's flat layout (``scheduled_departure`` as New York local ISO time
    instead of ``year``/``month``/``day``/``sched_dep_time``) are converted to the model's input.
    """
    rows = pd.read_csv(path, dtype=_TEXT_COLUMNS, keep_default_na=False, na_values=[""])
    if "scheduled_departure" in rows and "sched_dep_time" not in rows:
        when = pd.to_datetime(rows["scheduled_departure"], format="ISO8601")
        rows = rows.assign(year=when.dt.year, month=when.dt.month, day=when.dt.day,
                           sched_dep_time=when.dt.hour * 100 + when.dt.minute)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flightdelay.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="bundle from flightdelay.train")
    parser.add_argument("--input", type=Path, required=True, help="CSV of flights to score")
    parser.add_argument("--output", type=Path, required=True, help="CSV to write")
    parser.add_argument("--data", type=Path, default=None,
                        help="join weather from this flight data folder (rows lack weather)")
    args = parser.parse_args(argv)
    try:
        bundle = load_model(args.model)
        rows = read_rows(args.input)
        weather = None
        if args.data is not None:
            from flightdelay.steps import validate_weather
            from flightdelay.tables import read_table

            weather = validate_weather(read_table(args.data, "weather"))
        proba = predict_proba(bundle, rows, weather)
    except (ShipmlError, ValueError, OSError) as err:
        print(f"flightdelay.predict: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    out = pd.DataFrame({"delay_probability": proba})
    if "id" in rows:
        out.insert(0, "id", rows["id"].to_numpy())
    out["late"] = (proba >= bundle["threshold"]).astype(int)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.output, index=False, float_format="%.17g", lineterminator="\n")
    print(f"wrote {len(out)} predictions to {args.output} (model {bundle['model_version']})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
