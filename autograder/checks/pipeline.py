"""Checks of the pipeline lab ("notebook to pipeline"): the team's ``train`` command run on data
the harness chose and altered, its run log compared with the harness's own counts, and its
``predict`` command on the trained models.

Every ``train`` here gets a fresh subsample of the public months (a new seed each grading), so
that a run log copied from the public data, or a model committed to the repository, does not
match. The data builders are in :mod:`autograder.checks.pipeline_data`; the checks of the team's
tests (wheat and chaffs) and of its MLflow store are in :mod:`autograder.checks.pipeline_tests`.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    CommandResult,
    Params,
    Verdict,
    partial,
    passed,
)
from autograder.checks import flights_api
from autograder.checks import pipeline_data as pdata
from autograder.errors import explain_validation

Share = Annotated[float, Field(gt=0, le=1)]
Count = Annotated[int, Field(ge=1, le=10_000)]
RUN_LOG = "run_log.json"
REMOVED_REASON = re.compile(r"^(invalid:[a-z_]+|cancelled|diverted|missing_weather)$")


class RunLog(BaseModel):
    """The run log ``train`` writes to ``{state}/run_log.json`` (the lab README's format)."""

    model_config = ConfigDict(extra="allow")

    data_id: str
    seed: int
    rows_read: int
    removed: dict[str, int]
    kept_with_missing_weather: int = 0
    unseen_values: dict[str, list[str]] = Field(default_factory=dict)
    train_rows: int
    validation_rows: int
    metrics: dict[str, float]

    @field_validator("removed")
    @classmethod
    def _reasons(cls, removed: dict[str, int]) -> dict[str, int]:
        odd = [key for key in removed if not REMOVED_REASON.match(key)]
        if odd:
            raise ValueError(f"has the key {odd[0]!r}; the reasons are invalid:<column>, cancelled, diverted and missing_weather")
        return removed


def run_log(ctx: CheckContext[Any], after: str) -> RunLog:
    """The run log the last ``train`` wrote, or CheckFailed naming what is wrong with it."""
    content = ctx.read_state(RUN_LOG)
    if content is None:
        raise CheckFailed(f"after {after}, there is no {{state}}/{RUN_LOG}; train must write its run log there (see the lab README)")
    try:
        return RunLog.model_validate_json(content)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise CheckFailed(f"after {after}, {{state}}/{RUN_LOG} is not valid JSON; write it with json.dump") from None
        problem = explain_validation(exc, where="field '{}'", top="the run log")
        raise CheckFailed(f"after {after}, {{state}}/{RUN_LOG}: {problem} (see the run log's format in the lab README)") from None


def train(ctx: CheckContext[Any], folder: Path, what: str, *, need_log: bool = True) -> tuple[CommandResult, RunLog | None]:
    """Run ``train`` on ``folder``; CheckFailed if it fails or writes no model (with ``need_log``,
    also without a readable run log)."""
    result = ctx.run("train", inputs={"data": folder}, outputs=["model"])
    if not result.ok:
        raise CheckFailed(f"'train' failed on {what}: {result.explain()}. Last lines:\n{result.tail()}")
    if "model" not in result.files:
        raise CheckFailed(f"on {what}, 'train' succeeded but wrote no model file at {{model}}; save the model to the path it is given")
    return result, run_log(ctx, f"'train' on {what}") if need_log else None


def predict(ctx: CheckContext[Any], model: bytes, folder: Path, rows: pd.DataFrame, what: str) -> np.ndarray:
    """The team's ``predict`` on ``rows`` (the flights table's layout): one probability per row."""
    result = ctx.run("predict", inputs={"model": model, "data": folder, "input": pdata.to_csv(rows)}, outputs=["output"])
    proba = flights_api.offline_predictions(result, len(rows), f"'predict' with {what}")
    bad = ~np.isfinite(proba) | (proba < 0) | (proba > 1)
    if bad.any():
        first = int(np.argmax(bad))
        raise CheckFailed(f"'predict' with {what} gave {int(bad.sum())} of {len(rows)} rows no probability in [0, 1] "
                          f"(row {first + 1}: {proba[first]!r}); answer every valid flight, with NaN weather where none is known")
    return proba


def sample(ctx: CheckContext[Any], share: float) -> tuple[pdata.Source, pd.DataFrame, np.random.Generator]:
    """The public months, a fresh subsample of them, and a generator for the alterations."""
    seed = secrets.randbelow(2**31)
    src = pdata.source(ctx.data.folder("public"))
    return src, pdata.subsample(src, share, seed), np.random.default_rng(seed)


def count_problems(log: RunLog, expected: pdata.Expected, *, invalid: bool = True) -> dict[str, str]:
    """What the run log gets wrong against the harness's counts, by part (empty: all right)."""
    e, problems = expected, {}
    if log.rows_read != e.rows_read:
        problems["rows_read"] = f"rows_read is {log.rows_read}, but flights.csv.gz has {e.rows_read} rows: count every row you read"
    for reason in ("cancelled", "diverted"):
        got, want = log.removed.get(reason, 0), e.removed.get(reason, 0)
        if got != want:
            what = "no dep_time" if reason == "cancelled" else "a dep_time but no arr_delay"
            problems[reason] = f"removed['{reason}'] is {got}, but {want} valid rows have {what}: remove exactly those, and count them"
    dropped, kept = log.removed.get("missing_weather", 0), log.kept_with_missing_weather
    if sorted((dropped, kept)) != [0, e.missing_weather]:
        problems["missing_weather"] = (f"{e.missing_weather} labelled flights have no weather row, but the run log says "
                                       f"kept_with_missing_weather {kept} and removed['missing_weather'] {dropped}: keep them "
                                       "(NaN weather) or remove them, and count them in one of the two")
    if invalid:
        for reason in sorted(set(e.removed) | set(log.removed)):
            if reason.startswith("invalid:") and log.removed.get(reason, 0) != e.removed.get(reason, 0):
                problems[reason] = (f"removed['{reason}'] is {log.removed.get(reason, 0)}, the harness counts "
                                    f"{e.removed.get(reason, 0)} such rows (see the data contract in the lab README)")
    total = log.rows_read - sum(log.removed.values())
    if total != log.train_rows + log.validation_rows:
        problems["invariant"] = (f"rows_read - sum(removed) is {total}, but train_rows + validation_rows is "
                                 f"{log.train_rows + log.validation_rows}: {abs(total - log.train_rows - log.validation_rows)} "
                                 "rows are unaccounted for; every row you drop must be counted under its reason")
    gone = e.missing_by_split if dropped else {"train": 0, "validation": 0}
    want = (e.train_rows - gone["train"], e.validation_rows - gone["validation"])
    if (log.train_rows, log.validation_rows) != want:
        problems["split"] = (f"train_rows {log.train_rows} and validation_rows {log.validation_rows}, but the harness counts "
                             f"{want[0]} labelled rows in months 1-6 and {want[1]} in months 7-8 (are rows the data contract "
                             "rejects, such as an origin outside New York, still in? Or are valid rows, such as a dest that airports.csv.gz "
                             "does not list, removed?)")
    return problems


# -- the checks ------------------------------------------------------------------------------


class Reproducible(Params):
    share: Share = 0.3
    rows: Count = 300


def check_training_is_reproducible(ctx: CheckContext[Reproducible]) -> Verdict:
    """Two ``train`` runs on the same data give identical predictions on fixed rows and the same metrics in the run log; a run on other data (the setup's) gives other predictions.

    The last part is what makes the first two mean something: a model that ignores the data it
    is given (one committed to the repository, a lookup table) is reproducible only trivially,
    and scores nothing."""
    p = ctx.params
    setup = ctx.setup("train").files.get("model")
    if setup is None:
        raise CheckFailed("the setup 'train' on the public data wrote no model file at {model}; save the model to the path it is given")
    src, flights, _ = sample(ctx, p.share)
    validation = flights[flights["month"].astype(int).isin(pdata.PERIODS["validation"])]
    rows, _ = pdata.predict_rows(validation, src, p.rows, seed=3)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        folder = pdata.write_folder(Path(tmp) / "data", src, flights)
        first, log1 = train(ctx, folder, "a subsample of the public data")
        second, log2 = train(ctx, folder, "the same data a second time")
        a = predict(ctx, first.files["model"], folder, rows, "the first model")
        b = predict(ctx, second.files["model"], folder, rows, "the second model")
        other = predict(ctx, setup, folder, rows, "the setup's model (trained on all the public data)")
    assert log1 is not None and log2 is not None
    if np.array_equal(a, other):
        raise CheckFailed(f"the model trained on a {p.share:g} subsample and the setup's model, trained on all the public data, give "
                          f"identical probabilities on {len(rows)} flights: train must fit its model on the data in {{data}}, not "
                          "ship one made elsewhere (a model that ignores its data is reproducible only trivially)")
    notes, fraction = [], 0.0
    differ = int((a != b).sum())
    if differ:
        notes.append(f"the two models give different probabilities on {differ} of {len(rows)} flights "
                     f"(largest gap {float(np.max(np.abs(a - b))):.3g}): fix every seed (the model's random_state, any sampling) "
                     "and keep row order deterministic")
    else:
        fraction += 0.5
    if log1.metrics != log2.metrics:
        changed = sorted(k for k in set(log1.metrics) | set(log2.metrics) if log1.metrics.get(k) != log2.metrics.get(k))
        notes.append(f"the run logs' metrics differ ({', '.join(f'{k}: {log1.metrics.get(k)} then {log2.metrics.get(k)}' for k in changed[:3])}); "
                     "the same data and seed must give the same metrics")
    else:
        fraction += 0.5
    if fraction == 1:
        return passed(f"Trained twice on the same {len(flights)} flights: identical probabilities on {len(rows)} flights and identical "
                      "metrics; the model trained on all the public data gives other probabilities.")
    return partial(fraction, "Trained twice on the same data: " + "; ".join(notes) + ".", differing_rows=differ)


NeededColumn = Literal["year", "month", "day", "dep_time", "sched_dep_time", "arr_delay", "carrier", "origin", "dest", "distance"]
"""The flights columns every pipeline of the lab needs (the README's data contract)."""


class SchemaChange(Params):
    share: Share = 0.3
    drop: NeededColumn = "carrier"
    new_carrier_rows: Count = 40


def names(column: str, text: str) -> bool:
    """``text`` names ``column`` as a word (``dest``, not inside ``destination``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(column)}(?![A-Za-z0-9_])", text) is not None


def loud_failure(result: CommandResult, column: str) -> str:
    """"" when ``train`` failed loudly on a schema problem in ``column``, else what went wrong."""
    if result.timed_out:
        return f"{result.explain()}; fail at once with a message naming '{column}'"
    if result.ok:
        return "train succeeded (exit 0) instead of failing: check that every column you need is there, with its type, before training"
    if "model" in result.files:
        return "train exited non-zero but wrote a model file at {model}; validate the data before you write anything"
    if not names(column, result.tail(5)):
        return f"train failed, but its last lines do not name the column '{column}': say which column is wrong. They were:\n{result.tail(5)}"
    return ""


def check_schema_change_fails_loudly(ctx: CheckContext[SchemaChange]) -> Verdict:
    """A dropped, renamed or retyped column stops ``train`` with a message naming it and no model; a new carrier is failed on loudly or kept and listed in the run log."""
    p = ctx.params
    ctx.setup("train")  # a train that fails on everything is not loud about schemas, only broken
    src, flights, rng = sample(ctx, p.share)
    zz = pdata.new_carrier(flights, src, p.new_carrier_rows, rng)
    retyped = flights.assign(distance=flights["distance"] + " mi")
    variants: list[tuple[str, pd.DataFrame, str]] = [
        (f"column '{p.drop}' dropped", flights.drop(columns=[p.drop]), p.drop),
        ("column 'dest' renamed to 'destination'", flights.rename(columns={"dest": "destination"}), "dest"),
        ("'distance' as text with a unit ('1400 mi')", retyped, "distance"),
    ]
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        for i, (what, frame, column) in enumerate(variants):
            result = ctx.run("train", inputs={"data": pdata.write_folder(Path(tmp) / f"v{i}", src, frame)}, outputs=["model"])
            problem = loud_failure(result, column)
            if problem:
                problems.append(f"with {what}: {problem}")
        result = ctx.run("train", inputs={"data": pdata.write_folder(Path(tmp) / "zz", src, zz)}, outputs=["model"])
        what = f"carrier 'ZZ' (not in airlines.csv.gz) on {p.new_carrier_rows} rows"
        if result.ok:
            problem = _new_carrier_problem(ctx, result, pdata.expected_counts(zz, src))
        else:
            problem = loud_failure(result, "carrier")
            problem = problem and f"{problem} (or keep the rows and list ZZ in the run log's unseen_values)"
        if problem:
            problems.append(f"with {what}: {problem}")
    fraction = 1 - len(problems) / 4
    if not problems:
        return passed("A dropped, a renamed and a retyped column each stopped train with a message naming the column and no model; the new carrier ZZ was handled as documented.")
    return partial(fraction, f"{4 - len(problems)} of 4 schema changes handled. " + "; ".join(problems), failed=len(problems))


def _new_carrier_problem(ctx: CheckContext[Any], result: CommandResult, expected: pdata.Expected) -> str:
    if "model" not in result.files:
        return "train succeeded but wrote no model file at {model}"
    log = run_log(ctx, "'train' on data with a new carrier")
    if "ZZ" not in log.unseen_values.get("carrier", []):
        return f"train succeeded but the run log's unseen_values is {log.unseen_values}: list the new carrier as {{\"carrier\": [\"ZZ\"]}}"
    wrong = count_problems(log, expected)
    if wrong:
        return "train succeeded and listed ZZ, but the counts are off (were the ZZ rows silently dropped?): " + "; ".join(wrong.values())
    return ""


class NoSilentDrops(Params):
    share: Share = 0.3


def check_no_silent_drops(ctx: CheckContext[NoSilentDrops]) -> Verdict:
    """The run log's counts (rows read, cancelled, diverted, missing weather, rows per split) match the harness's own, and every removed row is counted."""
    src, flights, _ = sample(ctx, ctx.params.share)
    expected = pdata.expected_counts(flights, src)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        _, log = train(ctx, pdata.write_folder(Path(tmp) / "data", src, flights), "a fresh subsample of the public data")
    assert log is not None
    parts = ("rows_read", "cancelled", "diverted", "missing_weather", "invariant", "split")
    problems = count_problems(log, expected, invalid=False)
    wrong = [part for part in parts if part in problems]
    figures = (f"{expected.rows_read} rows read, {expected.removed.get('cancelled', 0)} cancelled, "
               f"{expected.removed.get('diverted', 0)} diverted, {expected.missing_weather} without weather")
    if not wrong:
        return passed(f"The run log's counts match the harness's ({figures}); every removed row is counted.")
    return partial(1 - len(wrong) / len(parts), f"On a fresh subsample ({figures}): " + "; ".join(problems[w] for w in wrong) + ".",
                   wrong=wrong)


class BadRows(Params):
    share: Share = 0.3
    distance: Count = 7
    sched_dep_time: Count = 6
    origin: Count = 5
    dest: Count = 3


_BAD_ROWS: dict[str, str] = {
    "distance": "a negative or zero distance",
    "sched_dep_time": "an impossible scheduled time (2575, or a minute of 61)",
    "origin": "an origin outside New York (BOS, PHL, ALB)",
    "dest": "a dest that is no three-character code ('X1', empty, 'LAXX')",
}

_VALID_ANYWAY: dict[str, str] = {
    "dest": "; a dest that airports.csv.gz does not list (SJU, STT, ...) is a real flight: keep it and list the code "
            "in the run log's unseen_values['dest']",
}


def check_bad_rows_rejected(ctx: CheckContext[BadRows]) -> Verdict:
    """Injected corrupt rows (negative distances, impossible times, origins outside New York, malformed destinations) are removed and counted exactly, by column, and training goes on."""
    p = ctx.params
    src, flights, rng = sample(ctx, p.share)
    counts = {"distance": p.distance, "sched_dep_time": p.sched_dep_time, "origin": p.origin, "dest": p.dest}
    altered = pdata.corrupt(flights, src, counts, rng)
    expected = pdata.expected_counts(altered, src)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        _, log = train(ctx, pdata.write_folder(Path(tmp) / "data", src, altered), "data with corrupt rows (it must remove them and go on)")
    assert log is not None
    problems = []
    for column, count in counts.items():
        key, want = f"invalid:{column}", expected.removed.get(f"invalid:{column}", 0)
        got = log.removed.get(key, 0)
        if got != want:
            natural = want - count
            fix = f"reject them in validate and count them as {key}" if got < want else \
                f"only those rows are invalid{_VALID_ANYWAY.get(column, '')}"
            problems.append(f"removed['{key}'] is {got}, expected {want} ({count} injected rows with {_BAD_ROWS[column]}"
                            + (f", {natural} in the data already" if natural else "") + f"): {fix}")
    if not problems:
        return passed(f"All injected corrupt rows were removed and counted ({', '.join(f'{k}: {v}' for k, v in counts.items())}).")
    return partial(1 - len(problems) / len(counts), "; ".join(problems) + ".")


class QualityGate(Params):
    share: Share = 0.3


def check_quality_gate(ctx: CheckContext[QualityGate]) -> Verdict:
    """With the labels shuffled, ``train`` refuses (non-zero exit, a message naming the metric) and writes no model; on the real data it writes one.

    Writing a model on the real data earns nothing by itself (any train does it, a constant one
    too); it only makes the refusal count: a gate that refuses everything is no gate."""
    setup = ctx.setup("train")
    if "model" not in setup.files:
        raise CheckFailed("the setup 'train' on the public data wrote no model file at {model}; a gate must let a good model through")
    src, flights, rng = sample(ctx, ctx.params.share)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        result = ctx.run("train", inputs={"data": pdata.write_folder(Path(tmp) / "data", src, pdata.shuffle_labels(flights, rng))},
                         outputs=["model"])
    what = "With the labels shuffled (no model can beat a coin)"
    if result.timed_out:
        raise CheckFailed(f"{what}, {result.explain()}; refuse at once with a message naming the metric.")
    if result.ok or "model" in result.files:
        done = "train succeeded and wrote a model" if result.ok else "train failed but wrote a model file at {model}"
        raise CheckFailed(f"{what}, {done}: check the validation ROC AUC against your bar before writing {{model}}, and exit non-zero.")
    if not re.search(r"auc|roc", result.tail(5), re.IGNORECASE):
        return partial(0.5, f"{what}, train failed, but its last lines do not name the metric (ROC AUC) and the bar. They were:\n{result.tail(5)}")
    return passed(f"{what}, train refused with: {result.tail(1)[:200]}; on the public data it wrote a model.")


class EndToEnd(Params):
    rows: Annotated[int, Field(ge=200, le=50_000)] = 4000
    zero_auc: Annotated[float, Field(ge=0.5, lt=1)] = 0.55
    full_auc: Annotated[float, Field(gt=0.5, le=1)] = 0.60


def check_pipeline_end_to_end(ctx: CheckContext[EndToEnd]) -> Verdict:
    """The model the setup ``train`` wrote, through ``predict``, answers every held-out flight and ranks them well above a constant."""
    from sklearn.metrics import roc_auc_score

    p = ctx.params
    model = ctx.setup("train").files.get("model")
    if model is None:
        raise CheckFailed("the setup 'train' wrote no model file at {model}; save the model to the path it is given")
    src = pdata.source(ctx.data.folder("public"))
    held = ctx.data.folder("heldout")
    rows, late = pdata.heldout_rows(held, src, p.rows, seed=29)
    weather = pd.concat([src.weather, pdata.weather_of(held, pdata.HELDOUT_MONTHS)], ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="shipml-pipeline-") as tmp:
        folder = pdata.write_folder(Path(tmp) / "data", src, src.flights, weather)
        proba = predict(ctx, model, folder, rows, "the trained model on the held-out months")
    auc = float(roc_auc_score(late, proba))
    figures = f"ROC AUC {auc:.3f} on {len(rows)} held-out flights (a constant answer: 0.5)"
    fraction = float(np.clip((auc - p.zero_auc) / (p.full_auc - p.zero_auc), 0, 1))
    if fraction >= 1:
        return passed(f"train then predict end to end: {figures}.", roc_auc=auc)
    return partial(fraction, f"train then predict end to end: {figures}; full points need {p.full_auc:g} (none below {p.zero_auc:g}): "
                   "train on the train months with features known before departure, and let the quality gate refuse a weak model.", roc_auc=auc)
