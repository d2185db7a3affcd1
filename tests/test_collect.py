"""``shipml collect``: results.json from every engine into one class roll-up; a torn or forged
file is named, with why, and skipped, never averaged in.

The fixture ``exports/gradescope-reference.json`` is what ``run_autograder`` wrote for the
reference in a simulated Gradescope run (see test_export_gradescope.py): 100 / 100.
"""

from __future__ import annotations

import copy
import csv
import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import shipml

from autograder.engine.report import write_reports
from autograder.engine.results import SubmissionResult
from autograder.engine.spec import find_lab
from autograder.errors import ShipmlError
from autograder.integrations.collect import collect

LAB = find_lab("serving")
FIXTURE = Path(__file__).parent / "fixtures" / "exports" / "gradescope-reference.json"
REAL = json.loads(FIXTURE.read_text())


def as_team(data: dict, team: str) -> dict:
    data = copy.deepcopy(data)
    data["extra_data"]["shipml"]["team"] = team
    return data


def put(root: Path, name: str, data: dict | str) -> Path:
    path = root / name / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _set_check(data: dict, i: int, **fields: float) -> dict:
    data = copy.deepcopy(data)
    for key, value in fields.items():
        data["extra_data"]["shipml"]["checks"][i][key] = value
        data["tests"][i][key] = value
    return data


def _inflate(data: dict) -> dict:
    """The cheapest forgery: full marks plus 50 on one check, totals made to add up."""
    data = _set_check(data, 0, score=60.0)
    data["score"] = 150.0
    return data


def _raise_max(data: dict) -> dict:
    """Score above the lab's points, hidden by raising max_score too."""
    data = _set_check(data, 0, score=60.0, max_score=60.0)
    data["score"] = 150.0
    return data


