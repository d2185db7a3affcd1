"""results.json follows Gradescope's autograder schema; reports redact hidden checks."""

from __future__ import annotations

import json

import jsonschema

from autograder.engine.report import write_reports
from autograder.engine.results import CheckResult, SubmissionResult, read_results

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
