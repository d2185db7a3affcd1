"""The GitHub Classroom export: the workflow passes actionlint (with shellcheck on its scripts),
fits the student release's layout, and its pass mark really fails a run below the score; on a
simulated runner (tests/engines.py, a Docker container) its job installs the pins, scores a
finished team exactly as ``shipml check`` does and fails the starter at the pass mark."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import shipml

from autograder.engine.mutants import reference_dir
from autograder.engine.results import read_results
from autograder.engine.spec import find_lab
from autograder.integrations.github_classroom import REQUIREMENTS, WORKFLOW, export_workflow
from autograder.integrations.release import KIT, write_release

LAB = find_lab("serving")
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The template repository: the student release with the workflow added."""
    out = tmp_path_factory.mktemp("template") / "serving-template"
    write_release(LAB, out)
    export_workflow(LAB, out, min_score=60)
    return out


def test_workflow_passes_actionlint(template):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # shellcheck for run: scripts
    proc = subprocess.run([str(BIN / "actionlint"), "-oneline", WORKFLOW], cwd=template, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(template, tmp_path):
    """The lint is not vacuous: a typo in an expression and an unknown runner fail it."""
    broken = tmp_path / "broken.yml"
    text = (template / WORKFLOW).read_text()
    broken.write_text(text.replace("${{ github.ref }}", "${{ github.reff }}").replace("ubuntu-24.04", "ubuntu-99.04"))
    proc = subprocess.run([str(BIN / "actionlint"), "-oneline", str(broken)], capture_output=True, text=True)
    assert proc.returncode != 0 and "reff" in proc.stdout and "ubuntu-99.04" in proc.stdout


def _steps(template: Path) -> dict[str, dict]:
    workflow = yaml.safe_load((template / WORKFLOW).read_text())
    return {s.get("name") or s["uses"]: s for s in workflow["jobs"]["check"]["steps"]}


def test_workflow_runs_public_checks_on_the_release_layout(template):
    steps = _steps(template)
    install = steps["Install the kit (pinned)"]["run"]
    assert f"-r {REQUIREMENTS}" in install and f"-e ./{KIT}" in install
    assert (template / REQUIREMENTS).is_file() and (template / KIT / "pyproject.toml").is_file()
    assert (template / KIT / "labs" / "serving" / "lab.toml").is_file()
    assert steps["Run the public checks"]["run"].startswith("shipml check serving . ")  # never `grade`: no held-out data there
    assert "GITHUB_STEP_SUMMARY" in steps["Report as the job summary"]["run"]
    upload = steps["Upload the report"]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert {line.strip().rsplit("/", 1)[-1] for line in upload["with"]["path"].splitlines() if line.strip()} == {"report.html", "results.json"}


@pytest.mark.parametrize(("score", "passes"), [(59.5, False), (60, True), (80, True)])
def test_pass_mark_fails_the_job_below_the_score(template, tmp_path, score, passes):
    step = next(s for name, s in _steps(template).items() if name.startswith("Pass at"))
    report = tmp_path / "shipml-report"
    report.mkdir()
    (report / "results.json").write_text(f'{{"score": {score}, "tests": []}}')
    env = {**os.environ, "REPORT_DIR": "shipml-report", "MIN_SCORE": "60", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (proc.returncode == 0) == passes, proc.stdout + proc.stderr
    assert f"score {score:g}, pass mark 60" in proc.stdout


def test_export_needs_a_sensible_min_score(tmp_path):
    proc = shipml("export", "github-classroom", "serving", "--out", str(tmp_path / "a"))
    assert proc.returncode == 2 and "--min-score" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = shipml("export", "github-classroom", "serving", "--out", str(tmp_path / "b"), "--min-score", "95")
    assert proc.returncode == 2 and "between 0 and 80" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def runner(docker_engine):
    if docker_engine is None:
        pytest.skip("the simulated runner needs a Docker engine (root, docker.io and debootstrap: make system-deps)")
    from engines import ActionsRunner

    return ActionsRunner(docker_engine)


@pytest.mark.slow
def test_the_workflow_scores_a_finished_team_as_shipml_check_does_and_fails_the_starter(runner, template, graded_lab, tmp_path):
    """Two pushes to team repositories made from the template: one where the team has done the
    lab (the reference in place of the starter), one still at the starter. The first job passes
    and its artefacts hold the public checks' scores the reference gets here (the session's
    class run of the serving lab, conftest's ``graded_lab``); the second fails at the pass mark,
    with its report still posted (the summary and artefacts run ``if: always()``)."""
    team = tmp_path / "team"
    shutil.copytree(template, team)
    shutil.rmtree(team / "app")
    (team / "submission.toml").unlink()
    shutil.copytree(reference_dir(LAB), team, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.joblib"))

    done = runner.run_job(team)
    assert done.conclusion == "success", done.log[-4000:]
    assert set(done.outcomes.values()) == {"success"} and len(done.outcomes) == 7, done.outcomes
    there = json.loads(done.artifacts["shipml-report/results.json"])
    assert done.artifacts["shipml-report/report.html"].lower().startswith(b"<!doctype html>")
    public_ids = {c.id for c in LAB.selected("public")}
    graded = read_results(graded_lab("serving") / "reference" / "instructor" / "results.json").to_gradescope()
    here = [(t["name"], t["score"]) for t in graded["tests"] if t["name"].split(":")[0] in public_ids]  # what `shipml check` grades
    assert [(t["name"], t["score"]) for t in there["tests"]] == here
    public = sum(c.points for c in LAB.selected("public"))
    assert there["score"] == sum(score for _, score in here) == public
    assert f"**Score: {public:g} / {public:g}**" in done.summary
    print(f"simulated runner: reference {there['score']:g} / {public:g} (graded here {sum(score for _, score in here):g}), job {done.seconds:.0f} s")

    starter = runner.run_job(template)
    assert starter.conclusion == "failure"
    assert starter.outcomes["Run the public checks"] == "success"  # the checks ran; the score is what fails
    assert starter.outcomes[next(n for n in starter.outcomes if n.startswith("Pass at"))] == "failure"
    score = json.loads(starter.artifacts["shipml-report/results.json"])["score"]
    assert score < 60 and "pass mark 60" in starter.log
    assert "**Score:" in starter.summary
    print(f"simulated runner: starter {score:g} / {public:g}, job failed at the pass mark, {starter.seconds:.0f} s")
