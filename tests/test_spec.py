"""lab.toml and submission.toml: valid files load, malformed ones give one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, shipml

from autograder.engine.spec import (
    HARNESS_PLACEHOLDERS,
    SpecError,
    find_lab,
    load_lab,
    load_submission,
)
from autograder.paths import LABS_DIR

GOOD_SUBMISSION = """
[team]
name = "Gate 42"
members = [{ id = "ada" }, { id = "grace", name = "Grace H." }]

[commands]
serve = "{python} -m app --port {port}"
test = "{python} -m pytest"
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
        ("[team]\nname = 'x'\n[commands]\nserve = '{python} app.py --port {prot}'\n",
         "commands.serve' unknown placeholder '{prot}' (did you mean {port}?); use one of {python}, {data}, {port}, {model}"),
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
        load_submission(write(tmp_path, text), find_lab("serving"))
    message = str(info.value)
    assert expected in message and "\n" not in message and "submission.toml" in message


def test_lab_requires_its_commands(tmp_path):
    lab = load_lab(ENGINE_FIXTURE)
    with pytest.raises(SpecError, match="field 'commands.serve' is required by lab 'engine-fixture'"):
        load_submission(write(tmp_path, "[team]\nname = 'x'\n"), lab)


def test_the_lab_declares_its_commands_and_their_placeholders():
    lab = find_lab("serving")
    assert list(lab.commands) == ["install", "train", "serve", "predict"], "install comes with every lab, first"
    assert lab.setup_steps() == ["install", "train"]
    assert lab.service_command() == "serve"
    assert lab.placeholders("predict") == ("python", "data", "input", "output", "model")
    assert lab.command("predict").file_placeholders() == ("input", "output")
    assert lab.placeholders("install") == ("python",) and not lab.command("install").required
    assert find_lab("beyond-accuracy").service_command() is None
    assert set(HARNESS_PLACEHOLDERS) == {"python", "port", "data", "model", "state"}


def test_a_submission_command_the_lab_does_not_declare_names_the_labs_commands(tmp_path):
    text = "[team]\nname = 'x'\n[commands]\nserve = '{python} app.py --port {port}'\ntrian = '{python} train.py'\n"
    with pytest.raises(SpecError) as info:
        load_submission(write(tmp_path, text), find_lab("serving"))
    assert str(info.value) == (
        f"{tmp_path / 'submission.toml'}: field 'commands.trian' is not a command of lab 'serving'; "
        "did you mean train? (it takes: install, train, serve, predict)"
    )


def test_a_growing_project_keeps_the_commands_of_the_courses_other_labs(tmp_path):
    """The team's project grows lab by lab: the pipeline lab's `test` is no error in the serving
    lab, nor the serving lab's `serve` in the pipeline lab; neither is checked or run there.
    Any other name is still an error."""
    text = ("[team]\nname = 'x'\n[commands]\ntrain = '{python} t.py --data {data} --out {model}'\n"
            "serve = '{python} app.py --port {port}'\ntest = '{python} -m pytest tests'\n"
            "predict = '{python} p.py --model {model} --input {input} --output {output}'\n")
    assert load_submission(write(tmp_path, text), find_lab("serving")).command("test") == "{python} -m pytest tests"
    assert load_submission(write(tmp_path, text), find_lab("pipeline")).command("serve").startswith("{python} app.py")
    with pytest.raises(SpecError, match="field 'commands.worker' is not a command of lab 'pipeline'"):
        load_submission(write(tmp_path, text + "worker = 'x'\n"), find_lab("pipeline"))


def test_a_placeholder_the_command_does_not_receive_names_those_it_may_use(tmp_path):
    text = "[team]\nname = 'x'\n[commands]\ninstall = '{python} -m pip install -r requirements.txt --target {data}'\n"
    with pytest.raises(SpecError, match=r"field 'commands.install' uses '\{data\}', which the install command does not receive; it may use \{python\}$"):
        load_submission(write(tmp_path, text), find_lab("beyond-accuracy"))


