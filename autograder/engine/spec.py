"""The two spec files, ``lab.toml`` and ``submission.toml``, read and validated with pydantic.

A lab declares the commands its teams give (``[lab.commands.<name>]``: when the harness runs
each one and which placeholders it receives); a submission gives one template per command.
A malformed or missing file raises :class:`SpecError` whose one-line message names the file,
the field and the fix.
"""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autograder.errors import ShipmlError, did_you_mean, explain_validation
from autograder.paths import LABS_DIR

LAB_FILE = "lab.toml"
SUBMISSION_FILE = "submission.toml"

HARNESS_PLACEHOLDERS: dict[str, str] = {
    "python": "the harness's Python interpreter (it has the kit's libraries installed)",
    "port": "the free loopback port the service must listen on",
    "data": "a folder with the public (training and validation) data",
    "model": "the model file: the harness picks its path; train writes it there, the other commands load it from there",
    "state": "a folder of the team's that survives the service's restarts (a database, a queue)",
}
"""The placeholders the harness fills for every command that receives them, and what it puts
there. Any other placeholder a lab declares (``input``, ``output``) is a *file* placeholder: the
check that runs the command fills it (``ctx.run(name, inputs=..., outputs=...)``)."""

STAGES: dict[str, str] = {
    "setup": "run once before the checks, in the order lab.toml declares them",
    "service": "the long-running service the checks talk to (it answers the health path)",
    "process": "a long-running process a check starts",
    "run": "a command a check runs to completion",
}
"""When the harness runs a command, by its ``stage``."""

Stage = Literal["setup", "service", "process", "run"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]

_TABLE_EXAMPLE = (
    'declare each command as a table, e.g. [lab.commands.train] with stage = "setup" and '
    'placeholders = ["python", "data", "model"] (see labs/serving/lab.toml)'
)


class SpecError(ShipmlError):
    """A spec file is missing or malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandDecl(_Strict):
    """One command a lab's teams give in ``submission.toml``, as ``lab.toml`` declares it."""

    stage: Stage = "run"
    placeholders: tuple[Name, ...] = ("python",)
    help: str = ""  # what the command does, completing "the command that ...": "trains the model on {data}"
    required: bool = True

    @field_validator("placeholders")
    @classmethod
    def _unique(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} twice; name each placeholder once")
        return names

    @model_validator(mode="after")
    def _service_listens(self) -> CommandDecl:
        if self.stage == "service" and "port" not in self.placeholders:
            raise ValueError("a service command must receive 'port' (the harness talks to it there); add it to placeholders")
        return self

    def file_placeholders(self) -> tuple[str, ...]:
        """The placeholders a check fills (``input``, ``output``): those the harness does not."""
        return tuple(p for p in self.placeholders if p not in HARNESS_PLACEHOLDERS)


COMMON_COMMANDS: dict[str, CommandDecl] = {
    "install": CommandDecl(stage="setup", placeholders=("python",), required=False, help="installs your dependencies"),
}
"""Commands every lab has without declaring them: a team may install its dependencies first
(optional, ``{python}`` only), whatever the lab."""

COURSE_COMMANDS: tuple[str, ...] = ("install", "train", "test", "predict", "serve")
"""The commands of the course's labs. A team's project grows lab by lab (the reference in
``labs/reference`` is one such project), so its submission.toml keeps the commands of the other
labs: a lab that does not declare one of these leaves it alone (neither checked nor run)."""


ROLES: dict[str, str] = {
    "data-scientist": "data scientist",
    "software-engineer": "software engineer",
    "operator": "operator",
    "domain": "domain person",
}
"""The course's four team roles (the id ``lab.toml`` uses, and the name the briefs use). Every
check names the role that owns it (see the serving lab README's Roles table): the data scientist
owns the model, its features and threshold; the software engineer the API contract, input
validation and the team's tests; the operator start-up, health, latency and the submission.toml
commands; the domain person what the system's mistakes cost its users."""

Role = Literal["data-scientist", "software-engineer", "operator", "domain"]

REQUIREMENTS: dict[str, str] = {
    "heldout": "the held-out data, which only the staff's grading has: the check must be hidden",
    "docker": "a Docker engine the harness can reach",
}
"""What a check may need beyond the team's submission (``requires`` in lab.toml)."""


