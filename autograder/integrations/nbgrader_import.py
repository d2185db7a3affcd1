"""Harness scores into the nbgrader gradebook (``shipml nbgrader-import LAB RESULTS_DIR``).

It runs after ``nbgrader autograde``. It reads each team's ``RESULTS_DIR/<team>/results.json``
(written by ``shipml grade``) and writes every check's score, for every member of the team, into
that check's task cell grade (see :mod:`autograder.integrations.nbgrader_cells`):
``manual_score`` capped at the cell's points, ``needs_manual_grade = False``, and the harness
message as the comment (hidden checks get the redacted message only).

Scores are read from the harness's files by this process, never from inside a student's
kernel, where a results file (or ``json.load`` itself) can be forged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.engine.results import CheckResult, SubmissionResult, read_results
from autograder.engine.spec import LabSpec, find_lab, load_submission
from autograder.errors import ShipmlError
from autograder.integrations.nbgrader_cells import task_cell_id

RESULTS_FILE = "results.json"


@dataclass
class TeamImport:
    """What was imported for one team."""

    team: str
    folder: str
    students: list[str]
    score: float
    max_score: float
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What ``import_harness_scores`` wrote, per team, and what it could not."""

    assignment: str
    notebook: str
    teams: list[TeamImport] = field(default_factory=list)
    created_submissions: list[str] = field(default_factory=list)
    without_results: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # result folders naming no member: not imported
    grades_written: int = 0

    @property
    def students(self) -> list[str]:
        return sorted(s for t in self.teams for s in t.students)


@dataclass
class _Planned:
    team: TeamImport
    scores: dict[str, tuple[float, str]]  # grade id -> (score, comment)


def _members(folder: Path, result: SubmissionResult, submissions_dir: Path | None) -> list[str]:
    if submissions_dir is not None and (submissions_dir / folder.name / "submission.toml").is_file():
        spec = load_submission(submissions_dir / folder.name)
        return [m.id for m in spec.team.members]
    return list(result.members)


def _comment(check: CheckResult, points: float) -> str:
    shown = check.redacted()
    return f"shipml harness, {check.id}: {min(check.score, points):g} / {points:g}. {shown.message}".strip()


def _plan(lab: LabSpec, results_dir: Path, submissions_dir: Path | None) -> list[_Planned]:
    """Read and validate every results file before the gradebook is touched."""
    if not results_dir.is_dir():
        raise ShipmlError(f"{results_dir}: no such folder; pass the folder where 'shipml grade-all' wrote results")
    files = sorted(results_dir.glob(f"*/{RESULTS_FILE}"))
    if not files:
        raise ShipmlError(f"{results_dir}: no <team>/{RESULTS_FILE} inside; grade the class with 'shipml grade-all' first")
    points = {c.id: c.points for c in lab.checks}
    owner: dict[str, str] = {}
    plans: list[_Planned] = []
    for file in files:
        result = read_results(file)
        if result.lab != lab.lab.name:
            raise ShipmlError(f"{file}: results of lab '{result.lab}', not '{lab.lab.name}'; pass the lab that was graded")
        students = _members(file.parent, result, submissions_dir)
        for student in students:
            if student in owner:
                raise ShipmlError(f"student '{student}' is in two teams ('{owner[student]}' and '{result.team}'); fix their submission.toml")
            owner[student] = result.team
        team = TeamImport(result.team, file.parent.name, sorted(students), 0.0, lab.max_points)
        scores: dict[str, tuple[float, str]] = {}
        by_id = {c.id: c for c in result.checks}
        for check_id, cap in points.items():
            check = by_id.get(check_id)
            if check is None:
                scores[task_cell_id(check_id)] = (0.0, f"shipml harness, {check_id}: 0 / {cap:g}. No result for this check.")
                team.notes.append(f"{check_id}: no result, 0 written")
                continue
            if check.score > cap:
                team.notes.append(f"{check_id}: {check.score:g} capped at {cap:g}")
            scores[task_cell_id(check_id)] = (max(0.0, min(check.score, cap)), _comment(check, cap))
        for extra in sorted(set(by_id) - set(points)):
            team.notes.append(f"{extra}: not in lab.toml, skipped")
        team.score = round(sum(s for s, _ in scores.values()), 4)
        plans.append(_Planned(team, scores))
    return plans


