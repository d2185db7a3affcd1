"""The two spec files, ``lab.toml`` and ``submission.toml``, read and validated with pydantic.

A malformed or missing file raises :class:`SpecError` whose one-line message names the file,
the field and the fix.
"""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from autograder.errors import ShipmlError
from autograder.paths import LABS_DIR

LAB_FILE = "lab.toml"
SUBMISSION_FILE = "submission.toml"

# The placeholders a team command may use, and what the harness puts there.
PLACEHOLDERS: dict[str, str] = {
    "python": "the harness's Python interpreter (it has the kit's libraries installed)",
    "port": "the free loopback port the service must listen on",
    "data": "a folder with the public (training and validation) data",
    "input": "a CSV of rows to predict offline",
    "output": "where the offline predictions CSV must be written",
    "model": "the model file: train writes it there, serve and predict load it from there",
}

# The placeholders each command receives: a command may use only these, checked when
# submission.toml loads, so that a '{port}' in 'train' is a one-line error, not a grader crash.
COMMAND_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "install": ("python",),
    "train": ("python", "data", "model"),
    "serve": ("python", "data", "port", "model"),
    "predict": ("python", "data", "input", "output", "model"),
    "test": ("python", "data"),
}


class SpecError(ShipmlError):
    """A spec file is missing or malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(_Strict):
    """One check as ``lab.toml`` lists it."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    function: str
    points: Annotated[float, Field(gt=0)]
    visibility: Literal["public", "hidden"] = "public"
    description: Annotated[str, Field(min_length=3)]
    ml_test_score: str = ""
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    params: dict[str, Any] = Field(default_factory=dict)
    passes_when: str = ""  # the lab README's "passes when" cell; {name} is the param's value

    def passes_when_text(self) -> str:
        return self.passes_when.format(**self.params) if self.passes_when else self.description

    @field_validator("function")
    @classmethod
    def _function_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:check_\w+", value):
            raise ValueError(
                f"'{value}' must name the check by import path as module:check_<property>, "
                "e.g. autograder.checks.serving:check_api_contract"
            )
        return value

    @field_validator("ml_test_score")
    @classmethod
    def _ml_test_score(cls, value: str) -> str:
        if value and not re.fullmatch(r"(Data|Model|Infra|Monitor) [1-7]", value):
            raise ValueError(
                f"'{value}' is not an ML Test Score test; use 'Data N', 'Model N', 'Infra N' or 'Monitor N' with N in 1..7"
            )
        return value


class LabInfo(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    title: Annotated[str, Field(min_length=3)]
    reference: str = "solution"
    starter: str = "starter"
    mutants: str = "mutants"
    commands: list[Literal["install", "train", "serve", "predict", "test"]] = Field(
        default_factory=list
    )
    time_limit: Annotated[float, Field(gt=0, le=7200)] = 900.0
    data: bool = False  # give the team's commands the public flight data as {data}


class LabSpec(_Strict):
    """A lab's ``lab.toml``: its identity and its checks, in order."""

    lab: LabInfo
    checks: Annotated[list[CheckSpec], Field(min_length=1)]
    root: Path = Path(".")

    @field_validator("checks")
    @classmethod
    def _unique_ids(cls, checks: list[CheckSpec]) -> list[CheckSpec]:
        seen: set[str] = set()
        for check in checks:
            if check.id in seen:
                raise ValueError(f"check id '{check.id}' appears twice; give each check its own id")
            seen.add(check.id)
        return checks

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)

    def selected(self, visibility: str | None = None) -> list[CheckSpec]:
        return [c for c in self.checks if visibility is None or c.visibility == visibility]


class Member(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]+$")]
    name: str = ""


