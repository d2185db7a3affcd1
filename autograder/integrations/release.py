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
import tomllib
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

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


_RELEASE_DROPS = ("reference", "mutants")
"""The ``[lab]`` keys a release drops: pointers to instructor folders it does not hold."""


def _drop_from_lab_toml(text: str, *, drop_hidden: bool, lab_keys: tuple[str, ...]) -> str:
    """``text`` edited with tomlkit (comments and layout kept): without the hidden checks when
    ``drop_hidden``, and without ``lab_keys`` in ``[lab]``. Both ways TOML lists checks are
    handled: ``[[checks]]`` tables and a ``checks = [{...}, ...]`` array of inline tables."""
    doc = tomlkit.parse(text)
    lab = doc.get("lab")
    if isinstance(lab, dict):
        for key in lab_keys:
            lab.pop(key, None)
    checks = doc.get("checks")
    if drop_hidden and isinstance(checks, list):
        for i in reversed(range(len(checks))):
            if isinstance(checks[i], dict) and checks[i].get("visibility") == "hidden":
                del checks[i]
    return tomlkit.dumps(doc).rstrip() + "\n"


def _is_hidden(check: object) -> bool:
    return isinstance(check, dict) and check.get("visibility") == "hidden"


def edit_lab_toml(text: str, *, drop_hidden: bool, lab_keys: tuple[str, ...], where: str, product: str) -> str:
    """``text`` (a lab.toml) for ``product`` (the release, the Gradescope zip): without its hidden
    checks when ``drop_hidden``, without the ``[lab]`` keys ``lab_keys``, and otherwise unchanged
    (comments included). What the edit wrote is parsed again with tomllib and must hold exactly
    the original's data minus those edits; if not, a :class:`ShipmlError` says so and nothing is
    returned to write. ``where`` names the file in messages."""
    fix = "write the checks as [[checks]] tables and the lab's keys under [lab], as labs/serving/lab.toml does, and run again"
    try:
        before = tomllib.loads(text)
        edited = _drop_from_lab_toml(text, drop_hidden=drop_hidden, lab_keys=lab_keys)
        after = tomllib.loads(edited)
    except (tomllib.TOMLDecodeError, TOMLKitError) as exc:
        raise ShipmlError(f"{where}: cannot be edited for the {product} ({exc}); nothing was written; {fix}") from None
    checks = before.get("checks", [])
    expected = {
        **before,
        "lab": {k: v for k, v in before.get("lab", {}).items() if k not in lab_keys},
        "checks": [c for c in checks if not (drop_hidden and _is_hidden(c))],
    }
    if drop_hidden and not expected["checks"]:
        raise ShipmlError(f"{where}: every check is hidden, so the {product} would hold none; make at least one check public (visibility = \"public\")")
    left = [str(c.get("id", "?")) for c in after.get("checks", []) if _is_hidden(c)] if drop_hidden else []
    if left:
        raise ShipmlError(f"{where}: the {product}'s lab.toml would still hold hidden check(s) {', '.join(left)}; nothing was written; {fix}")
    kept = [k for k in lab_keys if k in after.get("lab", {})]
    if kept:
        raise ShipmlError(f"{where}: the {product}'s lab.toml would still hold [lab] {', '.join(kept)}; nothing was written; {fix}")
    if {**after, "checks": after.get("checks", [])} != expected:
        raise ShipmlError(f"{where}: editing it for the {product} changed more than its hidden checks and [lab] {', '.join(lab_keys)}; nothing was written; {fix}")
    return edited


def _public_lab_toml(lab: LabSpec) -> str:
    """The lab's lab.toml for the release: no hidden check, no pointer to an instructor folder."""
    path = lab.root / LAB_FILE
    return edit_lab_toml(path.read_text(encoding="utf-8"), drop_hidden=True, lab_keys=_RELEASE_DROPS,
                         where=str(path), product="student release")


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
    lab_toml = _public_lab_toml(lab)  # before anything is written: a lab.toml it cannot clean stops the release
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
    (lab_dir / LAB_FILE).write_text(lab_toml, encoding="utf-8")
    if (lab.root / "README.md").is_file():
        shutil.copy(lab.root / "README.md", lab_dir / "README.md")
    data_dir = write_public(kit / "datasets" / "flights", FLIGHTS_DIR, dataset_id="release")
    if (FLIGHTS_DIR / "README.md").is_file():
        shutil.copy(FLIGHTS_DIR / "README.md", data_dir / "README.md")
    return sorted(p for p in out.rglob("*") if p.is_file())
