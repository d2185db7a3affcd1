"""The student release of a lab: what a team receives, as a folder ready to push as a template
repository (``shipml release LAB --out DIR``).

It holds the lab's brief, its starter (at the top, where the team works), the public data, the
public checks, and the kit (``shipml-kit/``: the ``autograder`` package, so that ``shipml check``
runs those checks). It never holds the reference solution, the mutants, the held-out months or
a notebook lab's source (reference answers and hidden tests): a notebook lab ships the notebook
as nbgrader releases it. The kit itself (this checkout) stays with the instructors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.engine.mutants import starter_dir
from autograder.engine.spec import LAB_FILE, LabSpec
from autograder.errors import ShipmlError
from autograder.paths import FLIGHTS_DIR, KIT_ROOT

KIT = "shipml-kit"
_KIT_FILES = ("pyproject.toml", "LICENSE", "LICENSE-CONTENT.md")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.joblib", ".ipynb_checkpoints", "_build")

_GITIGNORE = """.venv/
__pycache__/
*.pyc
*.joblib
model*.json
.ipynb_checkpoints/
"""


def _public_lab_toml(lab: LabSpec) -> str:
    """The lab's lab.toml with its hidden checks and its pointers to instructor folders removed
    (text edits, so that its comments stay: the blocks are those ``[[checks]]`` opens)."""
    text = (lab.root / LAB_FILE).read_text(encoding="utf-8")
    head, *blocks = re.split(r"(?m)^(?=\[\[checks\]\]\s*$)", text)
    head = re.sub(r'(?m)^(reference|mutants)\s*=.*\n', "", head)
    kept = [b for b in blocks if not re.search(r'(?m)^visibility\s*=\s*"hidden"', b)]
    return head + "".join(kept)


def _release_notebooks(lab: LabSpec, dest: Path) -> list[Path]:
    """A notebook lab's notebooks as nbgrader releases them: no reference answers, no hidden tests."""
    source = lab.root / "course" / "source"
    if not source.is_dir():
        return []
    from autograder.integrations.nbgrader_course import new_course

    written = []
    with tempfile.TemporaryDirectory(prefix="shipml-release-") as tmp:
        course = new_course(lab.root, Path(tmp) / "course")
        # nbgrader runs `alembic` from PATH: put this interpreter's scripts folder first.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for assignment in sorted(p.name for p in source.iterdir() if p.is_dir()):
            proc = subprocess.run(
                [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
                cwd=course, capture_output=True, text=True, timeout=600, env=env,
            )
            released = course / "release" / assignment
            if proc.returncode != 0 or not released.is_dir():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise ShipmlError(f"nbgrader generate_assignment {assignment} failed ({tail[0]}); run it in a copy of {lab.root / 'course'} to see why")
            for notebook in sorted(released.glob("*.ipynb")):
                shutil.copy(notebook, dest / notebook.name)
                written.append(dest / notebook.name)
    return written


def _readme(lab: LabSpec) -> str:
    brief = (lab.root / "README.md").read_text(encoding="utf-8") if (lab.root / "README.md").is_file() else f"# {lab.lab.title}\n"
    # The kit's book is not in the release: its chapter links become plain section names.
    brief = re.sub(r"\[([^\]]+)\]\((?:\.\./)+book/[^)]*\)", r"*\1*", brief)
    return (
        f"<!-- The team's template repository for the lab '{lab.lab.name}', written by `shipml release`. -->\n"
        f"{brief.rstrip()}\n\n"
        "## This repository\n\n"
        "Your team works at the top of this folder (it started as the lab's starter). "
        f"`{KIT}/` is the course's kit: the `shipml` command, the flight-data loader `autograder.data` "
        "and the public data (January-August). Do not edit it; the staff grade with their own copy.\n\n"
        "```bash\n"
        "python3 -m venv .venv && .venv/bin/pip install -e './shipml-kit[labs]'   # once\n"
        f".venv/bin/shipml checks {lab.lab.name}       # what is checked, for how many points\n"
        f".venv/bin/shipml check {lab.lab.name} .      # run the public checks on this folder\n"
        "```\n\n"
        "The hidden checks run only when the staff grade, on held-out data this repository does not hold.\n"
    )


def write_release(lab: LabSpec, out: Path) -> list[Path]:
    """Write ``lab``'s student release into ``out`` (new or empty); return the files written."""
    from autograder.data import write_public

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ShipmlError(f"{out}: exists and is not empty; give a new folder for the release")
    if out.resolve() == KIT_ROOT or KIT_ROOT in out.resolve().parents:
        raise ShipmlError(f"{out}: inside the kit's own checkout; write the release outside it (e.g. ../{lab.lab.name}-template)")
    starter = starter_dir(lab)
    if not starter.is_dir():
        raise ShipmlError(f"{starter}: the lab has no starter folder; lab.toml's 'starter' must name one")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(starter, out, dirs_exist_ok=True, ignore=_IGNORE)
    _release_notebooks(lab, out)
    (out / "README.md").write_text(_readme(lab), encoding="utf-8")
    (out / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
    kit = out / KIT
    shutil.copytree(KIT_ROOT / "autograder", kit / "autograder", ignore=_IGNORE)
    for name in _KIT_FILES:
        shutil.copy(KIT_ROOT / name, kit / name)
    (kit / "README.md").write_text(
        "# shipml kit (student copy)\n\nThe `shipml` command, the public checks of this lab and the public flight data. "
        "See the README one folder up.\n", encoding="utf-8")
    lab_dir = kit / "labs" / lab.lab.name
    lab_dir.mkdir(parents=True)
    (lab_dir / LAB_FILE).write_text(_public_lab_toml(lab), encoding="utf-8")
    if (lab.root / "README.md").is_file():
        shutil.copy(lab.root / "README.md", lab_dir / "README.md")
    data_dir = write_public(kit / "datasets" / "flights", FLIGHTS_DIR, dataset_id="release")
    if (FLIGHTS_DIR / "README.md").is_file():
        shutil.copy(FLIGHTS_DIR / "README.md", data_dir / "README.md")
    return sorted(p for p in out.rglob("*") if p.is_file())
