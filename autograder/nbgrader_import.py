"""Harness scores into the nbgrader gradebook, as locked task cells.

Two steps, each one CLI verb:

1. ``shipml nbgrader-cells LAB NOTEBOOK`` writes one locked markdown *task cell* per check of
   ``LAB/lab.toml`` at the end of an nbgrader **source** notebook (grade id ``harness_<check>``,
   the check's points). ``nbgrader generate_assignment`` then records them in the gradebook, so
   totals, feedback and ``nbgrader export`` count them like any other graded cell.
2. ``shipml nbgrader-import LAB RESULTS_DIR`` runs after ``nbgrader autograde``. It reads each
   team's ``RESULTS_DIR/<team>/results.json`` (written by ``shipml grade``) and writes every
   check's score, for every member of the team, into that task cell's grade: ``manual_score``
   capped at the cell's points, ``needs_manual_grade = False``, and the harness message as the
   comment (hidden checks get the redacted message only).

Scores are read from the harness's files by this process, never from inside a student's
kernel, where a results file (or ``json.load`` itself) can be forged.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.errors import ShipmlError
from autograder.results import CheckResult, SubmissionResult, read_results
from autograder.spec import CheckSpec, LabSpec, load_submission

if TYPE_CHECKING:
    import nbformat

TASK_PREFIX = "harness_"
RESULTS_FILE = "results.json"
_HEADING_KEY = "harness_heading"  # our own metadata key on the (ungraded) heading cell


def task_cell_id(check_id: str) -> str:
    """The nbgrader grade id of the task cell that holds a harness check's score."""
    return f"{TASK_PREFIX}{check_id}"


# --------------------------------------------------------------------------- task cells


def _heading_cell(lab: LabSpec) -> nbformat.NotebookNode:
    import nbformat  # imported here: it costs about a second, and most verbs never need it

    cell = nbformat.v4.new_markdown_cell(
        f"## Harness checks: {lab.lab.title}\n\n"
        "The cells below hold the scores of the system-level checks that `shipml grade` runs on "
        "your team's submission. The teaching staff fill them in; there is nothing to write here."
    )
    cell.metadata["shipml"] = {_HEADING_KEY: True}
    return cell


def _task_cell(check: CheckSpec) -> nbformat.NotebookNode:
    import nbformat

    tag = f", ML Test Score: {check.ml_test_score}" if check.ml_test_score else ""
    text = check.description if check.description.endswith(".") else f"{check.description}."
    cell = nbformat.v4.new_markdown_cell(
        f"**Harness check `{check.id}`** ({check.points:g} points, {check.visibility}{tag})\n\n{text}"
    )
    cell.metadata["nbgrader"] = {
        "schema_version": 3,
        "task": True,
        "grade": False,
        "solution": False,
        "locked": True,
        "grade_id": task_cell_id(check.id),
        "points": check.points,
    }
    return cell


def _is_harness_cell(cell: dict[str, Any]) -> bool:
    meta = cell.get("metadata", {})
    if meta.get("shipml", {}).get(_HEADING_KEY):
        return True
    return str(meta.get("nbgrader", {}).get("grade_id", "")).startswith(TASK_PREFIX)


def _name(cell: dict[str, Any]) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", _HEADING_KEY))


def _key(cell: dict[str, Any]) -> tuple[str, str, Any]:
    return (cell["cell_type"], cell["source"], cell.get("metadata", {}).get("nbgrader"))


def add_task_cells(lab: LabSpec, notebook_path: Path) -> int:
    """Generate or refresh the lab's locked task cells at the end of ``notebook_path``.

    Every existing harness cell (grade id ``harness_*`` and our heading) is replaced by cells
    made from ``lab.toml`` now, in the lab's order; other cells are left alone. A missing
    notebook is created holding only the task cells (an assignment graded by the harness
    alone). Idempotent: returns how many cells were added, changed or removed, and does not
    rewrite the file when that is 0.
    """
    import nbformat

    notebook_path = Path(notebook_path)
    if notebook_path.exists():
        try:
            nb = nbformat.read(notebook_path, as_version=4)
        except Exception as exc:  # nbformat raises several types for a broken file
            raise ShipmlError(f"{notebook_path}: not a readable notebook ({exc})") from None
    else:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells.append(nbformat.v4.new_markdown_cell(f"# {lab.lab.title}"))
    old = [c for c in nb.cells if _is_harness_cell(c)]
    kept = [c for c in nb.cells if not _is_harness_cell(c)]
    new = [_heading_cell(lab), *(_task_cell(c) for c in lab.checks)]
    old_keys = {_name(c): _key(c) for c in old}
    new_keys = {_name(c): _key(c) for c in new}
    if list(old_keys.items()) == list(new_keys.items()) and nb.cells[len(kept):] == old:
        return 0
    for cell in new:  # keep cell ids stable for cells that only changed text
        previous = next((c.get("id") for c in old if _name(c) == _name(cell)), None)
        if previous:
            cell["id"] = previous
    names = set(old_keys) | set(new_keys)
    changed = sum(1 for n in names if old_keys.get(n) != new_keys.get(n))
    nb.cells = [*kept, *new]
    notebook_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(notebook_path))
    return max(changed, 1)


