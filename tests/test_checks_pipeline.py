"""Each pipeline check on its own, in seconds: a tiny team that keeps the lab's contract passes
it, and the same team with one defect fails it with a message that names the defect.

The tiny team (fixtures/pipeline_app) is a per-hour and per-carrier late-share model behind the
lab's ``steps.py`` interface; it trains in under a second. ``--defect`` on its commands gives it
one defect. The checks run through :func:`autograder.testing.run_check` with the lab's own
parameters, the hidden ones with a ``hidden`` folder whose wheat is the tiny team's own
steps.py: the lab's chaffs are then also proved to be one bug each against an implementation of
the interface that is not the reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.checkapi import LabData
from autograder.checks.pipeline_tests import CHAFFS_FILE, load_bugs
from autograder.engine.spec import find_lab
from autograder.paths import FLIGHTS_DIR
from autograder.testing import LabCheck, parametrize_with_checks

APP = Path(__file__).resolve().parent / "fixtures" / "pipeline_app"
LAB = find_lab("pipeline")
CHECKS = {c.id: LabCheck(c, LAB) for c in LAB.checks}
TESTS = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {python} -m pytest -q -p no:cacheprovider tests"


def commands(defect: str = "", *, predict: str = "", test: str = TESTS, track: bool = False, train: str = "") -> dict[str, str]:
    """The tiny team's commands; ``track`` logs to MLflow (seconds of import: only where checked)."""
    return {
        "train": train or "{python} -m flightdelay.train --data {data} --out {model} --state {state}"
                 + (f" --defect {defect}" if defect else "") + (" --track" if track else ""),
        "predict": "{python} -m flightdelay.predict --model {model} --data {data} --input {input} --output {output}"
                   + (f" --defect {predict}" if predict else ""),
        "test": test,
    }