def test_without_a_lab_templates_are_checked_for_syntax_only(tmp_path):
    text = "[team]\nname = 'x'\n[commands]\nanything = '{python} x.py --port {port} --in {whatever}'\n"
    assert load_submission(write(tmp_path, text)).command("anything").endswith("{whatever}")
    for bad, expected in [("{}", "'{}' is not a placeholder"), ("{port:5}", "'{port:5}' is not a placeholder"),
                          ("{data.x}", "'{data.x}' is not a placeholder"), ("{oops", "not a valid command template")]:
        with pytest.raises(SpecError, match="field 'commands.serve'") as info:
            load_submission(write(tmp_path, f"[team]\nname = 'x'\n[commands]\nserve = 'run {bad}'\n"))
        assert expected in str(info.value) and "\n" not in str(info.value)


WORKER_LAB = """
[lab]
name = "queue"
title = "A lab with a worker"

[lab.commands.serve]
stage = "service"
placeholders = ["python", "port", "state"]

[lab.commands.worker]
stage = "process"
placeholders = ["python", "port", "state"]
help = "drains the queue kept in {state}"

[[checks]]
id = "service_starts"
function = "autograder.checks.common:check_service_starts"
points = 1
role = "operator"
description = "The service starts"
"""


def test_a_lab_may_declare_its_own_command_with_its_own_placeholders(tmp_path):
    lab = load_lab(write(tmp_path, WORKER_LAB, "lab.toml"))
    assert lab.placeholders("worker") == ("python", "port", "state") and lab.command("worker").stage == "process"
    assert lab.command("worker").file_placeholders() == ()
    team = tmp_path / "team"
    team.mkdir()
    sub = load_submission(write(team, "[team]\nname = 'x'\n[commands]\nserve = '{python} app.py --port {port} --db {state}/db'\n"
                                      "worker = '{python} worker.py --api {port} --db {state}/db'\n"), lab)
    assert sub.command("worker") == "{python} worker.py --api {port} --db {state}/db"
    assert sub.command("predict") == "", "a command the submission does not give is empty"
    with pytest.raises(SpecError, match="field 'commands.worker' is required by lab 'queue'; add the command that drains the queue kept in"):
        load_submission(write(team, "[team]\nname = 'x'\n[commands]\nserve = 'run {port}'\n"), lab)
    with pytest.raises(SpecError, match=r"field 'commands.worker' unknown placeholder '\{sate\}' \(did you mean \{state\}\?\)"):
        load_submission(write(team, "[team]\nname = 'x'\n[commands]\nserve = 'run {port}'\nworker = 'run {sate}'\n"), lab)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.split("[lab.commands.serve]")[0] + 'commands = ["serve"]\n\n[[checks]]' + t.split("[[checks]]", 1)[1],
         "field 'lab.commands' is a list of names (the old form); declare each command as a table, e.g. [lab.commands.train]"),
        (lambda t: t.replace('placeholders = ["python", "port"]', 'placeholders = ["python"]'),
         "field 'lab.commands.serve' a service command must receive 'port'"),
        (lambda t: t.replace('placeholders = ["python"]\nrequired', 'stage = "service"\nplaceholders = ["python", "port"]\nrequired'),
         "declares serve and test as stage 'service'; a lab has one service"),
        (lambda t: t.replace("[lab.commands.test]", "[lab.commands.install]"), "declares 'install', which every lab has already"),
        (lambda t: t.replace('placeholders = ["python", "port"]', 'placeholders = ["python", "port", "data"]'),
         "commands.serve receives 'data', but the lab gives none; set data = true"),
        (lambda t: t.replace('stage = "service"', 'stage = "daemon"'), "field 'lab.commands.serve.stage'"),
        (lambda t: t.replace('stage = "service"', 'stgae = "service"'), "field 'lab.commands.serve.stgae' is not a known field; did you mean stage? (it takes: stage, placeholders, help, required)"),
        (lambda t: t.replace('placeholders = ["python", "port"]', 'placeholders = ["python", "port", "port"]'), "lists port twice"),
    ],
)
def test_malformed_command_declarations_give_one_line(tmp_path, change, expected):
    text = (ENGINE_FIXTURE / "lab.toml").read_text()
    assert change(text) != text, "the change must change the file"
    with pytest.raises(SpecError) as info:
        load_lab(write(tmp_path, change(text), "lab.toml"))
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda t: t.replace('points = 2', 'points = "two"'), "field 'checks.0.points'"),
        (lambda t: t.replace('visibility = "hidden"', 'visibility = "secret"'), "field 'checks.2.visibility'"),
        (lambda t: t.replace('function = "autograder.checks.common:check_service_starts"', 'function = "check_service_starts"'), "field 'checks.0.function' 'check_service_starts' must name the check by import path as module:check_<property>"),
        (lambda t: t.replace('checks.common:check_service_starts', 'checks.common:check_service_strats'), "check 'service_starts': check 'autograder.checks.common:check_service_strats': autograder.checks.common has no function check_service_strats"),
        (lambda t: t.replace('checks.common:check_service_starts', 'checks.comon:check_service_starts'), "no module 'autograder.checks.comon'"),
        (lambda t: t.replace('requests = 20', 'reqests = 20'), "check 'requests_answered' (autograder.checks.common:check_requests_answered): params.reqests is not a parameter of check_requests_answered; did you mean requests? (it takes: path, requests, request_timeout)"),
        (lambda t: t.replace('requests = 20', 'colour = 20'), "params.colour is not a parameter of check_requests_answered (it takes: path, requests, request_timeout); remove it or check its spelling"),
        (lambda t: t.replace('time_limit = 120', 'time_limt = 120'), "field 'lab.time_limt' is not a known field; did you mean time_limit? (it takes: name, title, reference, starter, mutants, commands, time_limit, data)"),
        (lambda t: t.replace('ml_test_score = "Infra 3"', 'mltestscore = "Infra 3"'), "field 'checks.0.mltestscore' is not a known field; did you mean ml_test_score?"),
        (lambda t: t.replace('requests = 20', 'requests = "many"'), "check 'requests_answered' (autograder.checks.common:check_requests_answered): params.requests = 'many'"),
        (lambda t: t.replace('ml_test_score = "Infra 3"', 'ml_test_score = "Infra 9"'), "is not an ML Test Score test"),
        (lambda t: t.replace('id = "tests_pass"', 'id = "service_starts"'), "appears twice"),
        (lambda t: t.replace('params = { path = "/ping"', 'passes_when = "{requests} answers to {data}"\nparams = { path = "/ping"'),
         "passes_when names {data}, which is not in the check's params: add it there, or write {{data}} for the text {data}"),
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


