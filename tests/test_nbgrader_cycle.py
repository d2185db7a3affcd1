"""The whole nbgrader cycle of the "beyond accuracy" lab, in a temporary course.

generate_assignment -> submissions (reference, wrong answers, infinite loop, raising cell, the
notebook as released) -> one autograde call -> TA grades the written answers -> harness results
-> shipml nbgrader-import -> generate_feedback -> export. Plus fast tests of the pieces.
"""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main as shipml_main
from autograder.engine.mutants import list_mutants
from autograder.engine.results import CheckResult, SubmissionResult, write_results
from autograder.engine.spec import find_lab, load_lab
from autograder.errors import ShipmlError
from autograder.integrations.nbgrader_cells import add_task_cells, task_cell_id
from autograder.integrations.nbgrader_course import StripTracebacks, build_submission, new_course
from autograder.integrations.nbgrader_import import import_harness_scores

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "beyond-accuracy"
NAME = "beyond-accuracy"
SOURCE = LAB / "course" / "source" / NAME / f"{NAME}.ipynb"
NBGRADER = str(Path(sys.executable).parent / "nbgrader")
MANUAL = {"role_data_scientist": 2.0, "role_engineer": 2.0, "role_traveller": 2.0}
# student id -> mutant ("reference" = the source's answers); nosub never hands in a notebook.
STUDENTS = {
    "s_ref": "reference",
    "s_wrong": "wrong_answers",
    "s_loop": "infinite_loop",
    "s_raise": "raising_cell",
    "s_empty": "empty",
    "s_abs": "shadowed_abs",
    "s_fitval": "fit_on_validation",
}
# team folder -> (members, harness score written by the harness; 3 > 2 points is capped)
TEAMS = {
    "team-a": (["s_ref", "s_nosub"], 2.0),
    "team-b": (["s_wrong"], 0.0),
    "team-c": (["s_loop", "s_raise"], 3.0),
    "team-d": (["s_empty", "s_abs", "s_fitval"], 1.0),
}


def _cells(nb_path: Path) -> dict[str, dict]:
    nb = nbformat.read(nb_path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # nbgrader runs `alembic` and the kernel from PATH: put this environment's bin first.
    env = {**os.environ, "PATH": f"{Path(NBGRADER).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([NBGRADER, *args], cwd=course, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


# ------------------------------------------------------------------ fast tests


def test_committed_notebook_has_current_task_cells(tmp_path):
    lab = load_lab(LAB)
    copy = tmp_path / "nb.ipynb"
    copy.write_bytes(SOURCE.read_bytes())
    assert add_task_cells(lab, copy) == 0, "run: shipml nbgrader-cells labs/beyond-accuracy <source notebook>"
    assert copy.read_bytes() == SOURCE.read_bytes()
    cells = _cells(SOURCE)
    for check in lab.checks:
        meta = cells[task_cell_id(check.id)].metadata["nbgrader"]
        assert meta == {"schema_version": 3, "task": True, "grade": False, "solution": False,
                        "locked": True, "grade_id": task_cell_id(check.id), "points": check.points}


def test_task_cells_refresh_and_create(tmp_path):
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    text = (LAB / "lab.toml").read_text()
    (lab_dir / "lab.toml").write_text(text)
    nb = tmp_path / "grading" / "sheet.ipynb"
    assert add_task_cells(load_lab(lab_dir), nb) > 0  # created: a harness-only assignment
    assert add_task_cells(load_lab(lab_dir), nb) == 0
    (lab_dir / "lab.toml").write_text(text.replace("points = 2", "points = 5"))
    assert add_task_cells(load_lab(lab_dir), nb) == 1
    assert _cells(nb)["harness_notebook_reruns"].metadata["nbgrader"]["points"] == 5
    assert sum(1 for c in nbformat.read(nb, as_version=4).cells if "Harness checks" in c.source) == 1


def test_every_graded_cell_has_valid_metadata():
    cells = _cells(SOURCE)
    tests = {k: c for k, c in cells.items() if c.metadata["nbgrader"]["grade"] and c.cell_type == "code"}
    assert sum(c.metadata["nbgrader"]["points"] for c in tests.values()) == 18
    assert all("BEGIN HIDDEN TESTS" in c.source for c in tests.values())
    for gid, cell in cells.items():
        assert cell.metadata["nbgrader"]["schema_version"] == 3, gid
    nb = nbformat.read(SOURCE, as_version=4)
    assert all(c.metadata.get("nbgrader") != {} for c in nb.cells)


def test_strip_tracebacks_hides_hidden_cells():
    cell = nbformat.v4.new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="f(2) == 4",
                                           traceback=["\x1b[31mTraceback", "assert f(2) == 4"])]
    StripTracebacks().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].traceback == ["AssertionError: a test in this cell failed (hidden tests are not shown)"]


