"""The nbgrader course around a notebook lab: feedback hygiene and submissions built from the source.

* :class:`StripTracebacks`, a feedback preprocessor for ``nbgrader_config.py``: error outputs keep
  their one-line ``ename: evalue`` and lose the traceback (which would show hidden-test lines),
  and a cell that holds hidden tests shows only that it failed.
* :func:`new_course` copies a lab's course template (``LAB/course``: ``nbgrader_config.py`` and
  ``source/``) to a fresh course folder, refusing to overwrite one.
* :func:`build_submission` turns the released notebook into a submission: the reference answers
  from the source notebook, or those answers with some cells replaced (a *mutant*, see
  ``LAB/mutants/mutants.toml``). The tests and the benchmark use it;
  ``python -m autograder.integrations.nbgrader_course proof LAB COURSE`` (:func:`write_proof_submissions`)
  lets an instructor prove the grading on the reference and the mutants before release.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from autograder.engine.mutants import Mutant, list_mutants
from autograder.engine.spec import find_lab
from autograder.errors import ShipmlError

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
_SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
HIDDEN_FAILED = "a test in this cell failed (hidden tests are not shown)"


class StripTracebacks(NbGraderPreprocessor):
    """Feedback preprocessor: no tracebacks, and no detail from cells that hold hidden tests.

    Run it *before* ``ClearHiddenTests``, which removes the hidden region it looks for.
    """

    enabled = Bool(True, help="Whether to strip tracebacks from feedback").tag(config=True)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        if cell.cell_type != "code":
            return cell, resources
        hidden = HIDDEN_BEGIN in cell.source
        for output in cell.outputs:
            if output.output_type == "error":
                if hidden:
                    output.evalue = HIDDEN_FAILED
                output.traceback = [f"{output.ename}: {output.evalue}" if output.evalue else output.ename]
            elif hidden and output.output_type == "stream" and output.name == "stderr":
                output.text = "(output of a cell with hidden tests is not shown)\n"
        return cell, resources


def new_course(lab_dir: Path, dest: Path) -> Path:
    """Copy ``lab_dir/course`` (config and source notebooks) into a new course folder ``dest``."""
    template = Path(lab_dir) / "course"
    if not (template / "nbgrader_config.py").is_file():
        raise ShipmlError(f"{template}: no nbgrader_config.py; this lab has no nbgrader course")
    if Path(dest).exists() and any(Path(dest).iterdir()):
        raise ShipmlError(f"{dest}: exists and is not empty; a course folder holds grades, pick a new folder")
    shutil.copytree(template, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return Path(dest)


def _grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


def build_submission(source: Path, release: Path, dest: Path, mutant: Mutant | None = None) -> Path:
    """Write ``dest``: the released notebook with the reference answers (and a mutant's changes).

    Answers come from the source notebook's solution cells, solution markers removed. Test
    cells stay as released (autograde restores hidden tests from the gradebook anyway).
    """
    released = nbformat.read(release, as_version=4)
    answers = {
        _grade_id(c): _SOLUTION_MARKERS.sub("", c.source)
        for c in nbformat.read(source, as_version=4).cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }
    base = mutant.base if mutant else "solution"
    changes = dict(mutant.cells) if mutant else {}
    unknown = set(changes) - {_grade_id(c) for c in released.cells}
    if unknown:
        raise ShipmlError(f"mutant {mutant.name if mutant else ''}: no cell {', '.join(sorted(unknown))} in {release}")
    for cell in released.cells:
        gid = _grade_id(cell)
        if gid in changes:
            cell.source = changes[gid]
        elif base == "solution" and gid in answers:
            cell.source = answers[gid]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(released, str(dest))
    return dest


def write_proof_submissions(lab_dir: Path, course_dir: Path, assignment: str) -> dict[str, float]:
    """Put the reference answers and every mutant in ``submitted/proof-<name>/``.

    Returns each proof student's expected autograded points (reference: all of them; a mutant:
    all minus its ``lost``). Run ``nbgrader autograde`` and compare, then remove the students.
    """
    course_dir = Path(course_dir)
    source = course_dir / "source" / assignment / f"{assignment}.ipynb"
    release = course_dir / "release" / assignment / f"{assignment}.ipynb"
    if not release.is_file():
        raise ShipmlError(f"{release}: not found; run 'nbgrader generate_assignment {assignment}' first")
    total = sum(
        float(c.metadata["nbgrader"]["points"])
        for c in nbformat.read(source, as_version=4).cells
        if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")
    )
    expected: dict[str, float] = {}
    for mutant in [None, *list_mutants(find_lab(lab_dir))]:
        student = f"proof-{mutant.name if mutant else 'reference'}"
        build_submission(source, release, course_dir / "submitted" / student / assignment / f"{assignment}.ipynb", mutant)
        expected[student] = total - sum(mutant.lost.values()) if mutant else total
    return expected


def main(argv: list[str] | None = None) -> int:
    """``python -m autograder.integrations.nbgrader_course proof LAB COURSE [ASSIGNMENT]``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4) or args[0] != "proof":
        print("usage: python -m autograder.integrations.nbgrader_course proof LAB COURSE [ASSIGNMENT]", file=sys.stderr)
        return 2
    lab, course = Path(args[1]), Path(args[2])
    assignment = args[3] if len(args) == 4 else lab.resolve().name
    try:
        expected = write_proof_submissions(lab, course, assignment)
    except ShipmlError as exc:
        print(f"shipml: error: {exc}", file=sys.stderr)
        return exc.exit_code
    for student, points in expected.items():
        print(f"{student:28} expect {points:g} autograded points")
    print(f"Next: nbgrader autograde {assignment}, compare in the formgrader or 'nbgrader export', then remove "
          f"them: for s in {' '.join(expected)}; do nbgrader db student remove $s --force; done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
