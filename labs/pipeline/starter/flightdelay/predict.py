"""python -m flightdelay.predict --model MODEL --data DIR --input FLIGHTS.csv --output OUT.csv"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import pandas as pd

from flightdelay import steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    model = joblib.load(args.model)
    flights = pd.read_csv(args.input)
    rows = steps.join_weather(flights, pd.read_csv(args.data / "weather.csv.gz"))
    probability = model.predict_proba(steps.build_features(rows))[:, 1]
    pd.DataFrame({"delay_probability": probability}).to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