def test_import_refuses_bad_input_before_writing(tmp_path):
    with pytest.raises(ShipmlError, match="no <team>/results.json"):
        import_harness_scores(LAB, tmp_path, course_dir=tmp_path, assignment=NAME, notebook=NAME)
    other = SubmissionResult(lab="serving", team="t", members=["a"], checks=[])
    write_results(other, tmp_path / "t" / "results.json")
    with pytest.raises(ShipmlError, match="results of lab 'serving'"):
        import_harness_scores(LAB, tmp_path, course_dir=tmp_path, assignment=NAME, notebook=NAME)


def test_hidden_harness_message_is_redacted(tmp_path):
    from autograder.integrations.nbgrader_import import _comment

    check = CheckResult("x", "desc", 1, 2, "secret detail", visibility="hidden")
    assert "secret" not in _comment(check, 2) and "1 / 2" in _comment(check, 2)


# ------------------------------------------------------------------ the whole cycle


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    course = new_course(LAB, tmp_path_factory.mktemp("nbgrader") / "course")
    _nbgrader(course, "generate_assignment", NAME)
    release = course / "release" / NAME / f"{NAME}.ipynb"
    mutants = {m.name: m for m in list_mutants(find_lab(LAB))}
    for student, variant in STUDENTS.items():
        dest = course / "submitted" / student / NAME / f"{NAME}.ipynb"
        build_submission(SOURCE, release, dest, mutants.get(variant))
    # One call for the class; a 20 s cell limit (the course has 30) keeps the infinite loop cheap.
    autograde = _nbgrader(course, "autograde", NAME, "--Execute.timeout=20")
    (course / "autograde.log").write_text(autograde.stderr)

    from nbgrader.api import Gradebook

    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db, course_id="shipml-beyond-accuracy") as gb:  # a TA grades the written answers of the reference student
        for gid, points in MANUAL.items():
            gb.find_grade(gid, NAME, NAME, "s_ref").manual_score = points
        gb.db.commit()
        auto = {s: {g.name: g.score for g in gb.find_submission_notebook(NAME, NAME, s).grades}
                for s in STUDENTS}

    results = course.parent / "results"
    for folder, (members, score) in TEAMS.items():
        check = CheckResult("notebook_reruns", "reruns", score, 2.0,
                            "nbconvert --execute exited 0" if score else "exit 1: NameError in cell 7")
        write_results(SubmissionResult(lab=NAME, team=folder.upper(), members=members, checks=[check]),
                      results / folder / "results.json")
    assert shipml_main(["nbgrader-import", str(LAB), str(results), "--course", str(course)]) == 0

    _nbgrader(course, "generate_feedback", NAME)
    _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as fh:
        grades = {row["student_id"]: row for row in csv.DictReader(fh)}
    return {"course": course, "auto": auto, "grades": grades, "log": autograde.stderr, "db": db}


def _expected_autograded(student: str) -> dict[str, float]:
    points = {gid: c.metadata["nbgrader"]["points"] for gid, c in _cells(SOURCE).items()
              if c.metadata["nbgrader"]["grade"] and c.cell_type == "code"}
    variant = STUDENTS[student]
    lost = {} if variant == "reference" else {m.name: m for m in list_mutants(find_lab(LAB))}[variant].lost
    return {gid: p - lost.get(gid, 0) for gid, p in points.items()}


@pytest.mark.slow
@pytest.mark.parametrize("student", list(STUDENTS))
def test_autograde_scores_each_cell(cycle, student):
    got = {gid: score for gid, score in cycle["auto"][student].items() if gid.startswith("test_")}
    assert got == _expected_autograded(student), cycle["log"][-3000:]


@pytest.mark.slow
def test_reference_gets_full_marks(cycle):
    assert sum(_expected_autograded("s_ref").values()) == 18
    assert float(cycle["grades"]["s_ref"]["score"]) == float(cycle["grades"]["s_ref"]["max_score"]) == 26


@pytest.mark.slow
def test_export_totals_are_notebook_plus_harness(cycle):
    harness = {m: min(score, 2.0) for members, score in TEAMS.values() for m in members}
    for student, row in cycle["grades"].items():
        notebook = sum(_expected_autograded(student).values()) if student in STUDENTS else 0.0
        manual = sum(MANUAL.values()) if student == "s_ref" else 0.0
        assert float(row["score"]) == pytest.approx(notebook + manual + harness[student]), student
        assert float(row["max_score"]) == 26
    assert set(cycle["grades"]) == set(STUDENTS) | {"s_nosub"}