def hidden(folder: Path, chaffs: str | None = None, wheat: Path = APP / "flightdelay" / "steps.py") -> Path:
    """A hidden folder: the lab's chaffs (or ``chaffs``, TOML tables), the tiny team's wheat."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (LAB.root / "hidden" / CHAFFS_FILE).read_text() if chaffs is None else chaffs
    body = text[text.index("[chaffs."):]
    (folder / CHAFFS_FILE).write_text(f"wheat = {str(wheat)!r}\n\n{body}")
    return folder


SETUP = {"reproducible", "schema_change", "quality_gate", "end_to_end", "experiments_tracked"}
"""The checks that read what the setup train did; the others skip it here (a second each)."""


def setup_steps(check_id: str) -> tuple[str, ...]:
    return ("train",) if check_id in SETUP else ()


def run(check_id: str, cmds: dict[str, str], data: LabData | None = None, **params: object):
    check = CHECKS[check_id]
    small = {"share": 0.1} if "share" in check.spec.params else {}  # a smaller sample: faster, same verdict
    return check(commands=cmds, cwd=APP, params={**check.spec.params, **small, **params}, data=data,
                 setup_steps=setup_steps(check_id))


@pytest.fixture(scope="module")
def grading_data(tmp_path_factory) -> LabData:
    return LabData(public=FLIGHTS_DIR, heldout=FLIGHTS_DIR, hidden=hidden(tmp_path_factory.mktemp("hidden")))


@parametrize_with_checks("pipeline")
def test_a_contract_keeping_pipeline_passes_every_check(check, grading_data):
    verdict = check(commands=commands(track=check.spec.id == "experiments_tracked"), cwd=APP, data=grading_data,
                    setup_steps=setup_steps(check.spec.id))
    assert verdict.fraction == 1, verdict.message


def test_the_lab_chaffs_parse_and_name_the_reference_as_wheat():
    bugs = load_bugs(LAB.root / "hidden")
    shown = {name for name, chaff in bugs.chaffs.items() if chaff.shown}
    assert shown == {"tz_shift", "off_by_one_hour", "inner_join", "label_leak", "swapped_periods", "dropped_category"}
    assert len(bugs.chaffs) - len(shown) >= 3
    for name in bugs.chaffs:
        compile(bugs.module(name), name, "exec")


def test_check_training_is_reproducible():
    verdict = run("reproducible", commands("unseeded"))
    assert verdict.fraction == 0 and "different probabilities" in verdict.message and "metrics differ" in verdict.message, verdict.message


def test_check_training_is_reproducible_only_if_the_model_comes_from_the_data():
    # A model fixed in the code is the same on every run: reproducible, trivially, and worth nothing.
    verdict = run("reproducible", commands("frozen"))
    assert verdict.fraction == 0 and "train must fit its model on the data in {data}" in verdict.message, verdict.message


def test_check_schema_change_fails_loudly():
    verdict = run("schema_change", commands("lenient"))
    assert verdict.fraction == 0.25, verdict.message
    assert verdict.message.count("train succeeded (exit 0) instead of failing") == 3, verdict.message


def test_check_schema_change_gives_nothing_to_a_train_that_always_fails():
    cheat = commands(train="{python} -c \"raise SystemExit('carrier dest distance: refused')\"")
    verdict = run("schema_change", cheat)
    assert verdict.fraction == 0 and "The 'train' step failed" in verdict.message, verdict.message


def test_check_schema_change_never_trains_on_silently_fewer_rows():
    verdict = run("schema_change", commands("drop_unseen"))
    assert verdict.fraction == 0.75 and "were the ZZ rows silently dropped?" in verdict.message, verdict.message


def test_check_no_silent_drops():
    verdict = run("no_silent_drops", commands("silent_weather"))
    assert verdict.fraction == 0.5, verdict.message
    assert "have no weather row" in verdict.message and "unaccounted for" in verdict.message, verdict.message


def test_check_bad_rows_rejected():
    verdict = run("bad_rows", commands("lax_rows"))
    assert verdict.fraction == 0.5, verdict.message
    assert "removed['invalid:distance'] is 0, expected 7" in verdict.message and "invalid:sched_dep_time" in verdict.message


def test_a_destination_the_airports_table_lacks_is_a_real_flight():
    # airports.csv.gz lacks SJU, BQN, STT and PSE: a pipeline that rejects their flights loses real data.
    # It always loses the dest share; on some samples one more, where a row that is counted under
    # another reason (cancelled, or an injected bad distance) also flies to one of those airports.
    verdict = run("bad_rows", commands("known_dests"))
    assert verdict.fraction <= 0.75 and "expected 3" in verdict.message, verdict.message
    assert "keep it and list the code in the run log's unseen_values['dest']" in verdict.message, verdict.message
    verdict = run("no_silent_drops", commands("known_dests"))
    assert verdict.fraction <= 5 / 6 + 1e-9 and "a dest that airports.csv.gz does not list" in verdict.message, verdict.message


def test_check_quality_gate():
    verdict = run("quality_gate", commands("no_gate"))
    # Writing a model on the real data earns nothing without the refusal: a constant model writes one too.
    assert verdict.fraction == 0 and "train succeeded and wrote a model" in verdict.message, verdict.message


def test_check_pipeline_end_to_end():
    verdict = run("end_to_end", commands(predict="constant"))
    assert verdict.fraction == 0 and "ROC AUC 0.500" in verdict.message, verdict.message


def test_check_pipeline_end_to_end_needs_the_heldout_data():
    verdict = run("end_to_end", commands(), data=LabData(public=FLIGHTS_DIR))
    assert verdict.fraction == 0 and "held-out data" in verdict.message, verdict.message


def test_check_tests_pass():
    verdict = run("tests_pass", commands(test="{python} -c 'raise SystemExit(1)'"))
    assert verdict.fraction == 0 and "exited with code 1" in verdict.message, verdict.message


def test_check_tests_pass_shows_the_line_coverage_of_the_package_without_grading_it(tmp_path):
    verdict = run("tests_pass", commands())
    assert verdict.fraction == 1, verdict.message
    line = re.search(r"^Line coverage of flightdelay/ \(information, not graded\): (\d+)% of (\d+) statements\.$",
                     verdict.message, re.MULTILINE)
    assert line, verdict.message
    # The figure is coverage.py's own for the same suite: its steps.py tests run nearly all of
    # steps.py and nothing of train, predict or tracking (about a quarter of the package).
    team = shutil.copytree(APP, tmp_path / "team")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    for args in (["run", "--source=flightdelay", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], ["json", "-o", "cov.json"]):
        subprocess.run([sys.executable, "-m", "coverage", *args], cwd=team, env=env, check=True, capture_output=True)
    totals = json.loads((team / "cov.json").read_text())["totals"]
    assert verdict.details["coverage_statements"] == totals["num_statements"] == int(line.group(2))
    assert verdict.details["coverage"] == round(totals["covered_lines"] / totals["num_statements"], 4)
    assert 10 < int(line.group(1)) < 60, verdict.message
    # Nothing measured (no Python ran) is said so, and the points are the same.
    unmeasured = run("tests_pass", commands(test="true"))
    assert unmeasured.fraction == 1 and unmeasured.details["coverage"] is None, unmeasured.message
    assert "Line coverage of flightdelay/ (information, not graded): not measured" in unmeasured.message


CHAFFS = '''
[chaffs.swapped]
shown = true
description = "split swaps its periods"
code = """
_wheat_split = split