@pytest.mark.parametrize("folder", sorted(LABS_DIR.glob("*/lab.toml")), ids=lambda p: p.parent.name)
def test_every_lab_loads_and_every_check_has_one_of_the_four_roles(folder):
    lab = load_lab(folder.parent)
    assert lab.checks
    for check in lab.checks:
        assert check.role in {"data-scientist", "software-engineer", "operator", "domain"}, check.id
        assert check.visibility == "hidden" or "heldout" not in check.requires, check.id


def test_the_serving_labs_hidden_accuracy_check_requires_the_heldout_data():
    checks = {c.id: c for c in find_lab("serving").checks}
    assert checks["accuracy"].requires == ["heldout"] and checks["accuracy"].visibility == "hidden"
    assert [c.id for c in checks.values() if c.requires] == ["accuracy"]
    assert {c.id: c.role for c in checks.values()} == {
        "api_contract": "software-engineer", "bad_input": "software-engineer", "health_honest": "operator",
        "latency": "operator", "no_skew": "data-scientist", "provenance": "operator", "quality": "data-scientist",
        "accuracy": "data-scientist",
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace('role = "operator"\n', "", 1),
         "field 'checks.0.role' is required: say which role owns the check, one of data-scientist, software-engineer, operator, domain"),
        (lambda t: t.replace('role = "operator"', 'role = "operater"', 1),
         "field 'checks.0.role' 'operater' is not a role of the course; use one of data-scientist, software-engineer, operator, domain (did you mean operator?)"),
        (lambda t: t.replace('role = "operator"', 'role = "Data Scientist"', 1), "use one of data-scientist, software-engineer, operator, domain"),
        (lambda t: t.replace('role = "operator"', 'role = "operator"\nrequires = ["heldout"]', 1),
         "check 'service_starts' requires the held-out data, which a team's self-check never has; make it visibility = \"hidden\""),
        (lambda t: t.replace('role = "operator"', 'role = "operator"\nrequires = ["gpu"]', 1), "field 'checks.0.requires.0'"),
    ],
)
def test_a_missing_or_wrong_role_or_requirement_gives_one_line(tmp_path, change, expected):
    text = (ENGINE_FIXTURE / "lab.toml").read_text()
    assert change(text) != text
    with pytest.raises(SpecError) as info:
        load_lab(write(tmp_path, change(text), "lab.toml"))
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_missing_required_parameter_is_named_when_the_lab_loads(tmp_path):
    text = (LABS_DIR / "serving" / "lab.toml").read_text()
    changed = text.replace("p50_ms = 30, ", "")
    assert changed != text
    write(tmp_path, changed, "lab.toml")
    with pytest.raises(SpecError, match=r"check 'latency' \(autograder.checks.serving:check_latency_under_load\): params.p50_ms is required but missing"):
        load_lab(tmp_path)