@pytest.mark.slow
def test_import_is_idempotent_and_survives_force_autograde(cycle):
    from nbgrader.api import Gradebook

    summary = import_harness_scores(LAB, cycle["course"].parent / "results", course_dir=cycle["course"],
                                    assignment=NAME, notebook=NAME)
    assert summary.created_submissions == [] and summary.grades_written == sum(len(members) for members, _ in TEAMS.values())
    _nbgrader(cycle["course"], "autograde", NAME, "--force", "--student", "s_ref")
    with Gradebook(cycle["db"], course_id="shipml-beyond-accuracy") as gb:
        grade = gb.find_grade("harness_notebook_reruns", NAME, NAME, "s_loop")
        comment = gb.find_comment("harness_notebook_reruns", NAME, NAME, "s_loop")
        assert (grade.manual_score, grade.needs_manual_grade) == (2.0, False)
        assert comment.manual_comment.startswith("shipml harness, notebook_reruns: 2 / 2.")
        ref = gb.find_grade("harness_notebook_reruns", NAME, NAME, "s_ref")
        assert (ref.score, ref.needs_manual_grade) == (2.0, False)  # autograde --force kept it
        assert gb.find_submission_notebook(NAME, NAME, "s_ref").score == 26


@pytest.mark.slow
def test_feedback_has_no_hidden_tests_and_no_tracebacks(cycle):
    hidden, shown = [], set()
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        before, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
        region, _, after = rest.partition("### END HIDDEN TESTS")
        hidden += [line.strip() for line in region.splitlines() if len(line.strip()) > 15]
        shown |= {line.strip() for line in (before + after).splitlines()}
    hidden = [line for line in hidden if line not in shown]  # e.g. a line the answer has too
    assert len(hidden) > 20
    for student in STUDENTS:
        page = cycle["course"] / "feedback" / student / NAME / f"{NAME}.html"
        body = re.sub(r"<(style|script)\b.*?</\1>", "", page.read_text(encoding="utf-8"), flags=re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", body))
        assert "assert majority_class([0, 0, 1]) == 0" in text  # visible tests are shown
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden test source in feedback: {leaked[:3]}"
        for sign in ("Traceback", "most recent call", "\x1b[", "Cell In[", "---->", "site-packages"):
            assert sign not in text, f"{student}: traceback in feedback ({sign!r})"
        assert "shipml harness, notebook_reruns" in text, f"{student}: no harness score in feedback"
    raised = (cycle["course"] / "feedback" / "s_raise" / NAME / f"{NAME}.html").read_text()
    assert "KeyError" in raised


HARNESS_LAB = """
[lab]
name = "harness-only"
title = "A lab graded by the harness alone"

[lab.commands.test]
placeholders = ["python"]

[[checks]]
id = "tests_pass"
function = "autograder.checks.common:check_command_succeeds"
points = 3
role = "software-engineer"
description = "The team's tests pass"

[[checks]]
id = "hidden_quality"
function = "autograder.checks.common:check_command_succeeds"
points = 2
visibility = "hidden"
role = "data-scientist"
description = "Quality on hidden data"
"""


@pytest.mark.slow
def test_harness_only_assignment(tmp_path):
    """A harness lab as its own assignment: a notebook of task cells, no student notebook at all."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "lab.toml").write_text(HARNESS_LAB)
    course = tmp_path / "course"
    (course / "source" / "harness-only").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "demo"\n')
    assert add_task_cells(load_lab(lab), course / "source" / "harness-only" / "harness-only.ipynb") == 3
    _nbgrader(course, "generate_assignment", "harness-only")
    checks = [CheckResult("tests_pass", "t", 3, 3, "ok"), CheckResult("hidden_quality", "q", 1, 2, "secret", visibility="hidden")]
    write_results(SubmissionResult("harness-only", "T1", checks, members=["u1", "u2"]), tmp_path / "res" / "t1" / "results.json")
    write_results(SubmissionResult("harness-only", "T2", checks[:1], members=[]), tmp_path / "res" / "t2" / "results.json")
    summary = import_harness_scores(lab, tmp_path / "res", course_dir=course, assignment="harness-only", notebook="harness-only")
    assert summary.created_submissions == ["u1", "u2"] and summary.unmapped == ["t2"]
    _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(fh)}
    assert rows == {"u1": (4.0, 5.0), "u2": (4.0, 5.0)}
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="demo") as gb:
        comment = gb.find_comment("harness_hidden_quality", "harness-only", "harness-only", "u1").manual_comment
    assert "secret" not in comment and "1 / 2" in comment
