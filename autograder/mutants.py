"""A lab's mutants: the reference solution with one realistic defect each, stored as patches.

``labs/<lab>/mutants/mutants.toml`` names each mutant, says what its defect is and lists the
checks it must fail; ``<name>.patch`` is the defect as a unified diff against the reference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import ShipmlError
from autograder.spec import LabSpec


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    fails: tuple[str, ...]
    patch: Path


def reference_dir(lab: LabSpec) -> Path:
    return (lab.root / lab.lab.reference).resolve()


def starter_dir(lab: LabSpec) -> Path:
    return (lab.root / lab.lab.starter).resolve()


def list_mutants(lab: LabSpec) -> list[Mutant]:
    folder = lab.root / lab.lab.mutants
    index = folder / "mutants.toml"
    if not index.is_file():
        return []
    data = tomllib.loads(index.read_text(encoding="utf-8"))
    ids = {c.id for c in lab.checks}
    mutants = []
    for name, entry in data.items():
        unknown = set(entry["fails"]) - ids
        if unknown:
            raise ShipmlError(f"{index}: mutant '{name}' lists unknown checks {sorted(unknown)}; use ids from lab.toml")
        mutants.append(Mutant(name, entry["description"], tuple(entry["fails"]), folder / f"{name}.patch"))
    return mutants


def materialize(lab: LabSpec, mutant: Mutant, dest: Path) -> Path:
    """Write the reference solution with ``mutant``'s patch applied into ``dest``."""
    shutil.copytree(reference_dir(lab), dest, ignore=shutil.ignore_patterns("__pycache__", "*.joblib"))
    # `git apply` works outside a repository and refuses a patch that no longer fits. Inside a
    # repository it would resolve paths from that repository's top and silently skip ours, so
    # stop git from looking above ``dest`` for one.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(dest.resolve().parent)}
    proc = subprocess.run(
        ["git", "apply", "--verbose", "--whitespace=nowarn", str(mutant.patch.resolve())],
        cwd=dest, capture_output=True, text=True, env=env,
    )
    if proc.returncode != 0 or "Applied patch" not in proc.stderr:
        raise ShipmlError(f"{mutant.patch}: does not apply to the reference ({proc.stderr.strip()}); regenerate it")
    return dest
