"""The reference flight-delay model (labs/reference/flightdelay): features, training, prediction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from autograder import data

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "labs" / "reference"
sys.path.insert(0, str(REFERENCE))

from flightdelay.features import (  # noqa: E402
    FEATURES,
    FLIGHT_FIELDS,
    INPUT_FIELDS,
    WEATHER_FIELDS,
    join_weather,
    make_features,
    model_input,
    scheduled_departure,
)
from flightdelay.model import choose_threshold, evaluate  # noqa: E402
from flightdelay.predict import load_model, predict_proba  # noqa: E402


def run_module(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REFERENCE)}
    env.pop("SHIPML_DATA", None)
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REFERENCE, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once with the real command line, the way a team (and the autograder) does."""
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    started = time.perf_counter()
    proc = run_module("flightdelay.train", "--data", str(data.DATA_DIR), "--out", str(out))
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    metrics = {line["model"]: line for line in lines if "model" in line}
    return {"path": out, "metrics": metrics, "summary": lines[-1], "seconds": seconds}


def test_training_is_quick_and_reports_what_it_left_out(trained):
    assert trained["seconds"] < 60  # well under 30 s of fitting on 2 cores
    summary = trained["summary"]
    assert summary["fit_seconds"] < 30
    flights = data.load_flights("train")
    unlabelled = int(flights["arr_delay"].isna().sum())
    assert summary["unlabelled_left_out"]["train"] == unlabelled
    assert summary["train_rows"] == len(flights) - unlabelled


def test_reference_beats_the_baselines_on_validation(trained):
    ref = trained["metrics"]["reference"]
    majority = trained["metrics"]["majority_baseline"]
    logistic = trained["metrics"]["logistic_baseline"]
    assert ref["split"] == "validation" and ref["rows"] == majority["rows"]
    assert ref["f1"] > majority["f1"] + 0.3
    assert ref["pr_auc"] > majority["pr_auc"] + 0.15
    assert ref["pr_auc"] > logistic["pr_auc"] and ref["f1"] > logistic["f1"]
    assert ref["f1"] > trained["metrics"]["always_late"]["f1"]
    assert ref["roc_auc"] > 0.7


def test_bundle_contents(trained):
    bundle = load_model(trained["path"])
    assert bundle["input_fields"] == list(INPUT_FIELDS)
    assert bundle["features"] == list(FEATURES)
    assert 0 < bundle["threshold"] < 1
    assert bundle["model_version"] == trained["summary"]["model_version"]
    assert bundle["validation_metrics"]["f1"] == pytest.approx(trained["metrics"]["reference"]["f1"],
                                                               abs=1e-4)


def test_training_is_deterministic(trained):
    from flightdelay.train import train

    bundle = train(data.DATA_DIR)
    saved = load_model(trained["path"])
    assert bundle["model_version"] == saved["model_version"]
    rows = model_input(data.load_flights("validation").head(500), data.load_weather())
    np.testing.assert_array_equal(bundle["pipeline"].predict_proba(rows),
                                  saved["pipeline"].predict_proba(rows))