def _total_only(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["score"] = 150.0  # the tests and the record still say 100
    return data


def _record_only(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["extra_data"]["shipml"]["checks"][7]["score"] = 20.0
    data["extra_data"]["shipml"]["checks"][0]["score"] = 0.0  # record disagrees with tests
    return data


def _bad_visibility(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["tests"][0]["visibility"] = "everyone"
    return data


def _other_lab(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["extra_data"]["shipml"]["lab"] = "beyond-accuracy"
    return data


def _no_record(data: dict) -> dict:
    data = copy.deepcopy(data)
    del data["extra_data"]
    return data


def _string_score(data: dict) -> dict:
    """The record's score as a string: equal to the tests' once coerced, and not a number."""
    data = copy.deepcopy(data)
    data["extra_data"]["shipml"]["checks"][0]["score"] = str(data["extra_data"]["shipml"]["checks"][0]["score"])
    return data


def _extra_field(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["extra_data"]["shipml"]["checks"][0]["bonus"] = 50
    return data


def _torn(data: dict) -> str:
    text = json.dumps(data, indent=2)
    return text[: len(text) // 2]


BAD: dict[str, tuple[Callable[[dict], dict | str], str]] = {
    "inflated": (_inflate, "scores 60, outside 0..10"),
    "max-raised": (_raise_max, "claims 60 points possible; the lab gives 10"),
    "total-forged": (_total_only, "score 150.0 is not the sum of its checks"),
    "record-forged": (_record_only, "its shipml record says"),
    "bad-visibility": (_bad_visibility, "not in Gradescope's results.json schema: at tests/0/visibility"),
    "other-lab": (_other_lab, "graded for lab 'beyond-accuracy'"),
    "no-record": (_no_record, "no shipml record"),
    "string-score": (_string_score, "its shipml record is malformed: checks.0.score Input should be a valid number"),
    "extra-field": (_extra_field, "its shipml record is malformed: checks.0.bonus is not a field shipml writes"),
    "torn": (_torn, "torn or not JSON"),
}


@pytest.fixture
def class_results(tmp_path) -> Path:
    root = tmp_path / "downloads"
    put(root, "good", as_team(REAL, "Team Good"))
    for name, (make, _) in BAD.items():
        put(root, name, make(as_team(REAL, f"Team {name}")))
    return root


def test_torn_and_forged_files_are_named_and_skipped(class_results, tmp_path):
    done = collect(LAB, [class_results], tmp_path / "out")
    assert sorted(done.teams) == ["good"]
    why = {r.path.parent.name: r.why for r in done.rejected}
    assert set(why) == set(BAD)
    for name, (_, expected) in BAD.items():
        assert expected in why[name], (name, why[name])
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [(r["team"], float(r["score"])) for r in rows] == [("Team Good", 100.0)]  # nothing averaged in
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "1 teams; score out of 100: mean 100.0" in summary
    assert all(f"downloads/{name}/results.json" in summary for name in BAD)


def test_the_schema_check_alone_is_not_what_stops_a_forgery():
    """The inflated file is valid against Gradescope's schema: only the lab's points catch it."""
    from jsonschema import Draft202012Validator

    from autograder.integrations.collect import SCHEMA

    validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert not list(validator.iter_errors(_inflate(REAL)))
    assert list(validator.iter_errors(_bad_visibility(REAL)))


def test_results_from_every_engine_merge(tmp_path):
    """grade-all's folder (instructor copy preferred), a Gradescope file and a Classroom artefact
    with public checks only, in one roll-up, keyed by submission: a second result for one team
    is its own row, never merged into the first, and the summary warns of it."""
    result = SubmissionResult.from_dict(REAL["extra_data"]["shipml"])
    local = tmp_path / "grade-all"
    result.team = "Team Local"
    write_reports(result, local / "team-local")  # results.json + instructor/results.json
    gradescope = tmp_path / "gradescope"
    put(gradescope, "123456", as_team(REAL, "Team Gradescope"))
    second = _set_check(REAL, 0, score=0.0)
    second["score"] = 90.0
    put(gradescope, "123457", as_team(second, "Team Local"))  # a second result for one team
    artefact = tmp_path / "artefacts"
    public = SubmissionResult.from_dict(REAL["extra_data"]["shipml"])
    public.team, public.checks = "Team Actions", [c for c in public.checks if c.visibility == "public"]
    write_reports(public, artefact / "shipml-report")
    (artefact / "shipml-report" / "instructor").rename(tmp_path / "dropped")  # an artefact has the team's copy only

    done = collect(LAB, [local, gradescope, artefact], tmp_path / "out")
    assert sorted(done.teams) == ["123456", "123457", "shipml-report", "team-local"]
    assert done.teams["team-local"][1].parent.name == "instructor"
    assert done.rejected == []
    rows = {r["submission"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert float(rows["shipml-report"]["score"]) == 80 and rows["shipml-report"]["accuracy"] == ""
    assert (rows["team-local"]["team"], float(rows["team-local"]["score"])) == ("Team Local", 100)
    assert (rows["123457"]["team"], float(rows["123457"]["score"])) == ("Team Local", 90)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Graded on some checks only" in summary
    assert "duplicate team name 'Team Local' in 2 submissions: 123457, team-local" in summary
    # The layout nbgrader-import reads: <submission>/results.json with the members.
    again = json.loads((tmp_path / "out" / "123456" / "results.json").read_text())
    assert again["extra_data"]["shipml"]["members"] == ["reference"]


def test_two_submissions_with_one_team_name_and_the_same_members_keep_both_grades(tmp_path):
    """The TA's case: a mutant copied from the reference keeps its team name and member ids.
    Both grades stay (keyed by submission), and the console and the summary name the two."""
    grades = tmp_path / "results"
    write_reports(SubmissionResult.from_dict(REAL["extra_data"]["shipml"]), grades / "reference")
    mutant = SubmissionResult.from_dict(_set_check(REAL, 0, score=0.0)["extra_data"]["shipml"])
    write_reports(mutant, grades / "mutant")
    assert mutant.team == "Reference team" and mutant.members == ["reference"]
    proc = shipml("collect", "serving", str(grades), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "2 teams collected, 0 file(s) skipped" in proc.stdout
    rows = {r["submission"]: float(r["score"]) for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows == {"mutant": 90.0, "reference": 100.0}, "both grades kept, none merged or dropped"
    warned = " ".join(proc.stderr.split())  # rich may wrap a long line
    assert "duplicate team name 'Reference team' in 2 submissions: mutant, reference" in warned
    assert "duplicate member id 'reference' in 2 submissions: mutant, reference" in warned
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "duplicate team name 'Reference team' in 2 submissions: mutant, reference" in summary
    assert "duplicate member id 'reference' in 2 submissions: mutant, reference" in summary
    assert "Traceback" not in proc.stderr


def test_cli_names_each_skipped_file_on_one_line(class_results, tmp_path):
    proc = shipml("collect", "serving", str(class_results), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(BAD) and all(line.startswith("skipped ") for line in lines)
    assert "Traceback" not in proc.stderr
    assert f"1 teams collected, {len(BAD)} file(s) skipped" in proc.stdout


def test_nothing_to_collect_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = shipml("collect", "serving", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "no results.json under" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_without_jsonschema_the_hint_installs_what_pyproject_requires(monkeypatch):
    """jsonschema is a base dependency: the hint names its pin from pyproject.toml, no extra."""
    from autograder.integrations.collect import _validator
    from autograder.paths import KIT_ROOT

    base = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in base if d.split(">")[0].split("=")[0].strip() == "jsonschema")
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema now raises ImportError
    with pytest.raises(ShipmlError) as caught:
        _validator()
    assert f"pip install '{pin}'" in str(caught.value) and "extra" not in str(caught.value)
