"""The one result type: what a check found, and what a submission scored.

Results are written once, atomically, as ``results.json`` in Gradescope's autograder schema
(https://gradescope-autograders.readthedocs.io/en/latest/specs/). Our own fields ride in
``extra_data`` so the same file feeds the reports, the class CSV and the nbgrader import.

Both types are pydantic dataclasses: built positionally or by keyword like any dataclass, with
their fields validated, and read back by :meth:`SubmissionResult.from_dict` strictly (numbers
as JSON numbers, no unknown key), so that a torn or forged record is a one-line error.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

if TYPE_CHECKING:
    from autograder.engine.spec import LabSpec

Status = Literal["passed", "failed"]
Visibility = Literal["public", "hidden"]

# Gradescope's visibility values: "visible" shows a test to students at once, "after_published"
# only once grades are published. Hidden checks are graded but their details stay with staff.
_GRADESCOPE_VISIBILITY: dict[str, str] = {"public": "visible", "hidden": "after_published"}

REDACTED = "Hidden check: details are shown to the teaching staff only."
NOT_GRADED = "Not graded (see the message at the top)."

_NO_UNKNOWN_KEY = ConfigDict(extra="forbid")


class MalformedResult(ValueError):
    """A results record that does not hold what shipml writes; the message says where, on one line."""


@dataclass(config=_NO_UNKNOWN_KEY)
class CheckResult:
    """What one check found about one submission."""

    id: str
    description: str
    score: float
    max_score: float
    message: str
    visibility: Visibility = "public"
    ml_test_score: str = ""
    duration: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return "passed" if self.score >= self.max_score else "failed"

    def redacted(self) -> CheckResult:
        """The student-facing copy: a hidden check keeps its score, not its details."""
        if self.visibility == "public":
            return self
        return CheckResult(
            id=self.id,
            description=self.description,
            score=self.score,
            max_score=self.max_score,
            message=REDACTED,
            visibility=self.visibility,
            ml_test_score=self.ml_test_score,
            duration=self.duration,
        )


@dataclass(config=_NO_UNKNOWN_KEY)
class SubmissionResult:
    """Every check's result for one submission, plus how it was run."""

    lab: str
    team: str
    checks: list[CheckResult]
    members: list[str] = field(default_factory=list)
    execution_time: float = 0.0
    isolation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heldout: str = ""
    """The held-out set that graded it (:func:`autograder.engine.policy.heldout_id`): its
    checksum, ``(bundled)`` for the kit's public months, ``none`` when no held-out data was used;
    empty in a record written before shipml recorded it."""

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_score for c in self.checks), 4)

    @property
    def needs_review(self) -> list[str]:
        """What a person should look at (a check's ``needs_review`` detail); it changes no grade."""
        return [f"{c.id}: {c.details['needs_review']}" for c in self.checks if c.details.get("needs_review")]

    def redacted(self) -> SubmissionResult:
        return SubmissionResult(
            lab=self.lab,
            team=self.team,
            checks=[c.redacted() for c in self.checks],
            members=list(self.members),
            execution_time=self.execution_time,
            isolation=list(self.isolation),
            notes=list(self.notes),
            heldout=self.heldout,
        )

    def to_gradescope(self) -> dict[str, Any]:
        """This result in Gradescope's results.json schema."""
        summary = f"{self.team}: {self.score:g} / {self.max_score:g} points on lab '{self.lab}'."
        held = [f"Held-out set: {self.heldout}."] if self.heldout else []
        output = "\n".join([summary, *held, *self.notes])
        return {
            "score": self.score,
            "execution_time": round(self.execution_time, 3),
            "output": output,
            "output_format": "text",
            "stdout_visibility": "hidden",
            "tests": [
                {
                    "name": f"{c.id}: {c.description}",
                    "number": str(i),
                    "score": round(c.score, 4),
                    "max_score": round(c.max_score, 4),
                    "status": c.status,
                    "output": c.message,
                    "output_format": "text",
                    "visibility": _GRADESCOPE_VISIBILITY[c.visibility],
                    "tags": [t for t in (c.ml_test_score,) if t],
                }
                for i, c in enumerate(self.checks, start=1)
            ],
            "extra_data": {"shipml": self.to_dict()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "team": self.team,
            "members": self.members,
            "execution_time": self.execution_time,
            "isolation": self.isolation,
            "notes": self.notes,
            **({"heldout": self.heldout} if self.heldout else {}),  # a record from before it was recorded reads back the same
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: object) -> SubmissionResult:
        """The record :meth:`to_dict` wrote (``extra_data.shipml`` of a results.json), validated
        strictly: each field of its type (no string for a number), no unknown key, every
        required one there. A :class:`MalformedResult` names the first field that is not."""
        try:
            return _RECORD.validate_json(json.dumps(data), strict=True)
        except (TypeError, ValueError) as exc:  # ValidationError is a ValueError
            raise MalformedResult(_one_line(exc)) from None


# Strict validation takes a dataclass's fields from a JSON object, not from a Python dict
# (pydantic's strict mode wants an instance there): the record goes through JSON once.
_RECORD: TypeAdapter[SubmissionResult] = TypeAdapter(SubmissionResult)


def _one_line(exc: Exception) -> str:
    if not isinstance(exc, ValidationError):
        return f"not JSON data ({exc})"
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    unknown = "is not a field shipml writes"
    problem = {"missing": "is required but missing", "extra_forbidden": unknown, "unexpected_keyword_argument": unknown}.get(first["type"], first["msg"])
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where} {problem}{more}"


def not_graded(lab: LabSpec, team: str, message: str, *, each: str = NOT_GRADED, heldout: str = "") -> SubmissionResult:
    """A score of 0 for every check of ``lab``, with ``message`` said once, at the top (the
    result's notes); each check says ``each`` (by default: see the message at the top)."""
    checks = [
        CheckResult(id=c.id, description=c.description, score=0.0, max_score=c.points, message=each,
                    visibility=c.visibility, ml_test_score=c.ml_test_score)
        for c in lab.checks
    ]
    return SubmissionResult(lab=lab.lab.name, team=team, checks=checks, notes=[message], heldout=heldout)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half.

    A killed class run must lose no grade and leave no torn file: write to a temporary file in
    the same folder, fsync it, then rename over the target (rename is atomic on POSIX).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(result: SubmissionResult, path: Path) -> None:
    """Write a results.json (Gradescope schema, with our full record in extra_data)."""
    write_atomic(path, json.dumps(result.to_gradescope(), indent=2) + "\n")


def read_results(path: Path) -> SubmissionResult:
    """Read back a results.json written by :func:`write_results`."""
    from autograder.errors import ShipmlError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SubmissionResult.from_dict(data["extra_data"]["shipml"])
    except FileNotFoundError:
        raise ShipmlError(f"{path}: no such results file; run 'shipml grade' first") from None
    except (json.JSONDecodeError, KeyError, TypeError, MalformedResult) as exc:
        raise ShipmlError(
            f"{path}: not a shipml results.json ({exc.__class__.__name__}: {exc}); regrade with 'shipml grade'"
        ) from None
