"""The serving lab's proof: the reference passes every check, the starter runs and scores low,
and every mutant fails exactly the checks its defect breaks, keeping all other points."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import shipml

from autograder.engine.mutants import list_mutants, materialize, reference_dir, starter_dir
from autograder.engine.results import read_results
from autograder.engine.spec import find_lab

LAB = find_lab("serving")
MUTANTS = list_mutants(LAB)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grade the reference, the starter and every mutant in one class run (2 at a time)."""
    root = tmp_path_factory.mktemp("class")
    ignore = shutil.ignore_patterns("__pycache__", "*.joblib")
    shutil.copytree(reference_dir(LAB), root / "reference", ignore=ignore)
    shutil.copytree(starter_dir(LAB), root / "starter", ignore=ignore)
    for mutant in MUTANTS:
        materialize(LAB, mutant, root / f"mutant-{mutant.name}")
    out = tmp_path_factory.mktemp("out")
    proc = shipml("grade-all", "serving", str(root), "--out", str(out), "--jobs", "2", timeout=1500)
    assert proc.returncode == 0, proc.stderr
    return out


def scores(out: Path, name: str) -> dict[str, float]:
    return {c.id: c.score for c in read_results(out / name / "instructor" / "results.json").checks}


def test_every_check_has_a_mutant_that_must_fail_it():
    covered = {check for m in MUTANTS for check in m.fails}
    assert covered == {c.id for c in LAB.checks}


def test_starter_reference_and_harness_share_one_contract():
    """The harness validates answers with the contract it publishes to the teams, byte for byte."""
    from autograder.checks import serving_contract

    harness = Path(serving_contract.__file__).read_bytes()
    assert (starter_dir(LAB) / "app" / "contract.py").read_bytes() == harness
    assert (reference_dir(LAB) / "flightdelay" / "contract.py").read_bytes() == harness


@pytest.mark.slow
def test_reference_gets_full_marks(graded):
    result = read_results(graded / "reference" / "instructor" / "results.json")
    assert result.score == result.max_score == 100, [(c.id, c.message) for c in result.checks if c.status != "passed"]


@pytest.mark.slow
def test_starter_runs_and_scores_low(graded):
    got = scores(graded, "starter")
    assert sum(got.values()) <= 40
    for check in ("bad_input", "no_skew", "accuracy"):
        assert got[check] == 0, check
    assert got["health_honest"] == 10, "the starter starts and answers health"


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_fails_exactly_its_checks(graded, mutant):
    got = scores(graded, f"mutant-{mutant.name}")
    full = {c.id: c.points for c in LAB.checks}
    failed = {check for check, score in got.items() if score < full[check]}
    assert failed == set(mutant.fails), f"{mutant.name}: failed {sorted(failed)}, declared {sorted(mutant.fails)}"
    for check in full:
        if check not in mutant.fails:
            assert got[check] == full[check]


def test_mutant_patches_apply_inside_a_git_checkout(tmp_path):
    """The demo writes mutants under the kit's own checkout: git must not skip the patch there."""
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for mutant in MUTANTS:
        dest = materialize(LAB, mutant, tmp_path / "out" / mutant.name)
        targets = [line[6:] for line in mutant.patch.read_text().splitlines() if line.startswith("+++ b/")]
        assert targets
        for target in targets:
            assert (dest / target).read_text() != (reference_dir(LAB) / target).read_text(), f"{mutant.name}: {target} unchanged"
