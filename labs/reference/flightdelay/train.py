"""Train the reference model: the pipeline from raw files to a model file, a run log and an
MLflow run.

    python -m flightdelay.train --data DIR --out model.joblib --state STATE

DIR is a flight data folder (a public export, or ``datasets/flights``). The steps, each in
``flightdelay.steps``: read ``flights``, ``weather``, ``airports`` and ``airlines`` as they are;
``validate`` the flights against the data contract (a missing or mistyped column stops here,
with one line naming it; a bad row is removed and counted; a carrier or destination the lookup
tables do not list is kept and listed in the run log); ``clean`` away the flights without a
label (cancelled, diverted); ``join_weather`` (flights without weather keep NaN weather and
are counted); ``split`` by month; fit with a fixed seed; pick the threshold with the best F1 on
the validation months; refuse a model whose validation ROC AUC is below ``MIN_ROC_AUC``; write
the model, ``STATE/run_log.json`` and a run in the MLflow store ``STATE/mlflow.db``.

Prints one JSON object per line: one per model with its validation metrics (reference,
logistic baseline, majority baseline, always-late), then a summary line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from threadpoolctl import threadpool_limits

from autograder.data import dataset_id, resolve_data_dir
from flightdelay import __version__, steps
from flightdelay.features import FEATURES, INPUT_FIELDS, model_input
from flightdelay.model import (
    DEFAULT_PARAMS,
    RANDOM_STATE,
    build_logistic_baseline,
    build_majority_baseline,
    build_pipeline,
    choose_threshold,
    evaluate,
)
from flightdelay.tables import DataFileError, data_id, read_table
from flightdelay.tracking import log_run

CODE_FILES = ("steps.py", "features.py", "model.py", "train.py")
FIT_THREADS = 1
"""OpenMP and BLAS threads while training. The data is small: on a busy 2-core grader, two threads
made the fit 6x slower (13 s against 2 s, measured), and the fitted model is the same."""
MIN_ROC_AUC = 0.55
"""The quality gate: a model that ranks late flights hardly better than a coin (0.5) is refused."""
RUN_LOG = "run_log.json"


class TrainingRefused(Exception):
    """The data or the model is not good enough to ship; the message says why, in one line."""


@dataclass
class Prepared:
    """What the data steps hand to fitting: model inputs, labels and the counts of the run log."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_val: pd.DataFrame
    y_val: np.ndarray
    log: dict[str, Any]
    unlabelled: dict[str, int]


def prepare(folder: Path, seed: int = RANDOM_STATE) -> Prepared:
    """Run the data steps on the files of ``folder``; count every row that is left out."""
    flights, weather = read_table(folder, "flights"), read_table(folder, "weather")
    airports, airlines = read_table(folder, "airports"), read_table(folder, "airlines")
    valid, rejected = steps.validate(flights, airports)
    labelled, dropped = steps.clean(valid)
    joined = steps.join_weather(labelled, steps.validate_weather(weather))
    train, validation = steps.split(joined)
    removed = {str(k): int(v) for k, v in rejected["reason"].value_counts().sort_index().items()}
    removed.update({k: v for k, v in dropped.items() if v})
    log: dict[str, Any] = {
        "data_id": data_id(folder),
        "seed": seed,
        "rows_read": len(flights),
        "removed": removed,
        "kept_with_missing_weather": int(joined[list(steps.WEATHER_FIELDS)].isna().all(axis=1).sum()),
    }
    unseen = {column: sorted(set(valid[column].astype(str)) - set(table[key].dropna().astype(str)))
              for column, table, key in (("carrier", airlines, "carrier"), ("dest", airports, "faa"))
              if key in table}
    if any(unseen.values()):  # kept and trained on: the model handles unseen categories
        log["unseen_values"] = {column: codes for column, codes in unseen.items() if codes}
    outside = len(joined) - len(train) - len(validation)
    if outside:  # only in a folder with the held-out months (datasets/flights), never an export
        log["outside_periods"] = outside
    log.update(train_rows=len(train), validation_rows=len(validation))
    unlabelled_train, unlabelled_val = steps.split(valid.drop(labelled.index))
    for name, rows in (("train", train), ("validation", validation)):
        y = steps.label(rows)
        if y.nunique() < 2:
            raise TrainingRefused(f"the {name} months have {len(rows)} labelled flights, not both late and "
                                  "on-time ones: check the data folder's months and its arr_delay column")
    return Prepared(
        model_input(train), steps.label(train).to_numpy(dtype=bool),
        model_input(validation), steps.label(validation).to_numpy(dtype=bool),
        log, {"train": len(unlabelled_train), "validation": len(unlabelled_val)},
    )


