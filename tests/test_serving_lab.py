"""The serving lab's proof: the reference passes every check, the starter runs and scores low,
every mutant fails exactly the checks its defect breaks, keeping all other points, and each of
the cheapest cheats loses the points of the property it fakes, and only those.

Everything is graded in one class run (``shipml grade-all --jobs 2``), as an instructor would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shipml

from autograder.engine.mutants import list_mutants, materialize, reference_dir, starter_dir
from autograder.engine.results import read_results
from autograder.engine.spec import find_lab

LAB = find_lab("serving")
MUTANTS = list_mutants(LAB)
APP = Path(__file__).resolve().parent / "fixtures" / "serving_app"

# Each cheat keeps the API contract and fakes one property: it must lose exactly these checks.
CHEATS: dict[str, tuple[dict[str, str], set[str]]] = {
    "table": ({}, {"provenance", "accuracy"}),  # the release's outcomes served from a table
    "constant": ({}, {"provenance", "quality", "accuracy"}),  # the late share for every flight
    "cache": ({}, {"latency"}),  # slow, but remembers answers by request body
    "hour": ({}, {"quality", "accuracy"}),  # the late share of each hour: a model without skill
    "detect": ({}, {"latency"}),  # slow unless the environment says "graded"
    "committed": ({
        "train": "true",  # "nothing to train": the model is in the repository
        "serve": "{python} tinyapp.py serve --port {port} --data {data} --model committed.json",
        "predict": "{python} tinyapp.py predict --model committed.json --data {data} --input {input} --output {output}",
    }, {"provenance"}),
}


def cheat_submission(root: Path, name: str) -> Path:
    """A whole team folder: the tiny apps, the team's copy of the contract, a submission.toml."""
    folder = root / f"cheat-{name}"
    folder.mkdir()
    for file in ("tinyapp.py", "cheats.py", "contract.py"):
        shutil.copy(APP / file, folder / file)
    commands = {
        "train": f"{{python}} cheats.py train --mode {name} --data {{data}} --out {{model}}",
        "serve": f"{{python}} cheats.py serve --mode {name} --port {{port}} --data {{data}} --model {{model}}",
        "predict": f"{{python}} cheats.py predict --mode {name} --model {{model}} --data {{data}} --input {{input}} --output {{output}}",
        **CHEATS[name][0],
    }
    if name == "committed":
        from autograder.testing import _public_export

        subprocess.run([sys.executable, "tinyapp.py", "train", "--data", str(_public_export()), "--out", "committed.json"], cwd=folder, check=True)
    table = "\n".join(f"{step} = {json.dumps(command)}" for step, command in commands.items())
    (folder / "submission.toml").write_text(f'[team]\nname = "cheat {name}"\n\n[commands]\n{table}\n\n[service]\nstartup_timeout = 30\n')
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grade the reference, the starter and every mutant in one class run (2 at a time)."""
    root = tmp_path_factory.mktemp("class")
    ignore = shutil.ignore_patterns("__pycache__", "*.joblib")
    shutil.copytree(reference_dir(LAB), root / "reference", ignore=ignore)
    shutil.copytree(starter_dir(LAB), root / "starter", ignore=ignore)
    for mutant in MUTANTS:
        materialize(LAB, mutant, root / f"mutant-{mutant.name}")
    for name in CHEATS:
        cheat_submission(root, name)
    out = tmp_path_factory.mktemp("out")
    proc = shipml("grade-all", "serving", str(root), "--out", str(out), "--jobs", "2", timeout=2400)
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
    assert (Path(__file__).parent / "fixtures" / "serving_app" / "contract.py").read_bytes() == harness
    assert (reference_dir(LAB) / "flightdelay" / "contract.py").read_bytes() == harness


@pytest.mark.slow
def test_reference_gets_full_marks(graded):
    result = read_results(graded / "reference" / "instructor" / "results.json")
    assert result.score == result.max_score == 100, [(c.id, c.message) for c in result.checks if c.status != "passed"]


@pytest.mark.slow
def test_starter_runs_and_scores_low(graded):
    got = scores(graded, "starter")
    assert sum(got.values()) <= 30, got
    for check in ("api_contract", "no_skew", "provenance", "quality", "accuracy"):
        assert got[check] == 0, check
    assert got["bad_input"] < 7.5, "the starter validates nothing it is not given for free"
    assert got["health_honest"] == 10, "the starter starts and answers health"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHEATS)
def test_cheat_loses_the_points_of_what_it_fakes(graded, name):
    result = read_results(graded / f"cheat-{name}" / "instructor" / "results.json")
    full = {c.id: c.points for c in LAB.checks}
    got = {c.id: c.score for c in result.checks}
    lost = {check for check, score in got.items() if score < full[check]}
    assert lost == CHEATS[name][1], f"{name}: lost {sorted(lost)}; {[(c.id, c.message[:300]) for c in result.checks if c.id in lost]}"
    for check in CHEATS[name][1]:
        assert got[check] <= 0.25 * full[check], f"{name} keeps {got[check]} of {full[check]} on {check}"


@pytest.mark.slow
def test_only_an_implausible_score_is_flagged_for_review(graded):
    assert read_results(graded / "reference" / "instructor" / "results.json").needs_review == []
    header = (graded / "grades.csv").read_text().splitlines()[0]
    assert header.endswith(",needs_review")


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
