"""The student release: what a team receives holds the brief, the starter, the public data and
the public checks, runs them, and holds no answer: no reference solution, no mutant, no
held-out month, no hidden check, no notebook source with reference answers or hidden tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import shipml

from autograder.data import PERIODS
from autograder.paths import LABS_DIR


@pytest.fixture(scope="module")
def serving_release(lab_release) -> Path:
    """The session's ``shipml release serving --out DIR`` (conftest's ``lab_release``)."""
    return lab_release("serving")


def every_file(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_release_holds_the_brief_the_starter_the_public_data_and_the_public_checks(serving_release):
    names = {str(p.relative_to(serving_release)) for p in every_file(serving_release)}
    assert {"README.md", "submission.toml", "app/main.py", "app/contract.py", ".gitignore"} <= names
    assert {"shipml-kit/pyproject.toml", "shipml-kit/autograder/cli.py", "shipml-kit/labs/serving/lab.toml",
            "shipml-kit/datasets/flights/flights.csv.gz", "shipml-kit/datasets/flights/README.md"} <= names
    readme = (serving_release / "README.md").read_text()
    assert "## The API contract" in readme and "*Leakage by feature availability*" in readme
    assert "../book/" not in readme, "no link into the kit's book, which the release does not hold"


def test_release_holds_no_reference_no_mutant_and_no_hidden_check(serving_release):
    for path in every_file(serving_release):
        relative = str(path.relative_to(serving_release))
        assert "flightdelay" not in relative and "reference" not in relative, relative
        assert not relative.endswith(".patch") and path.name != "mutants.toml", relative
        assert not relative.startswith(("tests/", "book/", "labs/")), relative
        if path.suffix in (".py", ".toml", ".md", ".txt"):
            text = path.read_text(encoding="utf-8")
            assert "Reference team" not in text, relative
    released = (serving_release / "shipml-kit" / "labs" / "serving" / "lab.toml").read_text()
    assert 'visibility = "hidden"' not in released and 'id = "accuracy"' not in released
    assert "reference =" not in released and "plausible_lift" not in released


def test_release_holds_no_heldout_month(serving_release):
    heldout = set(PERIODS["heldout"])
    tables = [p for p in every_file(serving_release) if p.name.endswith((".csv.gz", ".csv"))]
    assert tables
    for path in tables:
        frame = pd.read_csv(path, compression="gzip" if path.suffix == ".gz" else None)
        if "month" in frame:  # flights and weather: local months (a late August flight may land in September UTC)
            assert not set(frame["month"]) & heldout, f"{path.name} holds held-out months"
            if "arr_delay" in frame:
                assert frame["month"].max() == max(PERIODS["validation"]), "the public months are all there"


def test_the_release_runs_its_public_checks_with_its_own_kit(serving_release):
    # Outside the kit's checkout, with the release's kit first on the path: as a team runs it.
    env = {**os.environ, "PYTHONPATH": str(serving_release / "shipml-kit")}
    cwd = serving_release.parent
    where = subprocess.run([sys.executable, "-c", "import autograder; print(autograder.__file__)"], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(serving_release / "shipml-kit")), "the release's own kit answers"
    listed = subprocess.run([sys.executable, "-m", "autograder", "checks", "serving"], env=env, cwd=cwd, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "provenance" in listed.stdout and "accuracy" not in listed.stdout
    out = serving_release.parent / "report"
    graded = subprocess.run([sys.executable, "-m", "autograder", "check", "serving", str(serving_release), "--out", str(out), "--quiet"],
                            env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert graded.returncode == 0, graded.stderr
    report = (out / "report.md").read_text()
    assert "health_honest" in report and "accuracy" not in report


def test_release_refuses_a_folder_that_is_not_empty_and_one_inside_the_kit(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    proc = shipml("release", "serving", "--out", str(tmp_path / "taken"))
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = shipml("release", "serving", "--out", str(LABS_DIR / "serving" / "release"))
    assert proc.returncode == 2 and "inside the kit" in proc.stderr


@pytest.mark.slow
def test_a_notebook_lab_releases_the_notebook_without_answers_or_hidden_tests(lab_release):
    out = lab_release("beyond-accuracy")  # the session's `shipml release beyond-accuracy --out DIR`
    notebook = out / "beyond-accuracy.ipynb"
    text = notebook.read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    source = (LABS_DIR / "beyond-accuracy" / "course" / "source" / "beyond-accuracy" / "beyond-accuracy.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in source, "the source has hidden tests: the scan above means something"
    for path in every_file(out):
        assert "course" not in path.relative_to(out).parts, path
        if path.suffix == ".ipynb":
            assert "BEGIN HIDDEN TESTS" not in path.read_text(), path