def split(rows):
    train, validation = _wheat_split(rows)
    return validation, train
"""

[chaffs.far]
shown = true
description = "build_features doubles the distance"
code = """
_wheat_build_features = build_features

def build_features(rows):
    features = _wheat_build_features(rows)
    features["distance"] = features["distance"] * 2
    return features
"""

[chaffs.secret_label]
shown = false
description = "label uses > 15"
code = """
def label(flights):
    return flights["arr_delay"] > 15
"""

[chaffs.hang]
shown = true
description = "steps.py never finishes importing"
code = """
import time
time.sleep(60)
"""
'''


def test_check_tests_catch_bugs_names_shown_bugs_and_counts_hidden_ones(tmp_path):
    data = LabData(public=FLIGHTS_DIR, hidden=hidden(tmp_path / "hidden", CHAFFS))
    verdict = run("tests_catch_bugs", commands(), data=data, test_timeout=3)
    assert verdict.fraction == 0.5, verdict.message
    assert "caught: swapped" in verdict.message and "missed: far" in verdict.message
    assert "hidden bugs: 1 of 1 caught" in verdict.message and "secret_label" not in verdict.message
    assert "missed: hang (steps.py never finishes importing): the tests did not finish in time, and a hang is not a catch" in verdict.message


def test_check_tests_catch_bugs_gives_nothing_for_tests_that_always_pass(tmp_path):
    # The suite prints the module it was given: no output of a swapped run reaches the message.
    data = LabData(public=FLIGHTS_DIR, hidden=hidden(tmp_path / "hidden", CHAFFS.split("[chaffs.hang]")[0]))
    verdict = run("tests_catch_bugs", commands(test="cat flightdelay/steps.py"), data=data)
    assert verdict.fraction == 0 and "caught 0 of 3" in verdict.message, verdict.message
    assert "_wheat_" not in verdict.message and "def " not in verdict.message


def test_check_tests_catch_bugs_refuses_tests_that_fail_on_a_correct_steps_py(tmp_path):
    # The "correct" version here labels with > 15: the team's tests fail on it, so nothing counts.
    wheat = tmp_path / "steps.py"
    source = (APP / "flightdelay" / "steps.py").read_text()
    wheat.write_text(source.replace('(flights["arr_delay"] >= LATE_MINUTES)', '(flights["arr_delay"] > LATE_MINUTES)'))
    data = LabData(public=FLIGHTS_DIR, hidden=hidden(tmp_path / "hidden", CHAFFS.split("[chaffs.far]")[0], wheat=wheat))
    verdict = run("tests_catch_bugs", commands(), data=data)
    assert verdict.fraction == 0 and "replaced by a correct implementation" in verdict.message, verdict.message
    assert "LATE_MINUTES" not in verdict.message


def test_check_tests_catch_bugs_needs_the_instructor_folder():
    verdict = run("tests_catch_bugs", commands(), data=LabData(public=FLIGHTS_DIR))
    assert verdict.fraction == 0 and "only the staff's grading has" in verdict.message, verdict.message


def test_check_experiments_tracked():
    # The store is written once, then never again: the runs that follow are not in it.
    verdict = run("experiments_tracked", commands("stale_store", track=True))
    assert verdict.fraction == 0, verdict.message
    assert "not the model file train just wrote" in verdict.message and "no new version was registered" in verdict.message


def test_check_experiments_tracked_needs_a_store():
    verdict = run("experiments_tracked", commands())
    assert verdict.fraction == 0 and "there is no {state}/mlflow.db" in verdict.message, verdict.message
