"""A lab as a Gradescope autograder (``shipml export gradescope LAB --out autograder.zip``).

Gradescope's documented format (its "Autograder Specifications"): a zip with ``setup.sh`` and
``run_autograder`` at its root. Gradescope unpacks the zip into ``/autograder/source``, runs
``setup.sh`` once as root when it builds the image, copies ``run_autograder`` to
``/autograder/run_autograder``, and for every submission puts the student's files in
``/autograder/submission``, runs ``run_autograder`` from ``/autograder`` and uploads
``/autograder/results/results.json``. Everything ``run_autograder`` prints goes to
``/autograder/results/stdout``, which only the staff see.

The zip holds::

    setup.sh, run_autograder     the two scripts
    requirements.txt             the kit's runtime (shipml[labs]), pinned to the versions that
                                 were installed where the export ran
    MANIFEST.json                lab, kit and Python versions, the held-out data's checksums
    kit/autograder/              the kit's package (engine, checks, sandbox)
    kit/labs/<lab>/lab.toml      the lab with its hidden checks (no reference, no mutants), and
                                 its instructor folder hidden/ when it has one (the files, not links)
    kit/datasets/flights/        the kit's flight data (the teams train on its public months)
    kit/heldout/                 the instructor's held-out data for the hidden checks

The hidden checks and the held-out data ride in the zip only; ``shipml release`` never ships
them. On Gradescope the team's code runs inside the same container. Where bubblewrap can make
its namespaces, the sandbox's allow-list view keeps ``/autograder/source`` out of the team's
sight; where it cannot (Docker's default seccomp profile and capabilities forbid them), the
team's commands run as a uid of their own, and ``run`` closes ``/autograder/source`` to every
user but root before grading. tests/test_export_gradescope.py runs both kinds of container
on a local Docker engine: a team that tries to read the held-out data reads nothing.

This module is also the program ``run_autograder`` starts (``python -m
autograder.integrations.gradescope run``): it grades the submission in its own ``shipml
grade`` process (:func:`autograder.engine.classrun.grade_one`, which survives a crashing or
hanging submission), writes the student copy of the results, and prints the staff copy of the
report to stdout. Whatever happens, it writes a results.json: a submission without
``submission.toml`` gets a score of 0 and one message saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from autograder import __version__
from autograder.engine.results import SubmissionResult, not_graded, read_results, write_atomic
from autograder.engine.spec import LAB_FILE, SUBMISSION_FILE, LabSpec, load_lab
from autograder.errors import ShipmlError
from autograder.integrations.release import edit_lab_toml
from autograder.paths import FLIGHTS_DIR, KIT_ROOT

AUTOGRADER = Path("/autograder")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.joblib", ".ipynb_checkpoints", "build.py")
_KIT_FILES = ("pyproject.toml", "LICENSE", "LICENSE-CONTENT.md")
EXTRAS = ("labs",)
"""The kit's extras the container needs: the base (grading) and ``labs`` (the libraries the
teams' services may import, as on the course machines)."""