class CheckSpec(_Strict):
    """One check as ``lab.toml`` lists it."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    function: str
    points: Annotated[float, Field(gt=0)]
    visibility: Literal["public", "hidden"] = "public"
    role: Annotated[Role, Field(validate_default=True)] = None  # type: ignore[assignment]  # required: see _role
    requires: list[Literal["heldout", "docker"]] = Field(default_factory=list)
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

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        # Before pydantic's own check, so that a missing or wrong role gets one message naming the four.
        if value not in ROLES:
            four = ", ".join(ROLES)
            if value is None:
                raise ValueError(f"is required: say which role owns the check, one of {four}")
            guess = did_you_mean(str(value), ROLES)
            raise ValueError(f"'{value}' is not a role of the course; use one of {four}" + (f" (did you mean {guess}?)" if guess else ""))
        return value

    @model_validator(mode="after")
    def _heldout_is_hidden(self) -> CheckSpec:
        if "heldout" in self.requires and self.visibility != "hidden":
            raise ValueError(f"check '{self.id}' requires the held-out data, which a team's self-check never has; make it visibility = \"hidden\"")
        return self

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
    commands: dict[Name, CommandDecl] = Field(default_factory=dict)
    time_limit: Annotated[float, Field(gt=0, le=7200)] = 900.0
    data: bool = False  # give the team's commands the public flight data as {data}

    @field_validator("commands", mode="before")
    @classmethod
    def _tables(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise ValueError(f"is a list of names (the old form); {_TABLE_EXAMPLE}")
        return value

    @field_validator("commands")
    @classmethod
    def _one_service(cls, commands: dict[str, CommandDecl]) -> dict[str, CommandDecl]:
        for name in commands:
            if name in COMMON_COMMANDS:
                raise ValueError(f"declares '{name}', which every lab has already (setup, {{python}} only); remove it")
        services = [name for name, decl in commands.items() if decl.stage == "service"]
        if len(services) > 1:
            raise ValueError(f"declares {' and '.join(services)} as stage 'service'; a lab has one service (make the others 'process')")
        return commands

    @model_validator(mode="after")
    def _data_given(self) -> LabInfo:
        if not self.data:
            for name, decl in self.commands.items():
                if "data" in decl.placeholders:
                    raise ValueError(f"commands.{name} receives 'data', but the lab gives none; set data = true or drop 'data' from its placeholders")
        return self


class LabSpec(_Strict):
    """A lab's ``lab.toml``: its identity, the commands its teams give, and its checks, in order."""

    lab: LabInfo
    checks: Annotated[list[CheckSpec], Field(min_length=1)]
    root: Annotated[Path, Field(exclude=True)] = Path(".")  # the folder it was read from (the loader sets it)

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

    def points_by_role(self) -> dict[str, float]:
        """The lab's points per role, for each of the four (0 for a role no check names)."""
        return {role: sum(c.points for c in self.checks if c.role == role) for role in ROLES}

    @property
    def commands(self) -> dict[str, CommandDecl]:
        """Every command a submission of this lab may give: ``install``, then the lab's own, in
        declared order."""
        return {**COMMON_COMMANDS, **self.lab.commands}

    def command(self, name: str) -> CommandDecl:
        """The declaration of command ``name``; a one-line SpecError naming the lab's commands."""
        decl = self.commands.get(name)
        if decl is None:
            guess = did_you_mean(name, self.commands)
            raise SpecError(
                f"lab '{self.lab.name}' has no command '{name}'{f'; did you mean {guess}?' if guess else ''} "
                f"(it declares: {', '.join(self.commands)})"
            )
        return decl

    def setup_steps(self) -> list[str]:
        """The setup commands, in the order the harness runs them: ``install``, then the lab's
        ``stage = "setup"`` commands as declared. A step the submission leaves out is skipped."""
        return [name for name, decl in self.commands.items() if decl.stage == "setup"]

    def service_command(self) -> str | None:
        """The name of the lab's service command (``stage = "service"``), or None."""
        return next((name for name, decl in self.commands.items() if decl.stage == "service"), None)

    def placeholders(self, name: str) -> tuple[str, ...]:
        """The placeholders command ``name`` receives (SpecError if the lab has no such command)."""
        return self.command(name).placeholders

    def selected(self, visibility: str | None = None) -> list[CheckSpec]:
        return [c for c in self.checks if visibility is None or c.visibility == visibility]


class Member(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]+$")]
    name: str = ""


