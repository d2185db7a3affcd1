"""python -m flightdelay.train --data DIR --out MODEL --state STATE (the starter).

TODO (see the lab README): a run log in STATE/run_log.json, a seed, the quality gate, and
every run in MLflow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from flightdelay import steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--state", type=Path)
    args = parser.parse_args()

    flights = pd.read_csv(args.data / "flights.csv.gz")
    weather = pd.read_csv(args.data / "weather.csv.gz")
    airports = pd.read_csv(args.data / "airports.csv.gz")
    valid, _ = steps.validate(flights, airports)
    rows, _ = steps.clean(steps.join_weather(valid, weather))
    train, validation = steps.split(rows)

    encode = ColumnTransformer([("codes", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                                 steps.CATEGORICAL_FEATURES)], remainder="passthrough")
    model = make_pipeline(encode, HistGradientBoostingClassifier())
    model.fit(steps.build_features(train), steps.label(train))
    print("validation accuracy:", model.score(steps.build_features(validation), steps.label(validation)))
    joblib.dump(model, args.out)


if __name__ == "__main__":
    main()