# --------------------------------------------------------------------------- the import


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

    from autograder.catalogue import find_lab

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


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``shipml nbgrader-import``."""
    parser.add_argument("lab", type=Path, help="a lab's name under the kit's labs/ (e.g. serving), or its folder")
    parser.add_argument("results_dir", type=Path, help="folder with one <team>/results.json per team")
    parser.add_argument("--course", type=Path, default=Path("."), help="the nbgrader course folder (default: .)")
    parser.add_argument("--assignment", help="nbgrader assignment name (default: the lab's name)")
    parser.add_argument("--notebook", help="notebook holding the task cells, without .ipynb (default: the assignment name)")
    parser.add_argument("--submissions", type=Path, help="map teams to members from <SUBMISSIONS>/<team>/submission.toml")
    parser.add_argument("--db", help="gradebook URL if not <course>/gradebook.db (nbgrader's CourseDirectory.db_url)")


def run(args: argparse.Namespace) -> int:
    """``shipml nbgrader-import``: import, then print one row per team."""
    from rich.console import Console
    from rich.table import Table

    from autograder.catalogue import find_lab

    assignment = args.assignment or find_lab(args.lab).lab.name
    summary = import_harness_scores(
        args.lab,
        args.results_dir,
        course_dir=args.course,
        assignment=assignment,
        notebook=args.notebook or assignment,
        submissions_dir=args.submissions,
        db_url=args.db,
    )
    table = Table(title=f"Harness scores in gradebook: {summary.assignment}/{summary.notebook}")
    for name in ("team", "students", "harness score", "notes"):
        table.add_column(name, justify="right" if name == "harness score" else "left")
    for team in summary.teams:
        table.add_row(team.team, ", ".join(team.students), f"{team.score:g} / {team.max_score:g}", "; ".join(team.notes))
    console = Console()
    console.print(table)
    console.print(f"{summary.grades_written} grades written for {len(summary.students)} students in one transaction.")
    if summary.created_submissions:
        console.print(f"No notebook submitted, empty submission created: {', '.join(summary.created_submissions)}")
    if summary.without_results:
        console.print(f"[yellow]Submitted but no harness result (harness cells stay ungraded): {', '.join(summary.without_results)}[/]")
    if summary.unmapped:
        console.print(
            f"[red]Not imported, the results name no member: {', '.join(summary.unmapped)}. Fix their "
            "submission.toml and regrade, or pass --submissions; then run the import again.[/]"
        )
        return 1
    return 0


def add_cells_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``shipml nbgrader-cells``."""
    parser.add_argument("lab", type=Path, help="a lab's name under the kit's labs/ (e.g. serving), or its folder")
    parser.add_argument("notebook", type=Path, help="the nbgrader source notebook")
    parser.add_argument("--create", action="store_true", help="create the notebook if it is missing (a harness-only assignment)")


def run_cells(args: argparse.Namespace) -> int:
    """``shipml nbgrader-cells``: add or refresh the task cells, say what changed."""
    from autograder.catalogue import find_lab

    lab = find_lab(args.lab)
    if not args.notebook.exists() and not args.create:
        raise ShipmlError(
            f"{args.notebook}: no such notebook; give the path of the assignment's source notebook "
            "(e.g. source/<assignment>/<assignment>.ipynb in the course folder), or add --create for a harness-only assignment"
        )
    changed = add_task_cells(lab, args.notebook)
    points = sum(c.points for c in lab.checks)
    if changed:
        print(f"{args.notebook}: {changed} task cell(s) written for {len(lab.checks)} checks ({points:g} points).")
        print("Next: nbgrader generate_assignment <assignment> --force (in the course folder).")
    else:
        print(f"{args.notebook}: task cells already match {args.lab}/lab.toml; nothing to do.")
    return 0