def model_version(inputs: pd.DataFrame, y: np.ndarray, params: dict[str, Any]) -> str:
    """A version that changes when the training data, the code or the parameters change."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(inputs, index=False).to_numpy().tobytes())
    digest.update(np.asarray(y, dtype=np.uint8).tobytes())
    here = Path(__file__).resolve().parent
    for name in CODE_FILES:
        digest.update((here / name).read_bytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    digest.update(sklearn.__version__.encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def fit(data: Prepared, data_dir: Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit the reference on the train months; return the bundle that predict and serve load."""
    params = {**DEFAULT_PARAMS, "random_state": data.log["seed"], **(params or {})}
    x_train, y_train, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    with threadpool_limits(limits=FIT_THREADS):  # OpenMP and BLAS
        started = time.perf_counter()
        pipeline = build_pipeline(params).fit(x_train, y_train)
        fit_seconds = time.perf_counter() - started
        proba_val = pipeline.predict_proba(x_val)[:, 1]
        threshold = choose_threshold(y_val, proba_val)
        metrics = {"reference": evaluate(y_val, proba_val, threshold)}
        logistic = build_logistic_baseline().fit(x_train, y_train)
        proba_lr = logistic.predict_proba(x_val)[:, 1]
        metrics["logistic_baseline"] = evaluate(y_val, proba_lr, choose_threshold(y_val, proba_lr))
    majority = build_majority_baseline().fit(x_train, y_train)
    # The majority baseline predicts its class: threshold 0.5 on its 0/1 probability.
    metrics["majority_baseline"] = evaluate(y_val, majority.predict_proba(x_val)[:, 1], 0.5)
    metrics["always_late"] = evaluate(y_val, np.ones(len(y_val)), 0.5)
    return {
        "pipeline": pipeline,
        "threshold": threshold,
        "model_version": model_version(x_train, y_train, params),
        "params": params,
        "input_fields": list(INPUT_FIELDS),
        "features": list(FEATURES),
        "label": f"late = arr_delay >= {steps.LATE_MINUTES} minutes; flights with no arr_delay are unlabelled",
        "periods": {"train": list(steps.TRAIN_MONTHS), "validation": list(steps.VALIDATION_MONTHS)},
        "train_rows": int(len(y_train)),
        "training_data_id": dataset_id(data_dir),
        "data_id": data.log["data_id"],
        "unlabelled_left_out": data.unlabelled,
        "validation_metrics": metrics["reference"],
        "baseline_metrics": {k: v for k, v in metrics.items() if k != "reference"},
        "fit_seconds": round(fit_seconds, 3),
        "sklearn_version": sklearn.__version__,
    }


def quality_gate(bundle: dict[str, Any]) -> None:
    """Refuse a model whose validation ROC AUC is below ``MIN_ROC_AUC`` (or not a number)."""
    auc = bundle["validation_metrics"]["roc_auc"]
    if not auc >= MIN_ROC_AUC:
        raise TrainingRefused(f"quality gate: validation ROC AUC {auc:.3f} is below the bar {MIN_ROC_AUC}: the model "
                              "ranks late flights no better than a coin, so no model file was written "
                              "(check the labels and the features)")


def train(data_dir: Path | str | None = None, params: dict[str, Any] | None = None,
          seed: int = RANDOM_STATE) -> dict[str, Any]:
    """The bundle of one training run on ``data_dir`` (no gate, no files written)."""
    folder = resolve_data_dir(data_dir)
    return fit(prepare(folder, seed), folder, params)


def run_log(data: Prepared, bundle: dict[str, Any], model_sha256: str, run_id: str) -> dict[str, Any]:
    """The run log (see the lab README): counts of every step, metrics, and what was written."""
    metrics = bundle["validation_metrics"]
    return {
        **data.log,
        "metrics": {k: round(float(metrics[k]), 6) for k in ("roc_auc", "pr_auc", "f1", "threshold")},
        "baseline_metrics": {"roc_auc": round(float(bundle["baseline_metrics"]["logistic_baseline"]["roc_auc"]), 6)},
        "model_version": bundle["model_version"],
        "model_sha256": model_sha256,
        "mlflow_run_id": run_id,
    }


def save(bundle: dict[str, Any], data: Prepared, out: Path, state: Path) -> dict[str, Any]:
    """Write the model, log the run to MLflow, then write the run log; return the run log.

    The model is written to a scratch file first and moved into place only once MLflow has it,
    so a failed run leaves no model file behind.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent))
    try:
        model_file = scratch / "model.joblib"
        joblib.dump(bundle, model_file, compress=3)
        sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
        metrics = {k: float(bundle["validation_metrics"][k]) for k in ("roc_auc", "pr_auc", "f1")}
        run_id = log_run(state, model_file, {**bundle["params"], "seed": data.log["seed"],
                                             "data_id": data.log["data_id"]}, metrics)
        os.replace(model_file, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log = run_log(data, bundle, sha, run_id)
    (state / RUN_LOG).write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flightdelay.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="flight data folder (default: $SHIPML_DATA or datasets/flights)")
    parser.add_argument("--out", type=Path, default=Path("model.joblib"),
                        help="where to save the model bundle (default: model.joblib)")
    parser.add_argument("--state", type=Path, default=None,
                        help="folder for run_log.json and the MLflow store (default: 'state' next to --out)")
    parser.add_argument("--seed", type=int, default=RANDOM_STATE, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    state = args.state if args.state is not None else args.out.parent / "state"
    started = time.perf_counter()
    try:
        folder = resolve_data_dir(args.data)
        data = prepare(folder, args.seed)
        bundle = fit(data, folder)
        quality_gate(bundle)
        log = save(bundle, data, args.out, state)
    except (steps.SchemaError, DataFileError, TrainingRefused) as err:
        print(f"flightdelay.train: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    metrics = {"reference": bundle["validation_metrics"], **bundle["baseline_metrics"]}
    for name, values in metrics.items():
        line = {"model": name, "split": "validation",
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}}
        print(json.dumps(line))
    summary = {
        "model_version": bundle["model_version"], "out": str(args.out), "state": str(state),
        "rows_read": log["rows_read"], "removed": log["removed"],
        "train_rows": bundle["train_rows"], "unlabelled_left_out": bundle["unlabelled_left_out"],
        "threshold": round(bundle["threshold"], 4), "fit_seconds": bundle["fit_seconds"],
        "mlflow_run_id": log["mlflow_run_id"], "total_seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
