"""The pipeline lab's check of experiment tracking: the team's MLflow store, read with MLflow's own
client after a ``train`` run on data of the harness's choosing.

The store is a SQLite file in the team's state folder (``{state}/mlflow.db``) with artifacts in
``{state}/mlartifacts``. The check copies the state folder out (the team's files are never opened
in place) and reads the copy; artifact locations are mapped into the copy by their path below
``mlartifacts/``, since the team's commands may see the state folder under another path.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from autograder.checkapi import CheckContext, CheckFailed, Params, Verdict, partial, passed
from autograder.checks import pipeline_data as pdata
from autograder.checks.pipeline import Share, sample, train

STORE = "mlflow.db"
ARTIFACTS = "mlartifacts"
EXPERIMENT = "flightdelay"
MODEL = "flightdelay"
ALIAS = "candidate"
REQUIRED_PARAMS = ("seed", "data_id")
REQUIRED_METRICS = ("roc_auc",)


@dataclass(frozen=True)
class Version:
    version: str
    run_id: str
    data_id: str
    hashes: frozenset[str]  # SHA-256 of each file of its artifact


@dataclass(frozen=True)
class Store:
    incomplete: list[str]  # one line per run that lacks something
    runs: int
    versions: dict[str, Version]
    candidate: str | None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _local(uri: str, root: Path) -> Path | None:
    """The folder or file of an artifact URI, in the copy of the state folder."""
    path = unquote(urlparse(uri).path) if "://" in uri or uri.startswith("file:") else uri
    marker = f"/{ARTIFACTS}/"
    if marker not in path:
        return None
    return root / ARTIFACTS / path.split(marker, 1)[1].strip("/")


def _files(where: Path | None) -> list[Path]:
    if where is None or not where.exists():
        return []
    return [where] if where.is_file() else sorted(p for p in where.rglob("*") if p.is_file())


def read_store(ctx: CheckContext[Any]) -> Store:
    """The team's store as MLflow reads it (from a copy of the state folder)."""
    names = ctx.list_state()
    if STORE not in names:
        raise CheckFailed(f"there is no {{state}}/{STORE}; log every train run to MLflow with the tracking URI "
                          f"sqlite:///{{state}}/{STORE} (see the lab README)")
    with tempfile.TemporaryDirectory(prefix="shipml-mlflow-") as tmp:
        root = Path(tmp)
        for name in names:
            content = ctx.read_state(name)
            if content is not None:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(content)
        try:
            return _read(root)
        except CheckFailed:
            raise
        except Exception as exc:  # MLflow's own errors: a store it cannot read
            raise CheckFailed(f"MLflow cannot read {{state}}/{STORE}: {type(exc).__name__}: {str(exc)[:300]}; "
                              "write it with MLflow's client (MlflowClient), not by hand") from None


def _read(root: Path) -> Store:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = f"sqlite:///{root / STORE}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise CheckFailed(f"the MLflow store has no experiment '{EXPERIMENT}'; log the train runs there")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    incomplete = []
    for run in runs:
        lacks = [f"param {p}" for p in REQUIRED_PARAMS if p not in run.data.params]
        lacks += [f"metric {m}" for m in REQUIRED_METRICS if m not in run.data.metrics]
        if not _files(_local(run.info.artifact_uri + "/model", root)):
            lacks.append("the model file as artifact model/")
        if run.info.status != "FINISHED":
            lacks.append(f"status FINISHED (it is {run.info.status})")
        if lacks:
            incomplete.append(f"run {run.info.run_id[:8]} lacks {', '.join(lacks)}")
    versions: dict[str, Version] = {}
    try:
        found = client.search_model_versions(f"name='{MODEL}'")
    except MlflowException:
        found = []
    for v in found:
        source = v.source
        if source.startswith("runs:/"):
            run_id, _, rest = source[len("runs:/"):].partition("/")
            source = client.get_run(run_id).info.artifact_uri + "/" + rest
        data_id = client.get_run(v.run_id).data.params.get("data_id", "") if v.run_id else ""
        hashes = frozenset(_sha(p) for p in _files(_local(source, root)))
        versions[str(v.version)] = Version(str(v.version), v.run_id or "", data_id, hashes)
    try:
        candidate: str | None = str(client.get_model_version_by_alias(MODEL, ALIAS).version)
    except MlflowException:
        candidate = None
    return Store(incomplete, len(runs), versions, candidate)


class ExperimentsTracked(Params):
    share: Share = 0.3


def check_experiments_tracked(ctx: CheckContext[ExperimentsTracked]) -> Verdict:
    """Every train run is in the team's MLflow store with its params, metrics and model; the alias candidate names the model train wrote; a run on other data is a new version."""
    ctx.setup("train")
    before = read_store(ctx)
    src, flights, _ = sample(ctx, ctx.params.share)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        result, log = train(ctx, pdata.write_folder(Path(tmp) / "data", src, flights), "a fresh subsample of the public data")
    assert log is not None
    model_sha = hashlib.sha256(result.files["model"]).hexdigest()
    after = read_store(ctx)
    problems = []
    if after.incomplete or after.runs <= before.runs:
        shown = after.incomplete[:3] or [f"the store had {before.runs} runs before a successful train run, and {after.runs} after it"]
        problems.append("not every train run is complete: " + "; ".join(shown)
                        + f". Each run needs params {', '.join(REQUIRED_PARAMS)}, metric roc_auc, the model file as artifact model/, and must end FINISHED")
    current = after.versions.get(after.candidate or "")
    if current is None:
        problems.append(f"the registered model '{MODEL}' has no version with alias '{ALIAS}'; register each trained model and set the alias")
    elif model_sha not in current.hashes:
        problems.append(f"alias '{ALIAS}' names version {current.version}, whose artifact is not the model file train just wrote "
                        f"(SHA-256 {model_sha[:12]}...): register the file train wrote at {{model}}, in the same run")
    new = {k: v for k, v in after.versions.items() if k not in before.versions}
    changed = [k for k, v in before.versions.items() if k in after.versions and after.versions[k].hashes != v.hashes]
    old_ids = {v.data_id for v in before.versions.values()}
    if not new or changed or not any(v.data_id and v.data_id not in old_ids for v in new.values()):
        why = (f"version {changed[0]}'s artifact was overwritten" if changed else
               "no new version was registered" if not new else "the new version's run has no new data_id param")
        problems.append(f"train on other data must register a new version of '{MODEL}' (with that data's id), keeping the old ones: {why}")
    figures = f"{after.runs} runs, {len(after.versions)} versions of '{MODEL}'"
    if not problems:
        return passed(f"MLflow store: {figures}; every run complete; '{ALIAS}' is version {after.candidate}, the file train wrote; "
                      "training on other data made a new version.")
    return partial(1 - len(problems) / 3, f"MLflow store ({figures}): " + "; ".join(problems) + ".", problems=len(problems))
