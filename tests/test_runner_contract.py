"""One runner contract, run over every runner: the local test runner, the engine as a real
unprivileged user (not root), as root with bubblewrap, and as root without it.

The contract is a lab (tests/fixtures/contract/lab.toml) whose checks each pass only when the
runner keeps one promise of the check API: setup first, a fresh instance on another data folder,
a timed-out command killed with its children, bounded output, a second process, a SIGKILL and
restart on the same state, safe reads, timed traffic, and a timed-out check stopped before the
next one. Every runner must give the same verdicts. A second, smaller lab
(tests/fixtures/coverage_contract) holds each runner to the line coverage of ``run(coverage=...)``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import is_root

from autograder.checkapi import LabData
from autograder.engine import sandbox as sandbox_module
from autograder.engine.grading import grade
from autograder.engine.jail import bwrap_problem
from autograder.engine.process import run_as
from autograder.engine.results import CheckResult
from autograder.engine.spec import LabSpec, load_lab, load_submission
from autograder.paths import FLIGHTS_DIR
from autograder.testing import check_lab, public_data

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "contract"
COVERAGE_FIXTURE = FIXTURE.parent / "coverage_contract"
sys.path[:0] = [str(FIXTURE), str(COVERAGE_FIXTURE)]  # the contracts' checks modules, as lab.toml names them
LAB = load_lab(FIXTURE)
COVERAGE_LAB = load_lab(COVERAGE_FIXTURE)
NOBODY = 65534


def engine(folder: Path, public: Path, lab: LabSpec = LAB) -> tuple[list[CheckResult], list[str], list[str]]:
    result = grade(lab, load_submission(folder, lab), data=LabData(public=FLIGHTS_DIR), hidden_paths=[], public_data=public)
    return result.checks, result.notes, result.isolation


def as_nobody(folder: Path, public: Path, lab: LabSpec = LAB) -> tuple[list[CheckResult], list[str], list[str]]:
    """The engine in a forked child that has become ``nobody`` for real (no patched geteuid),
    through the engine's own ``run_as``."""
    def job() -> bytes:
        checks, notes, isolation = engine(folder, public, lab)
        return json.dumps({"checks": [vars(c) | {"details": {k: str(v) for k, v in c.details.items()}} for c in checks],
                           "notes": notes, "isolation": isolation, "uid": os.geteuid()}).encode()

    raw = run_as(NOBODY, job, timeout=600)
    assert raw, "the unprivileged grader failed"
    payload = json.loads(raw)
    assert payload["uid"] == NOBODY
    return [CheckResult(**c) for c in payload["checks"]], payload["notes"], payload["isolation"]


VENDORED = ("coverage", "pytest", "_pytest", "py", "pluggy", "iniconfig", "packaging")
"""What the coverage team's python3 imports from its vendor/ folder: coverage.py and pytest."""


def vendor(into: Path) -> None:
    """The kit's own coverage.py and pytest, copied for the coverage team's python3."""
    into.mkdir()
    for name in VENDORED:
        origin = Path(importlib.util.find_spec(name).origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, into / origin.name)


@pytest.fixture(scope="module")
def shared() -> tuple[Path, Path]:
    """The team and the public data where every user may read them (pytest's tmp_path is closed
    to others), so that the unprivileged grader sees the same inputs as the others."""
    base = Path(tempfile.mkdtemp(prefix="shipml-contract-", dir="/var/tmp"))
    team = base / "team"
    shutil.copytree(FIXTURE / "team", team, symlinks=True)
    shutil.copytree(COVERAGE_FIXTURE / "team", base / "coverage-team", symlinks=True)
    vendor(base / "coverage-team" / "vendor")
    public = base / "public"
    shutil.copytree(public_data(), public)
    for path in (base, *base.rglob("*")):
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield team, public
    shutil.rmtree(base, ignore_errors=True)


RUNNERS = ["local", "not-root", "root-bubblewrap", "root-without-bubblewrap"]


def run_lab(runner: str, lab: LabSpec, team: Path, public: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[CheckResult], list[str]]:
    """The lab's checks on ``team`` under ``runner``: their results and the report's notes."""
    if runner == "local":
        return check_lab(lab, team)
    if runner == "not-root":
        if not is_root():
            checks, notes, isolation = engine(team, public, lab)  # a developer's own machine: already not root
        else:
            checks, notes, isolation = as_nobody(team, public, lab)
        assert "processes: NOT isolated (the grader is not root)" in "\n".join(isolation)
        return checks, notes
    if not is_root():
        pytest.skip("the root runners need root (CI runs as root)")
    if runner == "root-bubblewrap":
        assert bwrap_problem() is None, "bubblewrap works on this machine (make system-deps)"
    else:
        monkeypatch.setattr(sandbox_module, "bwrap_problem", lambda: "bubblewrap cannot make its namespaces here: test")
    checks, notes, isolation = engine(team, public, lab)
    text = "\n".join(isolation)
    assert ("bubblewrap (own PID" in text) == (runner == "root-bubblewrap"), text
    return checks, notes


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_keeps_the_contract(runner, shared, monkeypatch):
    team, public = shared
    checks, notes = run_lab(runner, LAB, team, public, monkeypatch)
    got = {c.id: c for c in checks}
    assert list(got) == [c.id for c in LAB.checks]
    broken = {c.id: c.message for c in checks if c.id != "overrun" and c.score != c.max_score}
    assert not broken, f"{runner}: {broken}"
    # The check that overran its limit scores 0, says what the harness stopped, and its thread
    # (a load generator told to send ten million requests) ended within the grace period.
    overrun = got["overrun"]
    assert overrun.score == 0 and "did not finish within its 4 s limit" in overrun.message
    assert "the service" in overrun.details["stopped"], overrun.details
    assert str(overrun.details["thread_ended"]) == "True", overrun.message
    # The harness's own kill is reported as such, never as the team's crash.
    joined = "\n".join(notes)
    assert "The harness killed the service 1 time(s) on purpose" in joined and "SIGKILL" in joined, notes
    assert "died during grading" not in joined, notes


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_measures_line_coverage(runner, shared, monkeypatch):
    # A plain script, python -c and pytest on a two-function package of which one function runs:
    # 3 of its 5 statements, also in a throwaway copy with a module swapped; a command without
    # Python measures nothing; the exit status and output are the same with coverage and without.
    team, public = shared
    checks, _ = run_lab(runner, COVERAGE_LAB, team.parent / "coverage-team", public, monkeypatch)
    assert [(c.id, c.score) for c in checks] == [("line_coverage", 1)], [c.message for c in checks]
