"""Checks of the serving lab's *model*, through the live API: it is the model ``train`` made, and
it predicts better than a guess on the public months and on the held-out ones.

A team cannot fake these with a constant, a table of outcomes or a model committed to its
repository: the provenance check trains the team's system twice, on training sets the harness
chooses, and the answers must come from those trainings; the quality and accuracy checks score
every answer, a failed request counting as a wrong one.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.metrics import average_precision_score, f1_score

from autograder import data
from autograder.checkapi import CheckContext, CheckFailed, Params, Verdict, partial, passed
from autograder.checks import flights_api, loadgen
from autograder.checks.flights_api import prediction_problem, short
from autograder.checks.serving import model_info

Lift = Annotated[float, Field(ge=0, le=1)]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Provenance(Params):
    rows: Annotated[int, Field(ge=10, le=5000)] = 200
    train_share: Annotated[float, Field(gt=0, lt=1)] = 0.5
    min_changed: Annotated[float, Field(gt=0, le=1)] = 0.5


def check_model_provenance(ctx: CheckContext[Provenance]) -> Verdict:
    """The served model is the file ``train`` wrote in this run from the harness's data, and retraining on other data changes its answers."""
    p = ctx.params
    trained = ctx.setup("train")
    if "model" not in trained.files:
        raise CheckFailed("'train' wrote no model file at {model}; train must save the model to the path it is given as {model} (see the lab README)")
    service = ctx.service()
    with service.client() as client:
        info = model_info(client)
    expected = _sha256(trained.files["model"])
    if info.model_sha256 != expected:
        raise CheckFailed(
            f"/version says the service loaded a model file with SHA-256 {info.model_sha256[:12]}..., but the file 'train' wrote at "
            f"{{model}} in this run hashes to {expected[:12]}...: serve the model train wrote (load {{model}} in the serve command), "
            "not a file of the repository."
        )
    if info.training_data_id != ctx.data.team_data_id:
        raise CheckFailed(
            f"/version reports training_data_id {info.training_data_id!r}, but 'train' was given data with id "
            f"{ctx.data.team_data_id!r} ({{data}}/EXPORT.json): keep autograder.data.dataset_id(DATA) with the model and report it."
        )
    frame = flights_api.labelled_flights("validation", p.rows, seed=11, data_dir=ctx.data.folder("validation"))
    requests = flights_api.to_requests(frame)
    first = _probabilities(loadgen.send(service.url + "/predict", requests, concurrency=4, keep_bodies=True), len(requests))
    other_id = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="shipml-train-") as tmp:
        folder = data.write_public(Path(tmp) / "data", ctx.data.folder("validation"), dataset_id=other_id,
                                   train_share=p.train_share, seed=secrets.randbelow(2**31))
        retrained = ctx.run("train", inputs={"data": folder}, outputs=["model"])
    if not retrained.ok:
        raise CheckFailed(f"'train' failed on a second training set (a {p.train_share:.0%} share of the train months): {retrained.explain()}. Last lines:\n{retrained.tail()}")
    if "model" not in retrained.files:
        raise CheckFailed("on a second training set, 'train' wrote no model file at {model}; save the model to the path it is given")
    with ctx.fresh_service(files={"model": retrained.files["model"]}) as fresh:
        with fresh.client() as client:
            other = model_info(client)
        second = _probabilities(loadgen.send(fresh.url + "/predict", requests, concurrency=4, keep_bodies=True), len(requests))
    if other.model_sha256 != _sha256(retrained.files["model"]) or other.training_data_id != other_id:
        raise CheckFailed(
            "started on the model trained on the second training set, /version still names another model file or training "
            f"data (model_sha256 {other.model_sha256[:12]}..., training_data_id {other.training_data_id!r}): report the model "
            "the service loaded from {model} and the data id saved with it."
        )
    changed = float(np.mean(np.abs(first - second) > 1e-9))
    figures = f"{changed:.0%} of {len(requests)} answers changed after training on a {p.train_share:.0%} share of the train months"
    if changed < p.min_changed:
        raise CheckFailed(
            f"{figures}: the answers do not come from what 'train' learned. A table of outcomes or a model committed to the "
            "repository answers the same whatever the training data; train the model from {data} in the train command.",
            changed=changed,
        )
    return passed(f"The service serves the model train wrote (SHA-256 {expected[:12]}..., data {ctx.data.team_data_id}); {figures}.", changed=changed)


def _probabilities(result: loadgen.LoadResult, count: int) -> np.ndarray:
    """The answered probabilities, in request order; a missing or broken answer fails the check."""
    out = np.full(count, np.nan)
    for reply in result.replies:
        if 200 <= reply.status < 300 and not prediction_problem(reply.body, need_version=False):
            out[reply.index] = float(reply.body["delay_probability"])
    missing = int(np.isnan(out).sum())
    if missing:
        first = next((r for r in result.replies if np.isnan(out[r.index])), None)
        seen = f"; the first answered {first.status or first.error}: {short(first.body, 100)}" if first else ""
        raise CheckFailed(f"{missing} of {count} valid flights got no valid prediction{seen}; every valid flight must get one (see api_contract)")
    return out


@dataclass
class Scored:
    """How a service's answers on labelled flights compare with the truth."""

    f1: float
    pr_auc: float
    base: float
    always_late_f1: float
    failed: list[str]
    fraction: float

    @property
    def lift(self) -> float:
        return self.pr_auc - self.base