def _check_gradebook(gb: Any, lab: LabSpec, assignment: str, notebook: str) -> None:
    from nbgrader.api import MissingEntry

    try:
        record = gb.find_assignment(assignment)
    except MissingEntry:
        raise ShipmlError(f"the gradebook has no assignment '{assignment}'; run 'nbgrader generate_assignment {assignment}' first") from None
    notebooks = {nb.name: nb for nb in record.notebooks}
    if notebook not in notebooks:
        raise ShipmlError(
            f"assignment '{assignment}' has no notebook '{notebook}' (it has: {', '.join(sorted(notebooks)) or 'none'}); pass --notebook"
        )
    have = {cell.name for cell in notebooks[notebook].task_cells}
    missing = [task_cell_id(c.id) for c in lab.checks if task_cell_id(c.id) not in have]
    if missing:
        raise ShipmlError(
            f"notebook '{notebook}' has no task cell {', '.join(missing)}; run 'shipml nbgrader-cells' on its source, "
            f"then 'nbgrader generate_assignment {assignment} --force'"
        )


def _course_id(db_url: str) -> str:
    """The gradebook's one course id (nbgrader's Gradebook would otherwise add "default_course")."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(text("SELECT id FROM course"))]
    except Exception as exc:
        raise ShipmlError(f"{db_url}: not an nbgrader gradebook ({exc.__class__.__name__}); pass --course or --db") from None
    finally:
        engine.dispose()
    if len(ids) > 1:  # nbgrader's Gradebook(db_url) adds "default_course" when opened without an id
        ids = [i for i in ids if i != "default_course"]
    if len(ids) != 1:
        raise ShipmlError(f"{db_url}: holds {len(ids)} courses ({', '.join(ids)}); shipml imports into a gradebook of one course")
    return str(ids[0])


def import_harness_scores(
    lab_dir: Path,
    results_dir: Path,
    *,
    course_dir: Path,
    assignment: str,
    notebook: str,
    submissions_dir: Path | None = None,
    db_url: str | None = None,
) -> ImportSummary:
    """Write each team's harness scores into every member's task-cell grades.

    Members come from each ``results.json`` (the harness copies them from the team's
    ``submission.toml``); with ``submissions_dir``, from ``submissions_dir/<team>/submission.toml``
    instead, where ``<team>`` is the results folder's name. Member ids are nbgrader student ids.

    A result that names no member (say, a folder that had no submission.toml) cannot reach a
    student: it is skipped and listed in ``ImportSummary.unmapped`` (the CLI exits 1).

    Safety: every results file is read and checked, and the gradebook is checked for the
    assignment and its task cells, before anything is written. Students and empty submissions
    that nbgrader does not know yet are then created through nbgrader's own API (which commits
    each; they carry no score). All scores and comments are written in **one transaction for
    the whole class**: if any write fails, it is rolled back, no score changes, and a
    ``ShipmlError`` says so. Re-running the import overwrites the same cells (idempotent).
    """
    from nbgrader.api import Gradebook, MissingEntry


    lab = find_lab(lab_dir)
    plans = _plan(lab, Path(results_dir), submissions_dir)
    summary = ImportSummary(assignment, notebook, unmapped=[p.team.folder for p in plans if not p.team.students])
    plans = [p for p in plans if p.team.students]
    course_dir = Path(course_dir)
    if db_url is None:
        db_file = course_dir / "gradebook.db"
        if not db_file.is_file():
            raise ShipmlError(f"{db_file}: no gradebook; run nbgrader in the course folder first, or pass --course/--db")
        db_url = f"sqlite:///{db_file.resolve()}"
    with Gradebook(db_url, course_id=_course_id(db_url)) as gb:
        _check_gradebook(gb, lab, assignment, notebook)
        for plan in plans:
            for student in plan.team.students:
                gb.update_or_create_student(student)
                try:
                    gb.find_submission(assignment, student)
                except MissingEntry:
                    with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warning
                        warnings.simplefilter("ignore")
                        gb.update_or_create_submission(assignment, student)
                    summary.created_submissions.append(student)
        try:
            for plan in plans:
                for student in plan.team.students:
                    for grade_id, (score, comment) in plan.scores.items():
                        grade = gb.find_grade(grade_id, notebook, assignment, student)
                        grade.manual_score = min(score, float(grade.max_score))
                        grade.needs_manual_grade = False
                        gb.find_comment(grade_id, notebook, assignment, student).manual_comment = comment
                        summary.grades_written += 1
            gb.db.commit()
        except Exception as exc:
            gb.db.rollback()
            raise ShipmlError(f"import failed, no score was written ({exc.__class__.__name__}: {exc})") from None
        imported = {s for p in plans for s in p.team.students}
        submitted = {sub.student.id for sub in gb.find_assignment(assignment).submissions}
        summary.without_results = sorted(submitted - imported)
    summary.teams = [p.team for p in plans]
    return summary
