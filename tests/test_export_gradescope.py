"""The Gradescope export, proven by a simulated Gradescope run.

Where the simulation runs, and why not in Docker: Gradescope builds one container per
assignment from the zip and runs ``run_autograder`` in a fresh copy per submission. A Docker
engine here needs ``apt-get install docker.io``, a ``dockerd`` and a base image made with
debootstrap (about 72 s and a Debian mirror, FIELD-NOTES "Containers"), and installing the kit
inside it downloads every wheel again: a test that downloads at run time, and minutes of CI
that the suite (about 30 minutes on 2 cores) cannot spare. So, as the issue allows, the test
builds the same paths in a private tree: bubblewrap gives the run a mount namespace whose
``/autograder`` is a fresh temporary folder (``source`` = the unzipped zip, ``submission``,
``results``) and whose kit checkout is masked by empty folders, so ``run_autograder`` can only
use what the zip carries. Nothing else of the machine is hidden.

What is simulated, exactly: Gradescope's image build (``setup.sh`` runs with
``SHIPML_SIMULATED_PYTHON``: it installs nothing and instead proves that this interpreter holds
every pinned version), its harness (copy ``run_autograder``, run it from ``/autograder`` as
root), and its container (a mount namespace, not a Docker container). Not simulated: the
download of the pinned wheels on Ubuntu, and Docker's own limits on namespaces and cgroups.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, is_root, shipml

from autograder.engine.mutants import list_mutants, materialize, reference_dir
from autograder.engine.spec import find_lab
from autograder.integrations.gradescope import check_pins, export_zip

LAB = find_lab("serving")
HELDOUT = REPO / "datasets" / "flights"  # the bundled Sep-Dec months, given explicitly
SCHEMA = REPO / "autograder" / "integrations" / "schemas" / "gradescope-results.schema.json"
BIN = Path(sys.executable).parent
MUTANT = "version_missing"  # loses api_contract only: a score that does not depend on sampling

needs_root = pytest.mark.skipif(not is_root() or shutil.which("bwrap") is None, reason="the simulated container needs root and bubblewrap")


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    return export_zip(LAB, tmp_path_factory.mktemp("export") / "autograder.zip", HELDOUT)


def simulate(zip_path: Path, submission: Path | None, root: Path) -> tuple[dict, str, float]:
    """Run setup.sh and run_autograder as Gradescope would, in a private /autograder tree.

    Returns results.json, what run_autograder printed (the staff's stdout) and its seconds.
    """
    tree = root / "autograder"
    for name in ("source", "submission", "results"):
        (tree / name).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tree / "source")
    for name in ("setup.sh", "run_autograder"):  # zipfile does not restore modes
        (tree / "source" / name).chmod(0o755)
    if submission is not None:
        shutil.copytree(submission, tree / "submission", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.joblib"))
    # A fresh root (tmpfs) holding the machine's own top-level folders, so that /autograder is
    # made inside the namespace, never on the host; the kit's checkout is masked.
    argv = ["bwrap", "--die-with-parent", "--cap-add", "ALL", "--tmpfs", "/"]
    for entry in sorted(os.listdir("/")):
        path = f"/{entry}"
        if entry == "autograder":
            continue
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif entry == "dev":
            argv += ["--dev-bind", path, path]
        elif os.path.isdir(path):
            argv += ["--bind", path, path]
    argv += ["--bind", str(tree), "/autograder"]
    for masked in ("autograder", "labs", "datasets", "tests"):
        argv += ["--tmpfs", str(REPO / masked)]
    script = (
        "set -e; cp source/run_autograder /autograder/run_autograder; bash source/setup.sh >&2; "
        "start=$(date +%s%N); /autograder/run_autograder; "
        "echo \"shipml-ms $(( ($(date +%s%N) - start) / 1000000 ))\""
    )
    argv += ["--chdir", "/autograder", "--setenv", "SHIPML_SIMULATED_PYTHON", sys.executable, "--", "bash", "-c", script]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"simulated Gradescope run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    seconds = int(proc.stdout.strip().splitlines()[-1].split()[-1]) / 1000
    results = json.loads((tree / "results" / "results.json").read_text())
    return results, proc.stdout, seconds


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


@needs_root
def test_submission_without_submission_toml_scores_zero_with_one_message(autograder_zip, tmp_path):
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "app.py").write_text("print('hello')\n")
    results, stdout, _ = simulate(autograder_zip, upload, tmp_path / "run")
    assert results["score"] == 0
    assert results["output"].count("No submission.toml") == 1
    assert all(t["score"] == 0 and "No submission.toml" not in t["output"] for t in results["tests"])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    validate_with_check_jsonschema(path)


@needs_root
def test_a_broken_autograder_still_writes_results(autograder_zip, tmp_path):
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(autograder_zip) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "kit/autograder/engine/classrun.py":  # a bug in the grader, found at run time
                data = b"raise RuntimeError('a bug in the grader')\n"
            dst.writestr(info, data)
    results, stdout, _ = simulate(broken, reference_dir(LAB), tmp_path / "run")
    assert results["score"] == 0 and "autograder failed" in results["output"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    validate_with_check_jsonschema(path)


@needs_root
@pytest.mark.slow
def test_simulated_gradescope_scores_equal_local_grade(autograder_zip, tmp_path):
    """The reference and one mutant, each graded by ``shipml grade`` and inside the simulated
    Gradescope container: the same score for every check. Two gradings at a time (2 cores)."""
    mutant = next(m for m in list_mutants(LAB) if m.name == MUTANT)
    subs = {"reference": reference_dir(LAB), MUTANT: materialize(LAB, mutant, tmp_path / "subs" / MUTANT)}

    def local(name: str) -> dict:
        out = tmp_path / "local" / name
        shipml("grade", "serving", str(subs[name]), "--out", str(out), "--heldout", str(HELDOUT), "--quiet", check=True, timeout=900)
        return json.loads((out / "results.json").read_text())

    def remote(name: str) -> tuple[dict, str, float]:
        return simulate(autograder_zip, subs[name], tmp_path / "gradescope" / name)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {("local", n): pool.submit(local, n) for n in subs} | {("gradescope", n): pool.submit(remote, n) for n in subs}
        done = {key: f.result() for key, f in futures.items()}
    for name in subs:
        here, (there, stdout, seconds) = done[("local", name)], done[("gradescope", name)]
        assert [(t["name"], t["score"], t["max_score"]) for t in there["tests"]] == [(t["name"], t["score"], t["max_score"]) for t in here["tests"]], name
        assert there["score"] == here["score"]
        assert "## How this submission was run" in stdout  # the staff copy went to stdout
        print(f"{name}: local {here['score']:g}, simulated Gradescope {there['score']:g} in {seconds:.1f} s")
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(there))
        validate_with_check_jsonschema(path)
    assert done[("local", "reference")]["score"] == LAB.max_points
    lost = {t["name"].split(":")[0] for t in done[("gradescope", MUTANT)][0]["tests"] if t["score"] < t["max_score"]}
    assert lost == set(mutant.fails)
    print(f"four gradings, two at a time: {time.monotonic() - started:.0f} s")