SETUP_SH = r"""#!/usr/bin/env bash
# Written by `shipml export gradescope`. Gradescope runs this once, as root, when it builds the
# autograder image, with this zip unpacked in /autograder/source. It installs Python 3.11, the
# sandbox's bubblewrap and the kit's runtime at the versions in requirements.txt (those the
# export was made and tested with), into /autograder/venv.
set -euo pipefail
SRC=/autograder/source
VENV=/autograder/venv
if [ -n "${SHIPML_SIMULATED_PYTHON:-}" ]; then
  # Set only by the kit's own tests (tests/test_export_gradescope.py), which run this script in
  # a private /autograder tree with no network: nothing is installed; the interpreter that
  # already has the kit's runtime must hold every pinned version, or setup fails here.
  command -v bwrap >/dev/null
  "$SHIPML_SIMULATED_PYTHON" -c "import sys; sys.path.insert(0, '$SRC/kit'); from autograder.integrations.gradescope import main; sys.exit(main(['check-pins', '$SRC/requirements.txt']))"
  # A wrapper, not a symlink: a virtual environment's interpreter finds its packages from the
  # path it was started by, which a symlink elsewhere would change.
  mkdir -p "$VENV/bin"
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$SHIPML_SIMULATED_PYTHON" > "$VENV/bin/python"
  chmod 755 "$VENV/bin/python"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates
  if ! command -v python3.11 >/dev/null; then
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv
  fi
  python3.11 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --no-cache-dir -r "$SRC/requirements.txt"
  "$VENV/bin/python" -c "import sys; sys.path.insert(0, '$SRC/kit'); from autograder.integrations.gradescope import main; sys.exit(main(['check-pins', '$SRC/requirements.txt']))"
fi
# The kit imports, with the lab it grades.
PYTHONPATH="$SRC/kit" "$VENV/bin/python" -m autograder checks "$SRC/kit/labs/$(sed -n 's/.*"lab": "\([^"]*\)".*/\1/p' "$SRC/MANIFEST.json")" >/dev/null
echo "shipml autograder ready"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Written by `shipml export gradescope`. Gradescope runs this as root from /autograder for each
# submission: it grades /autograder/submission and writes /autograder/results/results.json.
# What it prints (the staff copy of the report) reaches the staff only.
RESULTS=/autograder/results/results.json
mkdir -p /autograder/results
rm -f "$RESULTS"
cd /autograder/source/kit || true
PYTHONPATH=/autograder/source/kit /autograder/venv/bin/python -m autograder.integrations.gradescope run
status=$?
if [ ! -s "$RESULTS" ]; then
  # The grader itself could not start (a broken image): still give Gradescope a results.json.
  printf '{"score": 0, "output": "The autograder could not start (exit %s); the course staff have been shown why. Nothing is wrong with your submission that this message can tell.", "output_format": "text", "stdout_visibility": "hidden", "tests": []}\n' "$status" > "$RESULTS"
fi
exit 0
"""


