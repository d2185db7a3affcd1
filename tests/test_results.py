"""results.json follows Gradescope's autograder schema; reports redact hidden checks; a torn or
forged results.json reads back as a one-line error naming what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from autograder.engine.report import write_reports
from autograder.engine.results import (
    NOT_GRADED,
    CheckResult,
    MalformedResult,
    SubmissionResult,
    not_graded,
    read_results,
    write_results,
)
from autograder.engine.spec import find_lab
from autograder.errors import ShipmlError

# The shape of results.json from Gradescope's specification
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format).
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
                "required": ["score", "max_score", "name", "status", "output", "visibility"],
                "additionalProperties": False,
            },
        },
        "leaderboard": {"type": "array"},
    },
    "required": ["score", "execution_time", "output", "tests"],
    "additionalProperties": False,
}


def sample() -> SubmissionResult:
    return SubmissionResult(
        lab="serving",
        team="Gate 42",
        members=["ada", "grace"],
        checks=[
            CheckResult("contract", "API contract", 10, 10, "All good.", "public", "Infra 3"),
            CheckResult("accuracy", "Accuracy on held-out data", 4, 10, "F1 0.31 on Sep-Dec rows; secret detail", "hidden", "Infra 4"),
        ],
        execution_time=12.5,
    )


def test_results_json_matches_gradescope_schema(tmp_path):
    paths = write_reports(sample(), tmp_path)
    for key in ("results", "instructor_results"):
        data = json.loads(paths[key].read_text())
        jsonschema.validate(data, GRADESCOPE_SCHEMA)
        assert data["score"] == 14 and [t["status"] for t in data["tests"]] == ["passed", "failed"]


def test_hidden_details_are_redacted_for_students_only(tmp_path):
    paths = write_reports(sample(), tmp_path)
    for key in ("results", "markdown", "html"):
        assert "secret detail" not in paths[key].read_text()
    for key in ("instructor_results", "instructor_markdown", "instructor_html"):
        assert "secret detail" in paths[key].read_text()
    student = json.loads(paths["results"].read_text())
    assert student["tests"][1]["score"] == 4 and student["tests"][1]["visibility"] == "after_published"


def test_results_round_trip_and_report_contents(tmp_path):
    write_reports(sample(), tmp_path)
    back = read_results(tmp_path / "instructor" / "results.json")
    assert back == sample()
    md = (tmp_path / "report.md").read_text()
    assert "**Score: 14 / 20**" in md and "Tests for ML infrastructure" in md and "What to fix" in md
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html and "<link" not in html and "<script" not in html


FIXTURE = Path(__file__).parent / "fixtures" / "exports" / "gradescope-reference.json"


def test_the_json_written_is_byte_for_byte_what_gradescope_received(tmp_path):
    """The fixture is what run_autograder wrote in a simulated Gradescope run: read back and
    written again, its record gives the same file, to the byte."""
    back = SubmissionResult.from_dict(json.loads(FIXTURE.read_text())["extra_data"]["shipml"])
    write_results(back, tmp_path / "results.json")
    assert (tmp_path / "results.json").read_text() == FIXTURE.read_text()


def _record() -> dict:
    return json.loads(json.dumps(sample().to_dict()))


def _forge(change: Callable[[dict], object]) -> dict:
    record = _record()
    change(record)
    return record


FORGED: dict[str, tuple[Callable[[dict], object], str]] = {
    "a score as a string": (lambda r: r["checks"][0].update(score="10"), "checks.0.score Input should be a valid number"),
    "a score as true": (lambda r: r["checks"][0].update(score=True), "checks.0.score Input should be a valid number"),
    "an unknown key": (lambda r: r["checks"][1].update(bonus=50), "checks.1.bonus is not a field shipml writes"),
    "no team": (lambda r: r.pop("team"), "team is required but missing"),
    "a visibility shipml never writes": (lambda r: r["checks"][1].update(visibility="visible"), "checks.1.visibility Input should be 'public' or 'hidden'"),
    "checks as an object": (lambda r: r.update(checks={"contract": 10}), "checks Input should be a valid array"),
    "members as a string": (lambda r: r.update(members="ada"), "members Input should be a valid array"),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_a_forged_record_is_refused_with_the_field_that_is_wrong(name):
    change, expected = FORGED[name]
    with pytest.raises(MalformedResult) as caught:
        SubmissionResult.from_dict(_forge(change))
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["a score as a string", "no team"])
def test_read_results_of_a_forged_file_is_one_line(name, tmp_path):
    path = tmp_path / "results.json"
    data = sample().to_gradescope()
    data["extra_data"]["shipml"] = _forge(FORGED[name][0])
    path.write_text(json.dumps(data))
    with pytest.raises(ShipmlError) as caught:
        read_results(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a shipml results.json") and FORGED[name][1] in message and "\n" not in message


def test_read_results_of_a_torn_file_is_one_line(tmp_path):
    path = tmp_path / "results.json"
    write_results(sample(), path)
    path.write_text(path.read_text()[:200])
    with pytest.raises(ShipmlError, match="not a shipml results.json \\(JSONDecodeError"):
        read_results(path)


def test_results_are_validated_when_built_too():
    with pytest.raises(ValidationError):
        CheckResult("contract", "API contract", 10, 10, "ok", "secret")
    assert CheckResult("contract", "API contract", 10, 10, "ok").score == 10.0


def test_not_graded_gives_every_check_zero_and_says_why_once():
    lab = find_lab("serving")
    result = not_graded(lab, "Gate 42", "No submission.toml in your submission.")
    assert [c.id for c in result.checks] == [c.id for c in lab.checks]
    assert result.score == 0 and result.max_score == lab.max_points
    assert result.notes == ["No submission.toml in your submission."] and {c.message for c in result.checks} == {NOT_GRADED}
    assert [c.visibility for c in result.checks] == [c.visibility for c in lab.checks]
    stopped = not_graded(lab, "Gate 42", "Grading stopped after 8 s.", each="Grading stopped after 8 s.")
    assert {c.message for c in stopped.checks} == {"Grading stopped after 8 s."}
