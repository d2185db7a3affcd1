"""The harness half of the "beyond accuracy" lab: its one check, proven with `shipml grade`.

The reference notebook re-runs clean in the harness's sandbox (full marks); the raising-cell
mutant does not (0). The nbgrader side of the lab is in test_nbgrader_cycle.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shipml

from autograder.engine.mutants import list_mutants
from autograder.engine.results import read_results
from autograder.engine.spec import find_lab
from autograder.integrations.nbgrader_course import build_submission

LAB = Path(__file__).resolve().parent.parent / "labs" / "beyond-accuracy"
MUTANTS = list_mutants(find_lab(LAB))
SOURCE = LAB / "course" / "source" / "beyond-accuracy" / "beyond-accuracy.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["reference", *(m.name for m in MUTANTS if m.fails is not None)])
def test_notebook_reruns_check(tmp_path, variant):
    """The reference keeps the check's points; each mutant proven through the harness fails
    exactly the checks its ``fails`` lists."""
    folder = tmp_path / "team"
    mutant = {m.name: m for m in MUTANTS}.get(variant)
    expected = 0.0 if mutant is not None and "notebook_reruns" in (mutant.fails or ()) else 2.0
    # The source stands in for the release here: the harness only re-runs the notebook.
    build_submission(SOURCE, SOURCE, folder / "beyond-accuracy.ipynb", mutant)
    starter = (LAB / "starter" / "submission.toml").read_text(encoding="utf-8")
    (folder / "submission.toml").write_text(starter.replace("team-name", f"team-{variant}"), encoding="utf-8")

    proc = shipml("grade", str(LAB), str(folder), "--out", str(tmp_path / "out"), "--quiet")
    result = read_results(tmp_path / "out" / "results.json")
    check = next(c for c in result.checks if c.id == "notebook_reruns")
    assert check.score == expected, f"{check.message}\n{proc.stdout}\n{proc.stderr}"
    assert result.members == ["student-id-1", "student-id-2"]  # what nbgrader-import maps


def test_nbgrader_cells_cli_refuses_a_missing_notebook_without_create(tmp_path):
    from conftest import shipml

    missing = tmp_path / "source" / "typo" / "typo.ipynb"
    proc = shipml("nbgrader-cells", "beyond-accuracy", str(missing))
    assert proc.returncode == 2 and "no such notebook" in proc.stderr and "--create" in proc.stderr
    assert not missing.exists() and "Traceback" not in proc.stderr
    proc = shipml("nbgrader-cells", "serving", str(missing), "--create")
    assert proc.returncode == 0 and missing.exists(), proc.stderr
