"""Experiment tracking: every training run goes into an MLflow store in the state folder.

The store is a local SQLite file (``{state}/mlflow.db``, no server) with artifacts under
``{state}/mlartifacts``. Each run of experiment ``flightdelay`` has the model's parameters,
the seed and the data's id as params, the validation metrics, and the model file as artifact
``model/model.joblib``; the file is registered as a new version of model ``flightdelay`` with
the alias ``candidate``, so a reviewer can tell which data and code made the model a service
loads, and compare runs.

MLflow is imported here, when a run is logged, not when the package is: it takes a second or
two to import, which prediction and serving need not pay.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

EXPERIMENT = "flightdelay"
MODEL_NAME = "flightdelay"
ALIAS = "candidate"


def tracking_uri(state: Path) -> str:
    """The SQLite store's URI for the state folder ``state``."""
    return f"sqlite:///{state.resolve() / 'mlflow.db'}"


def log_run(state: Path, model_file: Path, params: dict[str, Any], metrics: dict[str, float]) -> str:
    """Log one finished training run and register its model; return the MLflow run id."""
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # their set-up chatter is not the run's output
        logging.getLogger(name).setLevel(logging.WARNING)

    uri = tracking_uri(state)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment is not None else client.create_experiment(
        EXPERIMENT, artifact_location=(state.resolve() / "mlartifacts").as_uri()))
    run = client.create_run(experiment_id, tags={"data_id": str(params.get("data_id", ""))})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())],
                     metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())])
    client.log_artifact(run_id, str(model_file), artifact_path="model")
    try:
        client.create_registered_model(MODEL_NAME)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(MODEL_NAME, source=f"{run.info.artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(MODEL_NAME, ALIAS, version.version)
    client.set_terminated(run_id)
    return run_id
