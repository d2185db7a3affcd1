"""A lab's mutants: the reference solution with one realistic defect each.

Every lab keeps them in ``labs/<lab>/mutants/mutants.toml``, one table per mutant::

    [utc_hour_skew]
    description = "Serving converts the departure to UTC before taking its hour ..."
    fails = ["no_skew", "accuracy"]    # the lab.toml checks it must fail, and only those

A service lab's mutant is a patch against the reference (``<name>.patch``, or ``patch = ...``);
a notebook lab's mutant replaces cells (``[name.cells]``, on the reference answers or, with
``base = "release"``, on the notebook as released) and says which autograded cells lose how
many points (``[name.lost]``). A mutant without ``fails`` is not proven through the harness.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from autograder.engine.spec import LabSpec, SpecError
from autograder.errors import explain_validation

MUTANTS_FILE = "mutants.toml"
_FIELD = "field '{}'"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    fails: list[str] | None = None
    patch: str | None = None
    base: Literal["solution", "release"] = "solution"
    cells: dict[str, str] = {}
    lost: dict[str, float] = {}


@dataclass(frozen=True)
class Mutant:
    """One defective variant of a lab's reference, and what it must lose."""

    name: str
    description: str
    fails: tuple[str, ...] | None = None  # harness checks it must fail (None: not proven through the harness)
    patch: Path | None = None  # a service lab: the defect as a unified diff against the reference
    base: str = "solution"  # a notebook lab: "solution" (reference answers) or "release"
    cells: dict[str, str] = field(default_factory=dict)  # a notebook lab: grade id -> new source
    lost: dict[str, float] = field(default_factory=dict)  # a notebook lab: grade id -> points lost


def reference_dir(lab: LabSpec) -> Path:
    return (lab.root / lab.lab.reference).resolve()


def starter_dir(lab: LabSpec) -> Path:
    return (lab.root / lab.lab.starter).resolve()


def list_mutants(lab: LabSpec) -> list[Mutant]:
    """The lab's mutants, in file order; a bad entry is a one-line SpecError."""
    folder = lab.root / lab.lab.mutants
    index = folder / MUTANTS_FILE
    if not index.is_file():
        return []
    try:
        data = tomllib.loads(index.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{index}: not valid TOML ({exc})") from None
    ids = {c.id for c in lab.checks}
    mutants = []
    for name, raw in data.items():
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as exc:
            raise SpecError(f"{index}: mutant '{name}': {explain_validation(exc, where=_FIELD, model=_Entry)}") from None
        unknown = set(entry.fails or ()) - ids
        if unknown:
            raise SpecError(f"{index}: mutant '{name}' lists unknown checks {sorted(unknown)}; use ids from lab.toml")
        patch = folder / (entry.patch or f"{name}.patch")
        mutants.append(Mutant(
            name=name,
            description=entry.description,
            fails=None if entry.fails is None else tuple(entry.fails),
            patch=patch if patch.is_file() else None,
            base=entry.base,
            cells=dict(entry.cells),
            lost=dict(entry.lost),
        ))
    return mutants


def materialize(lab: LabSpec, mutant: Mutant, dest: Path) -> Path:
    """Write the reference solution with ``mutant``'s patch applied into ``dest``."""
    if mutant.patch is None:
        raise SpecError(f"mutant '{mutant.name}' of lab '{lab.lab.name}' has no patch file; only patch mutants materialize as folders")
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
        raise SpecError(f"{mutant.patch}: does not apply to the reference ({proc.stderr.strip()}); regenerate it")
    return dest
