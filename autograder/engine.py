"""Grading one submission: lab spec -> sandbox -> checks -> one SubmissionResult.

A check is a plain function ``check_<property>(ctx) -> Verdict`` (see :mod:`autograder.catalogue`).
It returns :func:`passed` or :func:`partial`, or raises :class:`CheckFailed` with a message
that tells the team what to change. A check that raises anything else, or runs past its time
limit, fails with the reason, and the other checks still run.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from autograder.results import CheckResult, SubmissionResult
from autograder.sandbox import CommandResult, Limits, Sandbox, enter_loopback_netns
from autograder.service import Service, ServiceUnavailable
from autograder.spec import CheckSpec, LabSpec, SubmissionSpec


class CheckFailed(Exception):
    """Raised by a check: the message tells the team what to change."""

    def __init__(self, message: str, fraction: float = 0.0, **details: Any) -> None:
        super().__init__(message)
        self.fraction = fraction
        self.details = details


@dataclass
class Verdict:
    fraction: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def passed(message: str, **details: Any) -> Verdict:
    return Verdict(1.0, message, details)


def partial(fraction: float, message: str, **details: Any) -> Verdict:
    return Verdict(max(0.0, min(1.0, fraction)), message, details)


@dataclass
class Context:
    """What a check can reach: the lab, the team's spec, its sandbox and its service."""

    lab: LabSpec
    submission: SubmissionSpec
    sandbox: Sandbox
    check: CheckSpec
    hidden_allowed: bool
    _service: Service | None
    setup: dict[str, CommandResult]
    deadline: float = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return self.check.params

    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def service(self) -> Service:
        """The team's running service, started (or restarted) on demand.

        Raises CheckFailed, with the reason and the log's tail, if it never becomes healthy.
        """
        if self._service is None:
            raise CheckFailed("this lab's submission.toml has no serve command; add 'commands.serve'")
        try:
            self._service.ensure()
        except ServiceUnavailable as exc:
            raise CheckFailed(f"The service is not running: {exc}") from None
        return self._service

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return self.service().client(timeout)

    def run(self, name: str, timeout: float | None = None, **values: str | int) -> CommandResult:
        """Run the team's ``name`` command (from submission.toml) in the sandbox."""
        template = self.submission.command(name)
        if not template.strip():
            raise CheckFailed(f"submission.toml has no '{name}' command; add commands.{name} (see the lab README)")
        command = self.sandbox.render(template, **values)
        return self.sandbox.run(command, timeout if timeout is not None else self.time_left())

    def require_setup(self, name: str) -> CommandResult:
        """The result of a setup step (``install``/``train``); fails the check if it failed."""
        result = self.setup.get(name)
        if result is None:
            raise CheckFailed(f"the '{name}' step did not run; add commands.{name} to submission.toml")
        if not result.ok:
            tail = "\n".join(result.output.splitlines()[-15:])
            raise CheckFailed(f"The '{name}' step failed: {result.explain()}. Last lines:\n{tail}")
        return result

    def require_hidden(self) -> None:
        if not self.hidden_allowed:
            raise CheckFailed("this check needs the held-out data, which only 'shipml grade' uses")


CheckFunction = Callable[[Context], Verdict]


def _run_one(fn: CheckFunction, ctx: Context) -> tuple[float, str, dict[str, Any]]:
    """Run one check with its time limit. The check runs in a worker thread so that a check
    stuck on a hung team service cannot stop the grading; the thread is abandoned on timeout
    (its HTTP calls end when the service is stopped)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["verdict"] = fn(ctx)
        except CheckFailed as exc:
            box["verdict"] = Verdict(exc.fraction, str(exc), exc.details)
        except Exception as exc:  # noqa: BLE001 - any crash of a check is a failed check
            box["error"] = exc
            box["trace"] = traceback.format_exc(limit=3)

    thread = threading.Thread(target=target, name=f"check-{ctx.check.id}", daemon=True)
    thread.start()
    thread.join(ctx.check.timeout)
    if thread.is_alive():
        return 0.0, (
            f"The check did not finish within its {ctx.check.timeout:g} s limit; the service "
            "may be hanging on a request. Make every request answer within a few seconds."
        ), {}
    if "error" in box:
        exc = box["error"]
        return 0.0, f"The check could not complete: {exc.__class__.__name__}: {exc}", {"trace": box["trace"]}
    verdict = box["verdict"]
    if not isinstance(verdict, Verdict):
        return 0.0, f"internal error: {fn.__name__} returned {type(verdict).__name__}, not a Verdict", {}
    return verdict.fraction, verdict.message, verdict.details


def grade(
    lab: LabSpec,
    submission: SubmissionSpec,
    *,
    hidden: bool,
    hidden_paths: list[Path],
    public_data: Path | None = None,
    limits: Limits | None = None,
    on_check: Callable[[CheckResult], None] | None = None,
) -> SubmissionResult:
    """Grade one submission against a lab's checks (public only unless ``hidden``)."""
    from autograder.catalogue import resolve

    started = time.monotonic()
    specs = lab.checks if hidden else lab.selected("public")
    functions = {c.id: resolve(c.function) for c in specs}
    netns_error = enter_loopback_netns()
    isolation = [
        "network: loopback only (own network namespace)"
        if netns_error is None
        else f"network: NOT isolated ({netns_error}); run as root for a private network namespace"
    ]
    sandbox = Sandbox(submission, hidden=hidden_paths, limits=limits or Limits(), public_data=public_data, isolation=isolation)
    notes: list[str] = []
    service: Service | None = None
    try:
        setup: dict[str, CommandResult] = {}
        for step in ("install", "train"):
            if submission.command(step).strip():
                setup[step] = sandbox.run(sandbox.render(submission.command(step)), lab.lab.time_limit / 3)
                if not setup[step].ok:
                    notes.append(f"The {step} step failed: {setup[step].explain()}.")
        if submission.command("serve").strip():
            service = Service(
                sandbox,
                submission.command("serve"),
                submission.service.health_path,
                submission.service.startup_timeout,
            )
        results: list[CheckResult] = []
        for spec in specs:
            ctx = Context(lab, submission, sandbox, spec, hidden, service, setup)
            ctx.deadline = time.monotonic() + spec.timeout
            t0 = time.monotonic()
            fraction, message, details = _run_one(functions[spec.id], ctx)
            result = CheckResult(
                id=spec.id,
                description=spec.description,
                score=round(spec.points * fraction, 4),
                max_score=spec.points,
                message=message,
                visibility=spec.visibility,
                ml_test_score=spec.ml_test_score,
                duration=round(time.monotonic() - t0, 3),
                details=details,
            )
            results.append(result)
            if on_check is not None:
                on_check(result)
        if service is not None and service.restarts:
            notes.append(f"The service died during grading and was restarted {service.restarts} time(s). First death: {service.deaths[0]}")
    finally:
        if service is not None:
            service.stop()
        sandbox.close()
    return SubmissionResult(
        lab=lab.lab.name,
        team=submission.team.name,
        members=[m.id for m in submission.team.members],
        checks=results,
        execution_time=round(time.monotonic() - started, 3),
        isolation=sandbox.isolation,
        notes=notes,
    )
