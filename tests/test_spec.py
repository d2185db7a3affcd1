"""lab.toml and submission.toml: valid files load, malformed ones give one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, shipml

from autograder.engine.spec import SpecError, load_lab, load_submission

GOOD_SUBMISSION = """
[team]
name = "Gate 42"
members = [{ id = "ada" }, { id = "grace", name = "Grace H." }]

[commands]
serve = "{python} -m app --port {port}"
train = "{python} -m train --data {data}"
"""


def write(tmp_path: Path, text: str, name: str = "submission.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_valid_files_load(tmp_path):
    lab = load_lab(ENGINE_FIXTURE)
    assert [c.id for c in lab.checks] == ["service_starts", "requests_answered", "tests_pass"]
    assert lab.max_points == 10
    sub = load_submission(write(tmp_path, GOOD_SUBMISSION), lab)
    assert [m.id for m in sub.team.members] == ["ada", "grace"]
    assert sub.service.health_path == "/health"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[team]\nname = 'x'\n[commands]\nserve = '{python} app.py --port {prot}'\n", "commands.serve' unknown placeholder '{prot}'"),
        ("[commands]\nserve = 'x'\n", "field 'team' is required but missing"),
        ("[team]\nname = 'x'\ncolour = 'red'\n", "field 'team.colour' is not a known field"),
        ("[team]\nname = 'x'\n[service]\nstartup_timeout = -3\n", "field 'service.startup_timeout'"),
        ("[team]\nname = 'x'\n[service]\nhealth_path = 'health'\n", "field 'service.health_path'"),
        ("[team\nname = 'x'\n", "not valid TOML"),
        ("[team]\nname = 'x'\n[commands]\ntrain = '{python} train.py --port {port}'\n",
         "commands.train' uses '{port}', which the train command does not receive; it may use {python}, {data}"),
        ("[team]\nname = 'x'\n[commands]\nserve = '{python} app.py --out {output}'\n",
         "commands.serve' uses '{output}', which the serve command does not receive"),
    ],
)
def test_malformed_submission_gives_one_line(tmp_path, text, expected):
    with pytest.raises(SpecError) as info:
        load_submission(write(tmp_path, text))
    message = str(info.value)
    assert expected in message and "\n" not in message and "submission.toml" in message


def test_lab_requires_its_commands(tmp_path):
    lab = load_lab(ENGINE_FIXTURE)
    with pytest.raises(SpecError, match="field 'commands.serve' is required by lab 'engine-fixture'"):
        load_submission(write(tmp_path, "[team]\nname = 'x'\n"), lab)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda t: t.replace('points = 2', 'points = "two"'), "field 'checks.0.points'"),
        (lambda t: t.replace('visibility = "hidden"', 'visibility = "secret"'), "field 'checks.2.visibility'"),
        (lambda t: t.replace('function = "autograder.checks.common:check_service_starts"', 'function = "check_service_starts"'), "field 'checks.0.function' 'check_service_starts' must name the check by import path as module:check_<property>"),
        (lambda t: t.replace('checks.common:check_service_starts', 'checks.common:check_service_strats'), "check 'service_starts': check 'autograder.checks.common:check_service_strats': autograder.checks.common has no function check_service_strats"),
        (lambda t: t.replace('checks.common:check_service_starts', 'checks.comon:check_service_starts'), "no module 'autograder.checks.comon'"),
        (lambda t: t.replace('requests = 20', 'reqests = 20'), "check 'requests_answered' (autograder.checks.common:check_requests_answered): params.reqests is not a parameter of check_requests_answered (it takes: path, requests, request_timeout)"),
        (lambda t: t.replace('requests = 20', 'requests = "many"'), "check 'requests_answered' (autograder.checks.common:check_requests_answered): params.requests = 'many'"),
        (lambda t: t.replace('ml_test_score = "Infra 3"', 'ml_test_score = "Infra 9"'), "is not an ML Test Score test"),
        (lambda t: t.replace('id = "tests_pass"', 'id = "service_starts"'), "appears twice"),
    ],
)
def test_malformed_lab_gives_one_line(tmp_path, mutation, expected):
    text = (ENGINE_FIXTURE / "lab.toml").read_text()
    assert mutation(text) != text, "the mutation must change the file"
    write(tmp_path, mutation(text), "lab.toml")
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(tmp_path / "lab.toml") in str(info.value), "the message names the file"


def test_a_missing_required_parameter_is_named_when_the_lab_loads(tmp_path):
    from autograder.paths import LABS_DIR

    text = (LABS_DIR / "serving" / "lab.toml").read_text()
    changed = text.replace("p50_ms = 30, ", "")
    assert changed != text
    write(tmp_path, changed, "lab.toml")
    with pytest.raises(SpecError, match=r"check 'latency' \(autograder.checks.serving:check_latency_under_load\): params.p50_ms is required but missing"):
        load_lab(tmp_path)


def test_cli_names_a_misspelled_parameter_in_one_line(tmp_path):
    write(tmp_path, (ENGINE_FIXTURE / "lab.toml").read_text().replace("request_timeout = 2", "request_timeout = 2, timout = 3"), "lab.toml")
    proc = shipml("checks", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "params.timout is not a parameter of check_requests_answered" in proc.stderr


def test_cli_prints_one_line_and_exits_nonzero_without_traceback(tmp_path):
    write(tmp_path, "[team]\nname = 'x'\n[commands]\nserve = 'run {nope}'\n")
    proc = shipml("check", str(ENGINE_FIXTURE), str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("shipml: error: ") and "unknown placeholder '{nope}'" in proc.stderr


def test_cli_missing_files_and_unknown_lab(tmp_path):
    proc = shipml("check", str(ENGINE_FIXTURE), str(tmp_path))
    assert proc.returncode == 2 and "submission.toml: file not found" in proc.stderr
    proc = shipml("checks", "no-such-lab")
    assert proc.returncode == 2 and "no lab 'no-such-lab'" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_lists_a_labs_checks():
    proc = shipml("checks", str(ENGINE_FIXTURE), check=True)
    for check_id in ("service_starts", "requests_answered", "tests_pass"):
        assert check_id in proc.stdout