def runtime_pins(extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """``name==version`` for every distribution ``shipml[extras]`` needs, as installed here.

    pip cannot list the dependency closure of one installed project without resolving it again
    against an index (``pip freeze`` lists the whole environment: the book, nbgrader, the
    browsers' test tools), so we walk the installed distributions' ``Requires-Dist`` with
    ``packaging``, evaluating each requirement's markers for this interpreter and the extras
    asked for. The pins are the versions the kit's tests ran with on this machine.
    """
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:
        raise ShipmlError("the export pins versions with 'packaging': pip install packaging") from None
    seen: dict[str, set[str]] = {}
    versions: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [("shipml", frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and wanted <= seen[key]:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ShipmlError(f"'{name}' is required by the kit's runtime but not installed here; run 'make test' (pip install -e '.[all,dev]') first") from None
        seen[key] = seen.get(key, set()) | set(wanted)
        versions[key] = f"{dist.metadata['Name']}=={dist.version}"
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                continue
            if canonicalize_name(req.name) != key:  # shipml[all] names shipml itself
                todo.append((req.name, frozenset(req.extras)))
    versions.pop("shipml", None)
    return sorted(versions.values(), key=str.lower)


def check_pins(path: Path) -> list[str]:
    """The pins of ``path`` that this interpreter does not hold (an empty list: all held)."""
    missing = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "not installed"
        if have != version:
            missing.append(f"{name}=={version} (here: {have})")
    return missing


_EXPORT_DROPS = ("reference", "mutants", "starter")
"""The ``[lab]`` keys the zip drops: pointers to folders that stay in the kit."""


def _private_lab_toml(lab: LabSpec) -> str:
    """lab.toml with every check (hidden ones too), without its pointers to the reference, the
    mutants and the starter (edited by parsing, so that its comments stay)."""
    path = lab.root / LAB_FILE
    return edit_lab_toml(path.read_text(encoding="utf-8"), drop_hidden=False, lab_keys=_EXPORT_DROPS,
                         where=str(path), product="Gradescope autograder")


def _sha256_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def require_heldout(lab: LabSpec, heldout: Path | None) -> Path | None:
    """The held-out folder the lab's hidden checks need, validated; a one-line error if missing."""
    hidden = [c.id for c in lab.selected("hidden")]
    if not hidden:
        return Path(heldout).resolve() if heldout else None
    if heldout is None:
        raise ShipmlError(
            f"lab '{lab.lab.name}' has hidden checks ({', '.join(hidden)}) that grade on held-out data, and the zip must carry it: "
            f"missing --heldout DIR (your course's held-out folder; the kit's bundled Sep-Dec months are {FLIGHTS_DIR})"
        )
    from autograder.data import DataError, load_flights

    try:
        load_flights("heldout", heldout)
    except DataError as exc:
        raise ShipmlError(f"--heldout {heldout}: {exc}") from None
    return Path(heldout).resolve()


def build_tree(lab: LabSpec, dest: Path, heldout: Path | None, *, leaderboard: bool = False) -> Path:
    """Write the autograder's files (the zip's contents) into ``dest``; return ``dest``."""
    heldout = require_heldout(lab, heldout)
    lab_toml = _private_lab_toml(lab)  # before anything is written: a lab.toml it cannot edit stops the export
    dest.mkdir(parents=True, exist_ok=True)
    kit = dest / "kit"
    shutil.copytree(KIT_ROOT / "autograder", kit / "autograder", ignore=_IGNORE)
    for name in _KIT_FILES:
        shutil.copy(KIT_ROOT / name, kit / name)
    lab_dir = kit / "labs" / lab.lab.name
    lab_dir.mkdir(parents=True)
    (lab_dir / LAB_FILE).write_text(lab_toml, encoding="utf-8")
    if (lab.root / "README.md").is_file():
        shutil.copy(lab.root / "README.md", lab_dir / "README.md")
    if (lab.root / "hidden").is_dir():  # what hidden checks read (ctx.data.hidden); symlinks copied as files
        shutil.copytree(lab.root / "hidden", lab_dir / "hidden", symlinks=False, ignore=_IGNORE)
    if lab.lab.data:
        shutil.copytree(FLIGHTS_DIR, kit / "datasets" / "flights", ignore=_IGNORE)
    if heldout is not None:
        shutil.copytree(heldout, kit / "heldout", ignore=_IGNORE)
    (dest / "requirements.txt").write_text(
        "# shipml's runtime (shipml[labs]) at the versions the export ran with; setup.sh installs these.\n"
        + "\n".join(runtime_pins()) + "\n", encoding="utf-8")
    manifest = {
        "lab": lab.lab.name,
        "kit_version": __version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "checks": {c.id: {"points": c.points, "visibility": c.visibility} for c in lab.checks},
        "max_score": lab.max_points,
        "heldout": _sha256_tree(kit / "heldout") if heldout is not None else {},
        "leaderboard": leaderboard,
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (dest / "setup.sh").write_text(SETUP_SH, encoding="utf-8")
    (dest / "run_autograder").write_text(RUN_AUTOGRADER, encoding="utf-8")
    return dest


def export_zip(lab: LabSpec, out: Path, heldout: Path | None, *, leaderboard: bool = False) -> Path:
    """Write ``lab``'s Gradescope autograder zip to ``out``; return ``out``."""
    out = Path(out)
    if out.suffix != ".zip":
        raise ShipmlError(f"{out}: give a .zip file name for the autograder (e.g. --out autograder.zip)")
    if out.resolve() == KIT_ROOT or KIT_ROOT in out.resolve().parents:
        # The kit's checkout is a git repository the teams may see; the zip holds hidden data.
        raise ShipmlError(f"{out}: inside the kit's checkout; write the zip outside it (it holds the held-out data)")
    with tempfile.TemporaryDirectory(prefix="shipml-gradescope-") as tmp:
        tree = build_tree(lab, Path(tmp) / "autograder", heldout, leaderboard=leaderboard)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            # The files at the zip's root, as Gradescope requires; the scripts keep their
            # executable bit (zip stores Unix modes in the high bits of external_attr).
            for path in sorted(tree.rglob("*")):
                if path.is_file():
                    name = path.relative_to(tree).as_posix()
                    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                    mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
                    info.external_attr = (0o100000 | mode) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, path.read_bytes())
        partial.replace(out)
    return out


# ---- inside the container: run_autograder -------------------------------------------------


def find_submission(folder: Path) -> Path | None:
    """The folder that holds submission.toml: the upload's top, or its one subfolder (a zip of
    the repository's folder rather than of its files)."""
    if (folder / SUBMISSION_FILE).is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))] if folder.is_dir() else []
    if len(subs) == 1 and (subs[0] / SUBMISSION_FILE).is_file():
        return subs[0]
    return None


