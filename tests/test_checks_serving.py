"""Each serving check on its own, in seconds: a tiny app that keeps the contract passes it, and a
tiny app with one defect per check fails it with a message that names the defect.

The end-to-end proof (reference, starter and every mutant through ``shipml grade-all``) is in
test_serving_lab.py; these tests run each check through :func:`autograder.testing.run_check`,
against services started here, with the lab's own parameters.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.engine.sandbox import free_port
from autograder.engine.spec import find_lab
from autograder.testing import LabCheck, parametrize_with_checks

APP = Path(__file__).resolve().parent / "fixtures" / "serving_app"
CHECKS = {c.id: LabCheck(c) for c in find_lab("serving").checks}


def commands(mode: str) -> dict[str, str]:
    return {
        "serve": f"{{python}} tinyapp.py serve --port {{port}} --data {{data}} --mode {mode}",
        "predict": f"{{python}} tinyapp.py predict --input {{input}} --output {{output}} --data {{data}} --mode {mode}",
    }


def running(mode: str):
    """Start the tiny app once for the module, as the harness would: through its serve command."""
    from autograder.engine.service import Service
    from autograder.paths import FLIGHTS_DIR
    from autograder.testing import _PlainSpawner

    service = Service(_PlainSpawner(APP, FLIGHTS_DIR), commands(mode)["serve"], "/health", 60)
    service.start()
    return service


@pytest.fixture(scope="module")
def good():
    service = running("good")
    yield service.url
    service.stop()


@pytest.fixture(scope="module")
def bad():
    service = running("bad")
    yield service.url
    service.stop()


def run(check_id: str, url: str, mode: str, **params: object):
    check = CHECKS[check_id]
    return check(url=url, commands=commands(mode), cwd=APP, params={**check.spec.params, **params})


@parametrize_with_checks("serving")
def test_a_contract_keeping_app_passes_every_check(check, good):
    verdict = check(url=good, commands=commands("good"), cwd=APP)
    assert verdict.fraction == 1, verdict.message


def test_check_api_contract(bad):
    verdict = run("api_contract", bad, "bad")
    assert verdict.fraction == 0 and "model_version" in verdict.message, verdict.message


def test_check_bad_input_handled(bad):
    verdict = run("bad_input", bad, "bad")
    assert verdict.fraction == 0 and "answered 500" in verdict.message and "Request:" in verdict.message, verdict.message


def test_check_health_is_honest(bad):
    verdict = run("health_honest", bad, "bad")
    assert verdict.fraction == 0 and "the model was not ready" in verdict.message, verdict.message


def test_check_latency_under_load(bad):
    verdict = run("latency", bad, "bad", requests=400)  # 400 are plenty to see a 50 ms pause
    assert verdict.fraction == 0 and "p50 is above 30 ms" in verdict.message, verdict.message
    assert verdict.details["p50_ms"] > 30


def test_check_no_training_serving_skew(good):
    # The bad offline path takes the hour in UTC; the service is the good one, so only skew differs.
    verdict = CHECKS["no_skew"](url=good, commands={**commands("good"), "predict": commands("bad")["predict"]}, cwd=APP)
    assert verdict.fraction == 0 and "different probability online than offline" in verdict.message, verdict.message


def test_check_no_training_serving_skew_names_a_missing_output(good):
    verdict = CHECKS["no_skew"](url=good, commands={"predict": "true"}, cwd=APP)
    assert verdict.fraction == 0 and "wrote no file at {output}" in verdict.message, verdict.message


def test_check_accuracy_in_production(bad):
    verdict = run("accuracy", bad, "bad", rows=400)
    assert verdict.fraction == 0 and "PR AUC" in verdict.message, verdict.message


def test_check_accuracy_in_production_needs_the_heldout_data(good):
    from autograder.checkapi import LabData
    from autograder.paths import FLIGHTS_DIR

    verdict = CHECKS["accuracy"](url=good, data=LabData(public=FLIGHTS_DIR))
    assert verdict.fraction == 0 and "held-out data" in verdict.message


def test_port_helper_gives_a_free_port():
    assert 1024 < free_port() < 65536
