"""The held-out set on record and the staff's class report: every result names the held-out set
that graded it (results.json, grades.csv, the class report), a run on the kit's bundled (public)
months warns loudly, the build script keeps a course's own set private, and the "needs review"
flag carries its rule and threshold where a TA reads it."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, REPO, make_fixture_submission, shipml

from autograder.engine.classreport import class_report_markdown
from autograder.engine.policy import heldout_id
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.engine.spec import find_lab
from autograder.paths import FLIGHTS_DIR

BUILD = REPO / "datasets" / "flights" / "build.py"
BUNDLED_WARNING = "WARNING: grading on the kit's bundled held-out months"


@pytest.fixture(scope="module")
def course_set(tmp_path_factory) -> Path:
    """A course's own held-out set, written into a folder that was world-readable before, over
    a world-readable file of the same name (what an instructor's earlier attempt left)."""
    out = tmp_path_factory.mktemp("private") / "heldout"
    out.mkdir(mode=0o755)
    (out / "flights.csv.gz").write_bytes(b"old")
    (out / "flights.csv.gz").chmod(0o644)
    subprocess.run([sys.executable, str(BUILD), "--heldout-salt", "a course secret", "--out", str(out)], check=True, capture_output=True)
    return out


def test_the_build_writes_a_course_set_for_its_owner_only(course_set):
    assert stat.S_IMODE(course_set.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in course_set.iterdir()}
    assert len(modes) == 6 and set(modes.values()) == {0o600}, modes


@pytest.mark.parametrize("inside", ["labs/private-heldout", "book/heldout", "."])
def test_the_build_refuses_any_folder_inside_the_kit(inside):
    target = REPO / inside
    existed = target.exists()
    proc = subprocess.run([sys.executable, str(BUILD), "--heldout-salt", "x", "--out", str(target)], capture_output=True, text=True)
    assert proc.returncode == 2 and "inside the kit's checkout" in proc.stderr and "Traceback" not in proc.stderr
    assert target.exists() == existed, "nothing written"


def test_a_copy_of_the_bundled_months_is_still_named_bundled(tmp_path, course_set):
    """A folder's identity is its content: copying the public months elsewhere does not hide them."""
    copy = tmp_path / "looks-private"
    shutil.copytree(FLIGHTS_DIR, copy)
    assert heldout_id(copy) == heldout_id(FLIGHTS_DIR) and heldout_id(copy).endswith("(bundled)")
    assert heldout_id(course_set).startswith("sha256:") and not heldout_id(course_set).endswith("(bundled)")
    assert heldout_id(None) == "none"


@pytest.fixture
def heldout_lab(tmp_path) -> Path:
    """The engine fixture lab with one check that reads the held-out months."""
    lab = tmp_path / "lab"
    lab.mkdir()
    toml = (ENGINE_FIXTURE / "lab.toml").read_text()
    lab_toml = toml.replace('params = { command = "test" }', 'params = { command = "test" }\nrequires = ["heldout"]')
    assert lab_toml != toml
    (lab / "lab.toml").write_text(lab_toml)
    return lab


def _recorded(out: Path, name: str) -> tuple[str, str, str]:
    team = json.loads((out / name / "results.json").read_text())
    staff = json.loads((out / name / "instructor" / "results.json").read_text())
    row = next(r for r in csv.DictReader((out / "grades.csv").open()) if r["submission"] == name)
    assert team["extra_data"]["shipml"]["heldout"] == staff["extra_data"]["shipml"]["heldout"] == row["heldout"]
    return row["heldout"], team["output"], (out / "class-report.md").read_text()


def test_every_grade_names_its_heldout_set_and_the_bundled_months_warn(heldout_lab, course_set, tmp_path):
    make_fixture_submission(tmp_path / "class", "healthy")
    out = tmp_path / "out"
    bundled = shipml("grade-all", str(heldout_lab), str(tmp_path / "class"), "--out", str(out), timeout=180)
    assert bundled.returncode == 0, bundled.stderr
    assert BUNDLED_WARNING in bundled.stderr and heldout_id(FLIGHTS_DIR) in bundled.stderr
    held, output, report = _recorded(out, "healthy")
    assert held == heldout_id(FLIGHTS_DIR) and f"Held-out set: {held}" in output
    assert BUNDLED_WARNING in report

    course = shipml("grade-all", str(heldout_lab), str(tmp_path / "class"), "--out", str(out), "--force", "--heldout", str(course_set), timeout=180)
    assert course.returncode == 0, course.stderr
    expected = heldout_id(course_set)
    assert f"Held-out set: {expected}" in course.stdout and "WARNING" not in course.stderr
    held, output, report = _recorded(out, "healthy")
    assert held == expected and f"Held-out set: {expected}" in output and f"| {expected} |" in report and BUNDLED_WARNING not in report


def test_a_lab_without_heldout_checks_records_none(tmp_path):
    make_fixture_submission(tmp_path / "class", "healthy")
    proc = shipml("grade-all", str(ENGINE_FIXTURE), str(tmp_path / "class"), "--out", str(tmp_path / "out"), timeout=180)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr and "Held-out set: none" in proc.stdout
    assert _recorded(tmp_path / "out", "healthy")[0] == "none"


def test_the_class_report_gives_each_flag_its_reason_and_the_rule_with_the_labs_threshold():
    lab = find_lab("serving")
    flag = "held-out PR AUC 0.990 is 0.800 above the late share, beyond the 0.3 that honest models reach on these features"
    checks = [CheckResult(id=c.id, description=c.description, score=c.points, max_score=c.points, message="ok",
                          details={"needs_review": flag} if c.id == "accuracy" else {}) for c in lab.checks]
    table = SubmissionResult(lab=lab.lab.name, team="Lookup team", checks=checks, members=["s1"], heldout="sha256:0123456789abcdef")
    honest = SubmissionResult(lab=lab.lab.name, team="Honest team", checks=[dataclasses.replace(c, details={}) for c in checks],
                              members=["s2"], heldout="sha256:0123456789abcdef")
    report = class_report_markdown(lab, ["honest", "table", "missing"], {"honest": honest, "table": table})
    assert "`accuracy`: plausible_lift = 0.3" in report, "the rule's threshold, from lab.toml"
    assert f"- table (Lookup team): accuracy: {flag}" in report and "honest (Honest team): " not in report.split("## Needs review")[1]
    assert "A flag changes no grade" in report
    assert "Without a grade (rerun the same `grade-all` command to grade them): missing." in report


@pytest.mark.parametrize("doc", ["README.md", "book/course/instructor-guide.md"])
def test_every_grading_command_in_the_staff_docs_carries_heldout(doc):
    """A TA copies these: a command without --heldout grades on the public months."""
    import re

    text = (REPO / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    prose = re.sub(r"```[^\n]*\n.*?```", "", text, flags=re.S)
    spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]  # inline code, a line break or not
    spans += [line.strip() for block in blocks for line in block.splitlines()]
    commands = [s for s in spans if re.match(r"shipml grade(-all)? \S+ \S+", s)]
    assert len(commands) >= 3, commands
    assert [c for c in commands if "--heldout" not in c] == []