class Team(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    members: list[Member] = Field(default_factory=list)


def _check_template(command: str, value: str) -> str:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid command template ({exc}); write '{{{{' for a literal brace") from None
    allowed = COMMAND_PLACEHOLDERS[command]
    for name in fields:
        if name in allowed:
            continue
        known = ", ".join("{" + p + "}" for p in allowed)
        if name in PLACEHOLDERS:
            raise ValueError(f"uses '{{{name}}}', which the {command} command does not receive; it may use {known}")
        raise ValueError(f"unknown placeholder '{{{name}}}'; use one of {known}")
    return value


class Commands(_Strict):
    install: str = ""
    train: str = ""
    serve: str = ""
    predict: str = ""
    test: str = ""

    @field_validator("install", "train", "serve", "predict", "test")
    @classmethod
    def _templates(cls, value: str, info: ValidationInfo) -> str:
        return _check_template(str(info.field_name), value)


class Service(_Strict):
    health_path: Annotated[str, Field(pattern=r"^/")] = "/health"
    startup_timeout: Annotated[float, Field(gt=0, le=600)] = 60.0


class SubmissionSpec(_Strict):
    """A team's ``submission.toml``: who they are and how to run their system."""

    team: Team
    commands: Commands = Commands()
    service: Service = Service()
    root: Path = Path(".")

    def command(self, name: str) -> str:
        return str(getattr(self.commands, name))


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    if path.is_dir():
        path = path / what
    if not path.is_file():
        raise SpecError(f"{path}: file not found; every {'lab' if what == LAB_FILE else 'submission'} folder needs a {what}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text; save it as UTF-8") from None


def _explain(path: Path, exc: ValidationError) -> SpecError:
    """Turn pydantic's report into one line: file, field, problem, fix."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "missing":
        problem = "is required but missing; add it"
    elif kind == "extra_forbidden":
        problem = "is not a known field; remove it or check its spelling"
    else:
        problem = err["msg"].removeprefix("Value error, ")
        if "input" in err and kind != "value_error":
            problem = f"= {err['input']!r}: {problem}"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return SpecError(f"{path}: field '{where}' {problem}{more}")


def load_lab(path: Path | str) -> LabSpec:
    """Read a lab folder's (or file's) ``lab.toml``, and validate each check's parameters
    against the model its function declares."""
    from autograder.engine.catalogue import validate_params

    path = Path(path)
    file = path / LAB_FILE if path.is_dir() else path
    data = _read_toml(path, LAB_FILE)
    try:
        lab = LabSpec.model_validate({**data, "root": file.parent.resolve()})
    except ValidationError as exc:
        raise _explain(file, exc) from None
    for check in lab.checks:
        try:
            validate_params(check.function, check.params)
        except ShipmlError as exc:
            raise SpecError(f"{file}: check '{check.id}': {exc}") from None
        except ValueError as exc:
            raise SpecError(f"{file}: check '{check.id}' ({check.function}): {exc}") from None
    return lab


def find_lab(name_or_path: str | Path) -> LabSpec:
    """A lab by folder path, or by its name under the kit's ``labs/`` folder."""
    path = Path(name_or_path)
    if not path.exists() and (LABS_DIR / str(name_or_path)).exists():
        path = LABS_DIR / str(name_or_path)
    if not path.exists():
        known = sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))
        raise SpecError(f"no lab '{name_or_path}': give a lab folder or one of {', '.join(known) or '(none)'}")
    return load_lab(path)


def load_submission(path: Path | str, lab: LabSpec | None = None) -> SubmissionSpec:
    """Read a submission folder's ``submission.toml``; with ``lab``, require the lab's commands."""
    path = Path(path)
    file = path / SUBMISSION_FILE if path.is_dir() else path
    data = _read_toml(path, SUBMISSION_FILE)
    try:
        spec = SubmissionSpec.model_validate({**data, "root": file.parent.resolve()})
    except ValidationError as exc:
        raise _explain(file, exc) from None
    if lab is not None:
        for name in lab.lab.commands:
            if not spec.command(name).strip():
                raise SpecError(
                    f"{file}: field 'commands.{name}' is required by lab '{lab.lab.name}'; "
                    f"add the command that {name}s your system (see the lab README)"
                )
    return spec
