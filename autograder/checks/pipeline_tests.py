"""Checks of the pipeline lab's tests and tracking: the team's own tests pass (their line
coverage of the package is shown, never graded), catch the instructor's buggy versions of
``flightdelay/steps.py`` (wheats and chaffs), and every ``train`` run is in the team's MLflow
store.

Wheats and chaffs: the team's ``test`` command runs with ``steps.py``
replaced by the instructor's correct version (the *wheat*: tests that fail on it earn nothing),
then once per *chaff* (the wheat with one function redefined: one bug). A chaff is caught when
the command fails. The wheat, the chaffs and their code live in the lab's ``hidden/`` folder,
which only grading has; no output of a run on them is ever shown, since a team's test could
print the code it was given.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    NoParams,
    Params,
    Verdict,
    partial,
    passed,
)
from autograder.errors import explain_validation

PACKAGE = "flightdelay"
STEPS = f"{PACKAGE}/steps.py"
CHAFFS_FILE = "chaffs.toml"


class Chaff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shown: bool
    description: Annotated[str, Field(min_length=3)]
    code: Annotated[str, Field(min_length=3)]


class Chaffs(BaseModel):
    """``hidden/chaffs.toml``: the wheat's path (relative to the file) and the chaffs by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wheat: str
    chaffs: Annotated[dict[str, Chaff], Field(min_length=1)]


@dataclass(frozen=True)
class Bugs:
    wheat: bytes
    chaffs: dict[str, Chaff]

    def module(self, name: str) -> bytes:
        """The chaff's steps.py: the wheat with the chaff's code after it (a later def wins)."""
        return self.wheat.rstrip(b"\n") + b"\n\n\n" + self.chaffs[name].code.strip("\n").encode() + b"\n"


def load_bugs(hidden: Path) -> Bugs:
    """The wheat and the chaffs of a lab's hidden folder (a ValueError says what is wrong: the
    instructor's mistake, never the team's)."""
    path = hidden / CHAFFS_FILE
    try:
        spec = Chaffs.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {explain_validation(exc, where='{}')}") from None
    wheat = (path.parent / spec.wheat).resolve()
    try:
        return Bugs(wheat.read_bytes(), dict(spec.chaffs))
    except OSError as exc:
        raise ValueError(f"{path}: wheat {spec.wheat!r}: {exc}") from None


def check_tests_pass(ctx: CheckContext[NoParams]) -> Verdict:
    """The team's ``test`` command passes on the team's own code (its line coverage of the package
    is shown, not graded)."""
    result = ctx.run("test", coverage=(PACKAGE,))
    line, details = coverage_line(result.coverage, result.coverage_statements)
    if not result.ok:
        raise CheckFailed(f"{result.explain()}; your tests must pass on your own code. Last lines of their output:\n"
                          f"{result.tail()}\n{line}", **details)
    return passed(f"'test' passed in {result.duration:.1f} s.\n{line}", **details)


def coverage_line(share: float | None, statements: int) -> tuple[str, dict[str, Any]]:
    """The verdict's line on the line coverage of the package while 'test' ran, and its details.
    Information only: the team's own processes measure it, so it never changes a score."""
    where = f"Line coverage of {PACKAGE}/ (information, not graded)"
    if share is None:
        return (f"{where}: not measured: no process of 'test' recorded any (Python run as {{python}} does, unless "
                f"it runs coverage.py itself), or {PACKAGE}/ has no .py file.", {"coverage": None})
    percent = round(100 * share)
    if 0 < share < 1:  # as coverage.py shows it: 0 % only when none ran, 100 % only when all did
        percent = min(max(percent, 1), 99)
    return (f"{where}: {percent}% of {statements} statements.",
            {"coverage": round(share, 4), "coverage_statements": statements})


class TestsCatchBugs(Params):
    test_timeout: Annotated[float, Field(gt=0, le=1800)] = 120


def check_tests_catch_bugs(ctx: CheckContext[TestsCatchBugs]) -> Verdict:
    """The team's tests pass on a correct steps.py and fail on each of the instructor's buggy ones; the score is the share caught."""
    limit = ctx.params.test_timeout
    if ctx.data.hidden is None:
        raise CheckFailed("this check needs the instructor's versions of steps.py, which only the staff's grading has")
    try:
        bugs = load_bugs(ctx.data.hidden)
    except ValueError as exc:
        raise CheckFailed(f"the lab's chaffs cannot be read (tell the teaching staff): {exc}") from None
    # No run on the team's own code here: tests_pass has it, and the wheat run below is what
    # decides whether a failure means anything (a suite that fails on everything catches nothing).
    wheat = ctx.run("test", replace={STEPS: bugs.wheat}, timeout=min(limit, ctx.time_left()))
    if not wheat.ok:
        how = "did not finish in time" if wheat.timed_out else f"failed (exit code {wheat.returncode})"
        raise CheckFailed(
            f"your tests {how} with {STEPS} replaced by a correct implementation of the interface (the instructor's): tests that "
            "fail on correct code catch nothing. Test the behaviour the lab README fixes for each function, not details of your "
            "own implementation (extra columns, helper functions, exact messages)."
        )
    caught, missed, stopped = [], [], []
    for name in bugs.chaffs:
        left = ctx.time_left()
        result = ctx.run("test", replace={STEPS: bugs.module(name)}, timeout=min(limit, left)) if left > 1 else None
        if result is None or result.timed_out:
            stopped.append(name)  # a hang is not a catch
        (caught if result is not None and not result.ok and not result.timed_out else missed).append(name)
    return _verdict(bugs, caught, missed, stopped)


def _verdict(bugs: Bugs, caught: list[str], missed: list[str], stopped: list[str]) -> Verdict:
    chaffs, total = bugs.chaffs, len(bugs.chaffs)
    shown = [n for n in chaffs if chaffs[n].shown]
    hidden = [n for n in chaffs if not chaffs[n].shown]
    lines = [f"Your tests caught {len(caught)} of {total} buggy versions of {STEPS}."]
    lines += [f"- caught: {n} ({chaffs[n].description})" for n in shown if n in caught]
    lines += [f"- missed: {n} ({chaffs[n].description})" + (": the tests did not finish in time, and a hang is not a catch"
                                                            if n in stopped else "") for n in shown if n in missed]
    if hidden:
        lines.append(f"- hidden bugs: {sum(n in caught for n in hidden)} of {len(hidden)} caught"
                     + (f" ({sum(n in stopped for n in hidden)} timed out)" if any(n in stopped for n in hidden) else ""))
    if missed:
        lines.append("A bug is caught when 'test' fails with it; write a test for each step's behaviour that the lab README fixes.")
    details = {"caught": len(caught), "total": total, "missed": sorted(missed), "timed_out": sorted(stopped)}
    message = "\n".join(lines)
    return passed(message, **details) if not missed else partial(len(caught) / total, message, **details)