def gradescope_json(result: SubmissionResult, leaderboard: bool) -> dict[str, Any]:
    data = result.to_gradescope()
    if leaderboard:
        # Gradescope's documented leaderboard entries: name, value, and "order" ("desc" by default).
        data["leaderboard"] = [
            {"name": "Score", "value": result.score},
            {"name": "Grading time (s)", "value": round(result.execution_time, 1), "order": "asc"},
        ]
    return data


def run(root: Path = AUTOGRADER) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json`` (student copy)."""
    started = time.monotonic()
    results = root / "results" / "results.json"
    source = root / "source"
    manifest = json.loads((source / "MANIFEST.json").read_text(encoding="utf-8"))
    if os.geteuid() == 0:
        # The zip's files (hidden checks, held-out data) are closed to every user but root, and
        # the results folder is root's, whatever rights Gradescope's harness gave it. Under
        # bubblewrap the team never sees either anyway; in a container that forbids its
        # namespaces (Docker's default profile), these permissions are what keeps the team's
        # uid from reading the one and forging the other.
        os.chmod(source, 0o700)
        results.parent.mkdir(parents=True, exist_ok=True)
        os.chown(results.parent, 0, 0)
        os.chmod(results.parent, 0o755)
    kit = source / "kit"
    lab = load_lab(kit / "labs" / manifest["lab"])
    leaderboard = bool(manifest.get("leaderboard"))
    folder = find_submission(root / "submission")
    if folder is None:
        message = (f"No {SUBMISSION_FILE} in your submission: the grader cannot tell how to train and serve your system, "
                   f"so nothing was run. Upload your repository with {SUBMISSION_FILE} at its top (see the lab README).")
        result = not_graded(lab, "submission", message)
    else:
        from autograder.engine.classrun import grade_one

        with tempfile.TemporaryDirectory(prefix="shipml-gradescope-out-") as out:
            heldout = kit / "heldout" if (kit / "heldout").is_dir() else None
            outcome = grade_one(lab, folder, Path(out), lab.lab.time_limit, heldout=heldout)
            result = read_results(Path(out) / "instructor" / "results.json")
            print((Path(out) / "instructor" / "report.md").read_text(encoding="utf-8"))
            print(f"shipml: {outcome.name}: {outcome.status} in {outcome.seconds:.1f} s {outcome.detail}".rstrip())
    result.execution_time = round(time.monotonic() - started, 3)
    write_atomic(results, json.dumps(gradescope_json(result.redacted(), leaderboard), indent=2) + "\n")
    print(f"shipml: {result.team}: {result.score:g} / {result.max_score:g}; results.json written in {result.execution_time:.1f} s")
    return 0


def _last_resort(root: Path, exc: BaseException) -> None:
    """The grader itself failed: a results.json that says so, and the traceback for the staff."""
    traceback.print_exc()
    data = {
        "score": 0,
        "output": f"The autograder failed before it could grade this submission ({exc.__class__.__name__}). "
                  "The course staff can see why; please tell them.",
        "output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [],
    }
    write_atomic(root / "results" / "results.json", json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check-pins"] and len(args) == 2:
        missing = check_pins(Path(args[1]))
        for line in missing:
            print(f"shipml: pinned but not installed: {line}", file=sys.stderr)
        return 1 if missing else 0
    if args[:1] == ["run"]:
        root = Path(args[1]) if len(args) > 1 else AUTOGRADER
        try:
            return run(root)
        except Exception as exc:  # noqa: BLE001 - the one place that must always leave a results.json
            _last_resort(root, exc)
            return 0
    print("usage: python -m autograder.integrations.gradescope run [ROOT] | check-pins REQUIREMENTS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