def score(frame: pd.DataFrame, result: loadgen.LoadResult, zero_lift: float, full_lift: float,
          requests: list[dict[str, Any]] | None = None) -> Scored:
    """Score answers against ``frame['late']``. A failed or broken answer counts as a wrong one
    (the opposite label, the worst probability) and is named; points scale linearly with the
    PR AUC's lift over the late share, from ``zero_lift`` to ``full_lift``, and halve when F1 is
    below that of answering "late" for every flight."""
    y = frame["late"].astype(bool).to_numpy()
    proba, label = 1.0 - y.astype(float), ~y
    failed: list[str] = []
    answered = {reply.index: reply for reply in result.replies}
    for i in range(len(y)):
        reply = answered.get(i)
        problem = "no answer in time" if reply is None else (
            f"answered {reply.status or reply.error}: {short(reply.body, 80)}" if not 200 <= reply.status < 300
            else prediction_problem(reply.body, need_version=False))
        if problem:
            failed.append(f"flight {i + 1}: {problem}" + (f". Request: {short(requests[i])}" if requests else ""))
            continue
        proba[i], label[i] = float(reply.body["delay_probability"]), bool(reply.body["delayed"])
    base = float(y.mean())
    always_late = 2 * base / (1 + base)
    f1, pr_auc = float(f1_score(y, label, zero_division=0)), float(average_precision_score(y, proba))
    ramp = float(np.clip((pr_auc - base - zero_lift) / (full_lift - zero_lift), 0, 1))
    return Scored(f1, pr_auc, base, always_late, failed, ramp * (1.0 if f1 >= always_late else 0.5))


def _verdict(scored: Scored, where: str, zero_lift: float, full_lift: float, log: str = "", **extra: Any) -> Verdict:
    s = scored
    figures = (f"{where}: F1 {s.f1:.3f} (answering 'late' for every flight: {s.always_late_f1:.3f}), PR AUC {s.pr_auc:.3f} "
               f"(the late share, what a constant or random answer gets: {s.base:.3f})")
    details = {"f1": s.f1, "pr_auc": s.pr_auc, "baseline_pr_auc": s.base, "failed_requests": len(s.failed), **extra}
    notes = []
    if s.failed:
        notes.append(f"{len(s.failed)} requests failed and count as wrong answers; the first: {s.failed[0]}\nLast lines of the service's log:\n{log}")
    if s.fraction >= 1:
        return passed(". ".join([figures, *notes]) + ".", **details)
    if s.lift <= 0.005:
        notes.append("the answers rank flights no better than a constant or random answer: serve a trained model")
    notes.append(f"Full points need PR AUC >= late share + {full_lift:g} (none below + {zero_lift:g}) and F1 >= {s.always_late_f1:.3f}; "
                 "train on the train months, check the model on later months than it was trained on")
    return partial(s.fraction, ". ".join([figures, *notes]) + ".", **details)


class Quality(Params):
    rows: Annotated[int, Field(ge=100, le=20_000)] = 1000
    zero_lift: Lift
    full_lift: Lift
    budget: Annotated[float, Field(gt=0, le=3600)] = 60


def check_quality_on_validation(ctx: CheckContext[Quality]) -> Verdict:
    """Through the live API, the model ranks the public validation months' flights well above a constant or random answer."""
    p = ctx.params
    frame = flights_api.labelled_flights("validation", p.rows, seed=23, data_dir=ctx.data.folder("validation"))
    requests = flights_api.to_requests(frame)
    service = ctx.service()
    result = loadgen.send(service.url + "/predict", requests, concurrency=8, keep_bodies=True, timeout=10, budget=p.budget)
    scored = score(frame, result, p.zero_lift, p.full_lift, requests)
    return _verdict(scored, f"on {len(frame)} validation flights (Jul-Aug)", p.zero_lift, p.full_lift, log=service.log_tail(8) if scored.failed else "")


class Accuracy(Params):
    rows: Annotated[int, Field(ge=100, le=20_000)] = 2000
    zero_lift: Lift
    full_lift: Lift
    plausible_lift: Lift
    budget: Annotated[float, Field(gt=0, le=3600)] = 120


def check_accuracy_in_production(ctx: CheckContext[Accuracy]) -> Verdict:
    """Through the live API, the model ranks the held-out months' flights well above the baseline; an implausibly good score is flagged for review."""
    p = ctx.params
    frame = flights_api.labelled_flights("heldout", p.rows, data_dir=ctx.data.folder("heldout"))
    requests = flights_api.to_requests(frame)
    service = ctx.service()
    result = loadgen.send(service.url + "/predict", requests, concurrency=8, keep_bodies=True, timeout=10, budget=p.budget)
    scored = score(frame, result, p.zero_lift, p.full_lift, requests)
    extra: dict[str, Any] = {}
    if scored.lift > p.plausible_lift:
        # Beyond what honest models reach on these features: the grade stands, a person looks.
        extra["needs_review"] = (
            f"held-out PR AUC {scored.pr_auc:.3f} is {scored.lift:.3f} above the late share, beyond the {p.plausible_lift:g} "
            "that honest models reach on these features: look for answers that did not come from the team's model"
        )
    return _verdict(scored, f"on {len(frame)} held-out flights", p.zero_lift, p.full_lift, log=service.log_tail(8) if scored.failed else "", **extra)
