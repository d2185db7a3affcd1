"""The harness half of the "beyond accuracy" lab, as nbgrader needs it.

Its proof through ``shipml grade-all`` (the reference notebook re-runs clean in the harness's
sandbox: full marks; the starter and the raising-cell mutant do not: 0) is test_labs.py's, as for
every lab. Here: what ``shipml nbgrader-import`` relies on, and the task-cell command. The
nbgrader side of the lab is in test_nbgrader_cycle.py.
"""

from __future__ import annotations

from conftest import shipml

from autograder.engine.results import read_results
from autograder.engine.spec import find_lab, load_submission

LAB = find_lab("beyond-accuracy")


def test_every_harness_result_names_the_members_nbgrader_import_maps(graded_lab):
    """Each team's results.json lists its members' student ids, which nbgrader-import maps to
    the gradebook's students (from the team's submission.toml)."""
    members = [m.id for m in load_submission(LAB.root / LAB.lab.starter).team.members]
    assert members == ["student-id-1", "student-id-2"]
    out = graded_lab("beyond-accuracy")
    teams = sorted(p.parent.name for p in out.glob("*/results.json"))
    assert {"reference", "starter", "mutant-raising_cell"} <= set(teams), teams
    for team in teams:
        assert read_results(out / team / "results.json").members == members, team


def test_nbgrader_cells_cli_refuses_a_missing_notebook_without_create(tmp_path):
    missing = tmp_path / "source" / "typo" / "typo.ipynb"
    proc = shipml("nbgrader-cells", "beyond-accuracy", str(missing))
    assert proc.returncode == 2 and "no such notebook" in proc.stderr and "--create" in proc.stderr
    assert not missing.exists() and "Traceback" not in proc.stderr
    proc = shipml("nbgrader-cells", "serving", str(missing), "--create")
    assert proc.returncode == 0 and missing.exists(), proc.stderr
