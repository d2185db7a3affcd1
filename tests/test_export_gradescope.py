"""The Gradescope export, proven by a simulated Gradescope run (tests/engines.py).

Where a Docker engine can run (root, Debian's docker.io and debootstrap; ``make test``
installs both), the simulation is Gradescope's own: a ``dockerd`` this module starts and stops
by its PID, a Debian base image made by debootstrap (no registry), the image built from the
zip by ``docker build`` with ``setup.sh`` installing the pinned wheels for real, and one fresh
container per submission with Docker's default capabilities and seccomp profile and no network.
Bubblewrap cannot make its namespaces in such a container, so these runs also prove the
grader's fallback there: the team's own uid, the data loader copied into its workspace, and the
zip's files closed to it by file permissions.

Elsewhere (no engine) the same paths are built in a private tree under bubblewrap, and
``setup.sh`` runs in its offline mode (it proves this interpreter holds every pinned version).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, is_root, shipml
from engines import Run, docker_available, gradescope

from autograder.engine.mutants import list_mutants, materialize, reference_dir
from autograder.engine.spec import find_lab
from autograder.integrations.gradescope import check_pins, export_zip

LAB = find_lab("serving")
HELDOUT = REPO / "datasets" / "flights"  # the bundled Sep-Dec months, given explicitly
SCHEMA = REPO / "autograder" / "integrations" / "schemas" / "gradescope-results.schema.json"
BIN = Path(sys.executable).parent
MUTANT = "version_missing"  # loses api_contract only: a score that does not depend on sampling

SNOOP = REPO / "tests" / "fixtures" / "gradescope" / "snoop"

needs_engine = pytest.mark.skipif(
    not docker_available() and (not is_root() or shutil.which("bwrap") is None),
    reason="the simulated Gradescope needs root and a Docker engine (docker.io, debootstrap) or bubblewrap",
)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    return export_zip(LAB, tmp_path_factory.mktemp("export") / "autograder.zip", HELDOUT)


@pytest.fixture(scope="module")
def simulated(docker_engine, autograder_zip):
    """The image, built once for the module (as Gradescope builds it once per assignment)."""
    engine = gradescope(docker_engine, autograder_zip)
    yield engine
    engine.close()
    print(f"simulated Gradescope ({engine.engine}): " + ", ".join(f"{k} {v:.0f} s" for k, v in engine.timings.items()))


def validate_with_check_jsonschema(path: Path) -> None:
    proc = subprocess.run([str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_export_without_heldout_names_the_missing_flag(tmp_path):
    proc = shipml("export", "gradescope", "serving", "--out", str(tmp_path / "a.zip"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "missing --heldout DIR" in proc.stderr and "accuracy" in proc.stderr
    assert not (tmp_path / "a.zip").exists()


def test_zip_carries_hidden_checks_and_heldout_data_and_no_solution(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        lab_toml = zf.read("kit/labs/serving/lab.toml").decode()
        manifest = json.loads(zf.read("MANIFEST.json"))
    assert {"setup.sh", "run_autograder", "requirements.txt", "MANIFEST.json"} <= names  # at the root, as Gradescope requires
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert 'visibility = "hidden"' in lab_toml and 'id = "accuracy"' in lab_toml
    assert {f"kit/heldout/{n}" for n in ("flights.csv.gz", "weather.csv.gz")} <= names
    assert manifest["heldout"]["flights.csv.gz"]  # its checksum, for the staff's records
    # The reference solution, the mutants, the tests and the rest of the kit stay home.
    assert {n for n in names if n.startswith("kit/labs/")} == {"kit/labs/serving/lab.toml", "kit/labs/serving/README.md"}
    assert not any(n.startswith(("kit/tests", "kit/book", "kit/.git")) or n.endswith(".patch") for n in names)
    assert "reference" not in lab_toml.split("[[checks]]")[0]


def test_pins_are_the_versions_the_tests_run_with(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extract("requirements.txt", tmp_path)
    pins = (tmp_path / "requirements.txt").read_text()
    for name in ("pandas", "scikit-learn", "fastapi", "uvicorn", "schemathesis", "pydantic"):
        assert f"\n{name}==" in pins, name
    assert "nbgrader" not in pins and "jupyter-book" not in pins  # the runtime only, not the dev tools
    assert check_pins(tmp_path / "requirements.txt") == []
    (tmp_path / "requirements.txt").write_text(pins.replace("pandas==", "pandas==0.0."))
    assert [p for p in check_pins(tmp_path / "requirements.txt") if p.startswith("pandas==0.0.")]


def test_scripts_pass_shellcheck(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extract("setup.sh", tmp_path)
        zf.extract("run_autograder", tmp_path)
    proc = subprocess.run([str(BIN / "shellcheck"), "-s", "bash", str(tmp_path / "setup.sh"), str(tmp_path / "run_autograder")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@needs_engine
def test_submission_without_submission_toml_scores_zero_with_one_message(simulated, tmp_path):
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "app.py").write_text("print('hello')\n")
    results = simulated.run(upload).results
    assert results["score"] == 0
    assert results["output"].count("No submission.toml") == 1
    assert all(t["score"] == 0 and "No submission.toml" not in t["output"] for t in results["tests"])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    validate_with_check_jsonschema(path)


@needs_engine
def test_a_broken_autograder_still_writes_results(simulated, tmp_path):
    # A bug in the grader, found at run time: the module that grades raises on import.
    results = simulated.run(reference_dir(LAB), replace={"kit/autograder/engine/classrun.py": b"raise RuntimeError('a bug in the grader')\n"}).results
    assert results["score"] == 0 and "autograder failed" in results["output"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    validate_with_check_jsonschema(path)


@needs_engine
@pytest.mark.slow
def test_simulated_gradescope_scores_equal_local_grade(simulated, tmp_path):
    """The reference and one mutant, each graded by ``shipml grade`` and inside the simulated
    Gradescope: the same score for every check. Two gradings at a time (2 cores)."""
    mutant = next(m for m in list_mutants(LAB) if m.name == MUTANT)
    subs = {"reference": reference_dir(LAB), MUTANT: materialize(LAB, mutant, tmp_path / "subs" / MUTANT)}

    def local(name: str) -> dict:
        out = tmp_path / "local" / name
        shipml("grade", "serving", str(subs[name]), "--out", str(out), "--heldout", str(HELDOUT), "--quiet", check=True, timeout=900)
        return json.loads((out / "results.json").read_text())

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {("local", n): pool.submit(local, n) for n in subs} | {("gradescope", n): pool.submit(simulated.run, subs[n]) for n in subs}
        done = {key: f.result() for key, f in futures.items()}
    for name in subs:
        here, there = done[("local", name)], done[("gradescope", name)]
        assert isinstance(there, Run)
        assert [(t["name"], t["score"], t["max_score"]) for t in there.results["tests"]] == [(t["name"], t["score"], t["max_score"]) for t in here["tests"]], name
        assert there.results["score"] == here["score"]
        assert "## How this submission was run" in there.stdout  # the staff copy went to stdout
        print(f"{name}: local {here['score']:g}, simulated Gradescope ({simulated.engine}) {there.results['score']:g}, "
              f"run_autograder {there.seconds:.1f} s")
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(there.results))
        validate_with_check_jsonschema(path)
    assert done[("local", "reference")]["score"] == LAB.max_points
    lost = {t["name"].split(":")[0] for t in done[("gradescope", MUTANT)].results["tests"] if t["score"] < t["max_score"]}
    assert lost == set(mutant.fails)
    if simulated.engine == "docker":
        # Docker's default profile forbids bubblewrap's namespaces: the staff report says so,
        # and that the zip's files were closed to the team's uid.
        report = done[("gradescope", "reference")].stdout
        assert "NOT isolated (bubblewrap cannot make its namespaces here" in report
        assert "hidden data: closed to the team's uid by file permissions" in report
    print(f"four gradings, two at a time: {time.monotonic() - started:.0f} s")


@needs_engine
def test_a_snooping_team_reads_nothing_of_the_zip_and_cannot_forge_its_results(simulated):
    """The team's train command, inside the container, tries to read the held-out data, the
    hidden lab, the manifest and the pins, to list /autograder/source, to write results.json
    and to import the grader's checks. The staff report quotes what it printed."""
    run = simulated.run(SNOOP)
    attempts = {line for line in run.stdout.splitlines() if line.startswith(("ESCAPED:", "blocked:"))}
    assert len(attempts) == 7, run.stdout[-3000:]
    assert not [a for a in attempts if a.startswith("ESCAPED")], attempts
    assert run.results["score"] == 0 and run.results["tests"]  # the grader's results.json, not the team's