def test_a_misspelt_parameter_without_a_default_is_named_with_the_one_it_was_meant_to_be(tmp_path):
    text = (LABS_DIR / "serving" / "lab.toml").read_text()
    changed = text.replace("p50_ms = 30, ", "p50_msx = 30, ")
    assert changed != text
    write(tmp_path, changed, "lab.toml")
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path)
    assert str(info.value).endswith(
        "check 'latency' (autograder.checks.serving:check_latency_under_load): params.p50_msx is not a parameter of "
        "check_latency_under_load; did you mean p50_ms? (it takes: concurrency, requests, warmup, p50_ms, p95_ms, min_rps, budget)"
    ), "the misspelling is the problem, and the missing p50_ms is the same problem, not one more"


def test_unknown_fields_of_submission_toml_suggest_the_field_meant(tmp_path):
    for text, expected in [
        ("[team]\nname = 'x'\n[servcie]\nhealth_path = '/h'\n", "field 'servcie' is not a known field; did you mean service? (it takes: team, commands, service)"),
        ("[team]\nname = 'x'\nmembres = []\n", "field 'team.membres' is not a known field; did you mean members? (it takes: name, members)"),
        ("[team]\nname = 'x'\n[service]\nstartup_timout = 3\n", "did you mean startup_timeout?"),
    ]:
        with pytest.raises(SpecError) as info:
            load_submission(write(tmp_path, text))
        assert expected in str(info.value), str(info.value)


def test_explain_validation_words_every_kind_of_problem_on_one_line():
    from pydantic import BaseModel, ConfigDict, ValidationError

    from autograder.errors import explain_validation

    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Inner]
        table: dict[str, Inner] = {}

    def explain(raw: dict, **kw: object) -> str:
        with pytest.raises(ValidationError) as info:
            Outer.model_validate(raw)
        return explain_validation(info.value, model=Outer, **kw)  # type: ignore[arg-type]

    assert explain({}) == "items is required but missing; add it"
    assert explain({"items": [{"size": "big"}]}, where="field '{}'") == (
        "field 'items.0.size' = 'big': Input should be a valid integer, unable to parse string as an integer")
    assert explain({"items": [], "table": {"a": {"sise": 1}}}) == "table.a.sise is not a known field; did you mean size? (it takes: size)"
    assert explain({"items": [{"size": 1}], "tabel": {}, "extra": 1}) == (
        "tabel is not a known field; did you mean table? (it takes: items, table) (and 1 more problem(s))")


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
