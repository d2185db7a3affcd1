"""Each serving check on its own, in seconds: a tiny system that keeps the contract passes it, a
tiny system with one defect per check fails it with a message that names the defect, and the
cheapest cheats (a table of outcomes, a model that does not come from train) do not pay.

The end-to-end proof (reference, starter and every mutant through ``shipml grade-all``) is in
test_labs.py; these tests run each check through :func:`autograder.testing.run_check`,
against services started here, with the lab's own parameters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autograder.checkapi import LabData
from autograder.engine.spec import find_lab
from autograder.paths import FLIGHTS_DIR
from autograder.testing import LabCheck, parametrize_with_checks, public_data, serve_app

APP = Path(__file__).resolve().parent / "fixtures" / "serving_app"
LAB = find_lab("serving")
CHECKS = {c.id: LabCheck(c, LAB) for c in LAB.checks}


def commands(mode: str) -> dict[str, str]:
    return {
        "train": "{python} tinyapp.py train --data {data} --out {model}",
        "serve": f"{{python}} tinyapp.py serve --port {{port}} --data {{data}} --model {{model}} --mode {mode}",
        "predict": f"{{python}} tinyapp.py predict --model {{model}} --data {{data}} --input {{input}} --output {{output}} --mode {mode}",
    }


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "model.json"
    subprocess.run([sys.executable, "tinyapp.py", "train", "--data", str(public_data()), "--out", str(out)], cwd=APP, check=True)
    return out


@pytest.fixture(scope="module")
def good(model):
    """The tiny app, started the way the harness starts a service: through its serve command."""
    with serve_app(commands("good")["serve"], cwd=APP, model=str(model)) as service:
        yield service.url


@pytest.fixture(scope="module")
def bad(model):
    with serve_app(commands("bad")["serve"], cwd=APP, model=str(model)) as service:
        yield service.url


def run(check_id: str, url: str | None, mode: str, **params: object):
    check = CHECKS[check_id]
    return check(url=url, commands=commands(mode), cwd=APP, params={**check.spec.params, **params})


@parametrize_with_checks("serving")
def test_a_contract_keeping_system_passes_every_check(check, good):
    # Provenance starts its own instances from the model train writes; the others use the running one.
    url = None if check.spec.id == "provenance" else good
    verdict = check(url=url, commands=commands("good"), cwd=APP)
    assert verdict.fraction == 1, verdict.message


def test_check_api_contract(bad):
    verdict = run("api_contract", bad, "bad")
    assert verdict.fraction == 0 and "GET /version: field model_sha256" in verdict.message, verdict.message


def test_check_bad_input_handled(bad):
    verdict = run("bad_input", bad, "bad")
    assert verdict.fraction < 0.5 and "answered 500" in verdict.message and "Request:" in verdict.message, verdict.message
    assert "missing field 'carrier'" in verdict.message and "negative distance" in verdict.message, "every failing case is named"


def test_check_bad_input_handled_names_a_rejected_valid_flight(model):
    with serve_app(commands("strict")["serve"], cwd=APP, model=str(model)) as strict:
        verdict = run("bad_input", strict.url, "strict")
    assert verdict.fraction == pytest.approx(0.6), "every bad input handled, two kinds of valid flight (null weather, no weather) turned away"
    assert "rejected a valid flight (weather null): 422" in verdict.message
    assert "rejected a valid flight (no weather field): 422" in verdict.message, verdict.message


def test_check_health_is_honest(bad):
    verdict = run("health_honest", bad, "bad")
    assert verdict.fraction == 0 and "the model was not ready" in verdict.message, verdict.message


def test_check_latency_under_load(bad):
    verdict = run("latency", bad, "bad", requests=400)  # 400 are plenty to see a 50 ms pause
    assert verdict.fraction == 0 and "p50 is above 30 ms" in verdict.message, verdict.message
    assert verdict.details["p50_ms"] > 30 and "p99" in verdict.message


def test_check_no_training_serving_skew(good):
    # The bad offline path takes the hour from the UTC time_hour; the service is the good one.
    verdict = CHECKS["no_skew"](url=good, commands={**commands("good"), "predict": commands("bad")["predict"]}, cwd=APP)
    assert verdict.fraction == 0 and "different probability online than offline" in verdict.message, verdict.message


def test_check_no_training_serving_skew_names_a_missing_output(good):
    verdict = CHECKS["no_skew"](url=good, commands={"predict": "true"}, cwd=APP)
    assert verdict.fraction == 0 and "wrote no file at {output}" in verdict.message, verdict.message


def test_check_model_provenance(bad):
    verdict = run("provenance", None, "bad")
    assert verdict.fraction == 0 and "GET /version: field model_sha256" in verdict.message, verdict.message


def test_check_model_provenance_refuses_a_model_train_did_not_write(model):
    # "Model not pushed": train does nothing; the service runs a model file of the repository.
    cheat = {**commands("good"), "train": "true", "serve": commands("good")["serve"].replace("{model}", str(model))}
    verdict = CHECKS["provenance"](commands=cheat, cwd=APP)
    assert verdict.fraction == 0 and "'train' wrote no model file" in verdict.message, verdict.message
    # train copies the committed file into place: the hash matches, the training data does not.
    cheat["train"] = f"cp {model} {{model}}"
    verdict = CHECKS["provenance"](commands=cheat, cwd=APP)
    assert verdict.fraction == 0 and "training_data_id" in verdict.message, verdict.message


def test_check_model_provenance_refuses_a_table_of_outcomes():
    # train writes a real model, the service answers from a table: retraining changes nothing.
    verdict = run("provenance", None, "table")
    assert verdict.fraction == 0 and "answers changed" in verdict.message and "do not come from what 'train' learned" in verdict.message, verdict.message


def test_check_quality_on_validation(bad):
    verdict = run("quality", bad, "bad", rows=300)
    assert verdict.fraction == 0 and "no better than a constant or random answer" in verdict.message, verdict.message


def test_check_accuracy_in_production(bad):
    verdict = run("accuracy", bad, "bad", rows=400)
    assert verdict.fraction == 0 and "PR AUC" in verdict.message, verdict.message


def test_check_accuracy_in_production_flags_a_table_of_outcomes(model):
    with serve_app(commands("table")["serve"], cwd=APP, model=str(model)) as table:
        verdict = run("accuracy", table.url, "table", rows=400)
    assert verdict.fraction == 1, "the grade stands"
    assert "needs_review" in verdict.details and "beyond" in verdict.details["needs_review"]


def test_check_accuracy_in_production_counts_failed_requests_as_wrong(good):
    from autograder.checks import flights_api, loadgen
    from autograder.checks.serving_model import score

    frame = flights_api.labelled_flights("heldout", 200)
    requests = flights_api.to_requests(frame)
    requests[0] = {**requests[0], "dest": "QQQ"}  # the good service rejects it: one failed request
    result = loadgen.send(good + "/predict", requests, keep_bodies=True)
    scored = score(frame, result, 0.06, 0.11)
    assert len(scored.failed) == 1 and scored.failed[0].startswith("flight 1: answered 422")
    assert scored.fraction > 0, "one failed request does not zero the check"


def test_check_accuracy_in_production_needs_the_heldout_data(good):
    verdict = CHECKS["accuracy"](url=good, data=LabData(public=FLIGHTS_DIR))
    assert verdict.fraction == 0 and "held-out data" in verdict.message


def test_check_accuracy_in_production_grades_on_the_heldout_folder_it_is_given(good, tmp_path):
    """The instructor's held-out data, not the bundled months: a folder with only 300 December flights."""
    import gzip

    import pandas as pd

    folder = tmp_path / "heldout"
    folder.mkdir()
    for table in ("flights", "weather", "airlines", "airports", "planes"):
        frame = pd.read_csv(FLIGHTS_DIR / f"{table}.csv.gz", dtype=str, keep_default_na=False)
        if table == "flights":
            frame = frame[frame["month"] == "12"].head(300)
        with gzip.open(folder / f"{table}.csv.gz", "wt") as fh:
            frame.to_csv(fh, index=False)
    verdict = CHECKS["accuracy"](url=good, data=LabData(public=FLIGHTS_DIR, heldout=folder))
    labelled = int(pd.read_csv(folder / "flights.csv.gz")["arr_delay"].notna().sum())
    assert f"on {labelled} held-out flights" in verdict.message, verdict.message