class Team(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    members: list[Member] = Field(default_factory=list)


def template_fields(template: str) -> list[str]:
    """The placeholder names of a command template, in order (ValueError if it is malformed)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"'{template}' is not a valid command template ({exc}); write '{{{{' for a literal brace") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or spec or conversion:
            whole = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"'{whole}' is not a placeholder; write a placeholder as {{name}}, and '{{{{' for a literal brace")
        names.append(name)
    return names


def _template(value: str) -> str:
    template_fields(value)
    return value


Template = Annotated[str, AfterValidator(_template)]


class Service(_Strict):
    health_path: Annotated[str, Field(pattern=r"^/")] = "/health"
    startup_timeout: Annotated[float, Field(gt=0, le=600)] = 60.0


class SubmissionSpec(_Strict):
    """A team's ``submission.toml``: who they are and how to run their system (one command
    template per command of the lab, by name)."""

    team: Team
    commands: dict[Name, Template] = Field(default_factory=dict)
    service: Service = Service()
    root: Annotated[Path, Field(exclude=True)] = Path(".")  # the folder it was read from (the loader sets it)

    def command(self, name: str) -> str:
        """The team's template for command ``name``; '' when the submission does not give it."""
        return self.commands.get(name, "")


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


_FIELD = "field '{}'"


def _explain(path: Path, exc: ValidationError, model: type[BaseModel]) -> SpecError:
    """pydantic's report as one line: file, field, problem, fix."""
    return SpecError(f"{path}: {explain_validation(exc, where=_FIELD, model=model)}")


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
        raise _explain(file, exc, LabSpec) from None
    for check in lab.checks:
        try:
            validate_params(check.function, check.params)
        except ShipmlError as exc:
            raise SpecError(f"{file}: check '{check.id}': {exc}") from None
        except ValueError as exc:
            raise SpecError(f"{file}: check '{check.id}' ({check.function}): {exc}") from None
        try:
            check.passes_when_text()
        except KeyError as exc:
            name = exc.args[0]
            raise SpecError(f"{file}: check '{check.id}': passes_when names {{{name}}}, which is not in the check's params: "
                            f"add it there, or write {{{{{name}}}}} for the text {{{name}}}") from None
        except (IndexError, ValueError) as exc:
            raise SpecError(f"{file}: check '{check.id}': passes_when is not a valid template ({exc}); write a literal brace "
                            "as {{ or }}") from None
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


def _braced(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join("{" + n + "}" for n in names) or "no placeholder"


def _against_lab(name: str, template: str, lab: LabSpec) -> str:
    """What is wrong with the submission's command ``name`` for ``lab``, or ''."""
    decl = lab.commands.get(name)
    if decl is None and name in COURSE_COMMANDS:
        return ""  # another lab's command of the same growing project
    if decl is None:
        guess = did_you_mean(name, lab.commands)
        hint = f"did you mean {guess}? " if guess else ""
        return f"is not a command of lab '{lab.lab.name}'; {hint}(it takes: {', '.join(lab.commands)})"
    known = set(HARNESS_PLACEHOLDERS).union(*(d.placeholders for d in lab.commands.values()))
    for field in template_fields(template):
        if field in decl.placeholders:
            continue
        if field in known:
            return f"uses '{{{field}}}', which the {name} command does not receive; it may use {_braced(decl.placeholders)}"
        guess = did_you_mean(field, decl.placeholders)
        hint = f" (did you mean {{{guess}}}?)" if guess else ""
        return f"unknown placeholder '{{{field}}}'{hint}; use one of {_braced(decl.placeholders)}"
    return ""


def load_submission(path: Path | str, lab: LabSpec | None = None) -> SubmissionSpec:
    """Read a submission folder's ``submission.toml``. With ``lab``, each command must be one
    the lab declares (or another lab's of :data:`COURSE_COMMANDS`, left alone) and use only the
    placeholders it receives, and the lab's required commands must be there; without it, the
    templates are checked for syntax only."""
    path = Path(path)
    file = path / SUBMISSION_FILE if path.is_dir() else path
    data = _read_toml(path, SUBMISSION_FILE)
    try:
        spec = SubmissionSpec.model_validate({**data, "root": file.parent.resolve()})
    except ValidationError as exc:
        raise _explain(file, exc, SubmissionSpec) from None
    if lab is not None:
        for name, template in spec.commands.items():
            problem = _against_lab(name, template, lab)
            if problem:
                raise SpecError(f"{file}: field 'commands.{name}' {problem}")
        for name, decl in lab.commands.items():
            if decl.required and not spec.command(name).strip():
                what = f"the command that {decl.help}" if decl.help else "that command"
                raise SpecError(
                    f"{file}: field 'commands.{name}' is required by lab '{lab.lab.name}'; "
                    f"add {what} (see the lab README)"
                )
    return spec
