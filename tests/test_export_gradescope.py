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
from autograder.paths import FLIGHTS_DIR

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


def test_a_labs_instructor_folder_rides_in_the_zip_as_files(tmp_path):
    """The pipeline lab's hidden check reads its instructor folder (the graders' buggy modules,
    and the correct one, a link to the reference's file in the kit): the zip carries the folder
    with the link's file itself, and still no reference or mutant."""
    from autograder.engine.spec import find_lab
    from autograder.integrations.gradescope import build_tree
    from autograder.paths import FLIGHTS_DIR

    lab = find_lab("pipeline")
    tree = build_tree(lab, tmp_path / "tree", FLIGHTS_DIR)
    hidden = tree / "kit" / "labs" / "pipeline" / "hidden"
    wheat = hidden / "wheat.py"
    assert (hidden / "chaffs.toml").read_bytes() == (lab.root / "hidden" / "chaffs.toml").read_bytes()
    assert not wheat.is_symlink() and wheat.read_bytes() == (lab.root / "hidden" / "wheat.py").resolve().read_bytes()
    labs = {p.relative_to(tree / "kit" / "labs").parts[1] for p in (tree / "kit" / "labs").rglob("*") if p.is_file()}
    assert labs == {"lab.toml", "README.md", "hidden"}, labs


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
def test_simulated_gradescope_scores_equal_local_grade(simulated, graded_lab, tmp_path):
    """The reference and one mutant, each graded here and inside the simulated Gradescope: the
    same score for every check. Here is the session's class run of the serving lab (conftest's
    ``graded_lab``: ``shipml grade-all`` on the bundled held-out months, the HELDOUT the zip
    carries). On the Docker engine the reference runs in both kinds of container (with and
    without bubblewrap's namespaces). Two at a time (2 cores)."""
    mutant = next(m for m in list_mutants(LAB) if m.name == MUTANT)
    assert HELDOUT.resolve() == FLIGHTS_DIR.resolve(), "the class run grades on the bundled months: the zip must carry those"
    local = graded_lab("serving")
    here = {name: json.loads((local / team / "results.json").read_text()) for name, team in (("reference", "reference"), (MUTANT, f"mutant-{MUTANT}"))}
    subs = {"reference": reference_dir(LAB), MUTANT: materialize(LAB, mutant, tmp_path / "subs" / MUTANT)}
    # (submission, with bubblewrap's namespaces): the tree always has them.
    runs = [("reference", False), (MUTANT, False), ("reference", True)] if simulated.engine == "docker" else [("reference", True), (MUTANT, True)]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        there_f = {(n, ns): pool.submit(simulated.run, subs[n], namespaces=ns) for n, ns in runs}
        there: dict[tuple[str, bool], Run] = {k: f.result() for k, f in there_f.items()}
    for (name, ns), run in there.items():
        assert [(t["name"], t["score"], t["max_score"]) for t in run.results["tests"]] == [(t["name"], t["score"], t["max_score"]) for t in here[name]["tests"]], name
        assert run.results["score"] == here[name]["score"]
        assert "## How this submission was run" in run.stdout  # the staff copy went to stdout
        print(f"{name}: local {here[name]['score']:g}, simulated Gradescope ({simulated.engine}, "
              f"{'with' if ns else 'without'} bubblewrap's namespaces) {run.results['score']:g}, run_autograder {run.seconds:.1f} s")
        path = tmp_path / f"{name}-{ns}.json"
        path.write_text(json.dumps(run.results))
        validate_with_check_jsonschema(path)
        report = run.stdout
        if ns:
            assert "processes: bubblewrap (own PID, mount, IPC and UTS namespaces" in report
            assert "network: loopback only" in report
        else:
            # Docker's default profile: the staff report says what did not hold, and that the
            # zip's files were closed to the team's uid, tried from its side.
            assert "NOT isolated (bubblewrap cannot make its namespaces here" in report
            assert "hidden data: closed to the team's uid by file permissions (tried from its side" in report
            assert "network: NOT isolated" in report  # the container's own interface: Gradescope's have one too
    assert here["reference"]["score"] == LAB.max_points
    lost = {t["name"].split(":")[0] for t in there[(MUTANT, runs[1][1])].results["tests"] if t["score"] < t["max_score"]}
    assert lost == set(mutant.fails)
    print(f"{len(runs)} simulated gradings, two at a time: {time.monotonic() - started:.0f} s")


@needs_engine
@pytest.mark.parametrize("namespaces", [False, True], ids=["default-profile", "with-namespaces"])
def test_a_snooping_team_reads_nothing_of_the_zip_and_cannot_forge_its_results(simulated, namespaces):
    """The team's train command, inside the container, tries to read the held-out data, the
    hidden lab, the manifest and the pins, to list /autograder/source and the grader's output
    folder, to write results.json and to import the grader's checks. The staff report quotes
    what it printed. Without bubblewrap's namespaces, file permissions must refuse each one
    (Permission denied); with them, the paths are not in the team's view at all."""
    if simulated.engine != "docker" and not namespaces:
        pytest.skip("the tree simulation cannot withhold bubblewrap's namespaces")
    run = simulated.run(SNOOP, namespaces=namespaces)
    lines = {line.strip() for line in run.stdout.splitlines()}
    attempts = {line for line in lines if line.startswith(("ESCAPED:", "blocked:"))}
    assert len(attempts) == 8, run.stdout[-3000:]
    assert not [a for a in attempts if a.startswith("ESCAPED")], attempts
    assert "control: imported autograder.data" in lines, run.stdout[-3000:]  # the command ran, with the team's rights
    reads = [a for a in attempts if a.startswith("blocked: read /autograder/source")]
    assert len(reads) == 4
    if namespaces:  # not in the view: only the data loader's modules are, under the kit's folder
        assert all(a.endswith("(No such file or directory)") for a in reads), reads
        assert "blocked: list /autograder/source (only the data loader's folder)" in attempts
    else:  # in sight, and refused by the kernel
        assert all(a.endswith("(Permission denied)") for a in reads), reads
        assert "blocked: list /autograder/source (Permission denied)" in attempts
    assert run.results["score"] == 0 and run.results["tests"]
