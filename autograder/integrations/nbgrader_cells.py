"""Harness checks as locked nbgrader task cells (``shipml nbgrader-cells LAB NOTEBOOK``).

One locked markdown *task cell* per check of ``LAB/lab.toml`` goes at the end of an nbgrader
**source** notebook (grade id ``harness_<check>``, the check's points). ``nbgrader
generate_assignment`` then records them in the gradebook, so totals, feedback and ``nbgrader
export`` count them like any other graded cell; :mod:`autograder.integrations.nbgrader_import`
fills them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.engine.spec import CheckSpec, LabSpec
from autograder.errors import ShipmlError

if TYPE_CHECKING:
    import nbformat

TASK_PREFIX = "harness_"
_HEADING_KEY = "harness_heading"  # our own metadata key on the (ungraded) heading cell


def task_cell_id(check_id: str) -> str:
    """The nbgrader grade id of the task cell that holds a harness check's score."""
    return f"{TASK_PREFIX}{check_id}"



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