def test_predict_cli_matches_the_pipeline(trained, tmp_path: Path):
    flights = data.load_flights("validation").iloc[::7].head(1500)
    rows = model_input(flights, data.load_weather())
    assert rows[list(WEATHER_FIELDS)].isna().any(axis=None)  # some rows have no weather
    rows.insert(0, "id", [f"f{i}" for i in range(len(rows))])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    proc = run_module("flightdelay.predict", "--model", str(trained["path"]),
                      "--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "p.csv"))
    assert proc.returncode == 0, proc.stderr
    preds = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    assert list(preds.columns) == ["id", "delay_probability", "late"]
    assert preds["id"].tolist() == rows["id"].tolist()
    bundle = joblib.load(trained["path"])
    expected = bundle["pipeline"].predict_proba(rows[list(INPUT_FIELDS)])[:, 1]
    np.testing.assert_array_equal(preds["delay_probability"].to_numpy(), expected)
    assert (preds["late"] == (expected >= bundle["threshold"])).all()

    # the same flights without weather columns, with the weather joined by --data
    flights[list(FLIGHT_FIELDS)].to_csv(tmp_path / "bare.csv", index=False)
    proc = run_module("flightdelay.predict", "--model", str(trained["path"]), "--input",
                      str(tmp_path / "bare.csv"), "--output", str(tmp_path / "q.csv"),
                      "--data", str(data.DATA_DIR))
    assert proc.returncode == 0, proc.stderr
    joined = pd.read_csv(tmp_path / "q.csv")["delay_probability"].to_numpy()
    np.testing.assert_array_equal(joined, expected)

    proc = run_module("flightdelay.predict", "--model", str(trained["path"]), "--input",
                      str(tmp_path / "bare.csv"), "--output", str(tmp_path / "r.csv"))
    assert proc.returncode == 2 and "lack required columns" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_single_row_with_weather_in_the_request_matches_the_join(trained):
    bundle = load_model(trained["path"])
    flight = data.load_flights("validation").iloc[[42]]
    weather = data.load_weather()
    request = model_input(flight, weather).to_dict("records")[0]  # what a client would send
    live = predict_proba(bundle, pd.DataFrame([request]))
    offline = predict_proba(bundle, flight, weather)
    np.testing.assert_array_equal(live, offline)
    missing = {**request, **dict.fromkeys(WEATHER_FIELDS, None)}
    assert 0 <= predict_proba(bundle, pd.DataFrame([missing]))[0] <= 1  # NaN weather is fine


def test_scheduled_departure_uses_local_time():
    rows = pd.DataFrame({"year": [2013, 2013], "month": [1, 7], "day": [1, 27],
                         "sched_dep_time": [2359, 106]})
    when = scheduled_departure(rows)
    assert when["dep_hour"].tolist() == [23, 1]
    assert when["dep_minute_of_day"].tolist() == [23 * 60 + 59, 66]
    assert when["weekday"].tolist() == [1, 5]  # Tuesday 1 Jan 2013, Saturday 27 Jul 2013
    for bad in (2400, 1260, -5):
        with pytest.raises(ValueError, match="sched_dep_time"):
            scheduled_departure(rows.assign(sched_dep_time=[bad, 100]))
    with pytest.raises(ValueError, match="real date"):
        scheduled_departure(rows.assign(day=[30, 1], month=[2, 1]))


def test_weather_join_keeps_rows_and_uses_the_scheduled_hour():
    weather = data.load_weather()
    flights = data.load_flights("train").sample(300, random_state=1)
    joined = join_weather(flights, weather)
    assert joined.index.equals(flights.index) and len(joined) == len(flights)
    by_time = flights.merge(weather, on=["origin", "time_hour"], how="left", suffixes=("", "_w"))
    np.testing.assert_array_equal(joined["temp"].to_numpy(), by_time["temp"].to_numpy())
    features = make_features(model_input(flights, weather))
    assert list(features.columns) == list(FEATURES)


def test_missing_weather_columns_are_never_filled_silently():
    flights = data.load_flights("train").head(3)
    with pytest.raises(ValueError, match="lack required columns"):
        model_input(flights)


def test_evaluate_and_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([0.1, 0.2, 0.8, 0.7, 0.6, 0.4])
    threshold = choose_threshold(y, proba)
    scores = evaluate(y, proba, threshold)
    assert scores["f1"] == pytest.approx(max(evaluate(y, proba, t)["f1"] for t in proba))
    assert set(scores) >= {"precision", "recall", "f1", "roc_auc", "pr_auc", "threshold"}
    constant = evaluate(y, np.zeros(len(y)), 0.5)
    assert constant["f1"] == 0 and constant["pr_auc"] == pytest.approx(0.5)
