"""Grading one submission: lab spec -> sandbox -> checks -> one SubmissionResult.

The engine runs the team's setup steps, starts its service on demand, and hands each check a
:class:`~autograder.checkapi.CheckContext` whose runner is the sandbox. A check that raises
anything but :class:`~autograder.checkapi.CheckFailed`, or runs past its time limit, fails with
the reason, and the other checks still run.

:func:`grade` has no side effect on the calling process: isolating the network is the job of
the ``grade`` verb's process (:func:`autograder.engine.netns.enter_loopback_netns`), and the
report only says what it finds (:func:`autograder.engine.netns.network_isolation`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    CheckFunction,
    LabData,
    Verdict,
    bind_cancel,
)
from autograder.engine.catalogue import resolve, validate_params
from autograder.engine.netns import network_isolation
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.engine.runner import ServiceSettings, TeamRunner
from autograder.engine.sandbox import Limits, Sandbox
from autograder.engine.spec import CheckSpec, LabSpec, SubmissionSpec

SETUP_SHARE = 1 / 3
"""The share of the lab's time limit each setup step (``install``, ``train``) may take."""


def run_setup_steps(runner: TeamRunner, steps: Sequence[str], time_limit: float) -> list[str]:
    """Run the submission's setup steps in order, before any check; notes on those that failed."""
    notes = []
    for step in steps:
        if runner.commands.get(step, "").strip():
            done = runner.run_setup(step, time_limit * SETUP_SHARE)
            if not done.ok:
                notes.append(f"The {step} step failed: {done.explain()}.")
    return notes


STOP_GRACE = 10.0
"""How long a timed-out check's thread may take to notice that it was stopped."""


def run_one(fn: CheckFunction, ctx: CheckContext[Any], timeout: float, name: str = "",
            interrupt: Callable[[], str] | None = None) -> Verdict:
    """Run one check within ``timeout`` seconds; whatever goes wrong becomes a failed Verdict.

    The check runs in a worker thread so that a check stuck on a hung team service cannot stop
    the grading. When it runs out of time, its cancel flag is set (the load generator stops
    sending), ``interrupt`` stops every team process it was driving, and its thread gets
    :data:`STOP_GRACE` seconds to end, so that it does not overlap the next check.
    """
    box: dict[str, Any] = {}
    cancel = threading.Event()

    def target() -> None:
        bind_cancel(cancel)
        try:
            box["verdict"] = fn(ctx)
        except CheckFailed as exc:
            box["verdict"] = Verdict(exc.fraction, str(exc), exc.details)
        except Exception as exc:  # noqa: BLE001 - any crash of a check is a failed check
            box["error"] = exc
            box["trace"] = traceback.format_exc(limit=3)
        finally:
            # Whatever the check left running in the background (a replay) stops with it.
            cancel.set()
            bind_cancel(None)

    thread = threading.Thread(target=target, name=f"check-{name or fn.__name__}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        cancel.set()  # the runner refuses the check anything new; the load generator stops
        stopped = interrupt() if interrupt is not None else "nothing (no runner to stop)"
        thread.join(STOP_GRACE)
        still = "" if not thread.is_alive() else f" Its thread was still running {STOP_GRACE:g} s later."
        return Verdict(0.0, (
            f"The check did not finish within its {timeout:g} s limit: what it drove (a request to your service, "
            "or one of your commands) took too long; make each answer or run well within it. The harness stopped "
            f"what the check was driving before the next check: {stopped}.{still}"
        ), {"stopped": stopped, "thread_ended": not thread.is_alive()})
    if "error" in box:
        exc = box["error"]
        return Verdict(0.0, f"The check could not complete: {exc.__class__.__name__}: {exc}", {"trace": box["trace"]})
    verdict = box["verdict"]
    if not isinstance(verdict, Verdict):
        return Verdict(0.0, f"internal error: {fn.__name__} returned {type(verdict).__name__}, not a Verdict")
    return verdict


def run_checks(
    specs: Sequence[CheckSpec],
    runner: TeamRunner,
    data: LabData,
    on_check: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Run ``specs`` in order against ``runner``: one result per check."""
    results = []
    for spec in specs:
        fn, params = resolve(spec.function), validate_params(spec.function, spec.params)
        t0 = time.monotonic()
        ctx = CheckContext(params=params, runner=runner, data=data, deadline=t0 + spec.timeout)
        verdict = run_one(fn, ctx, spec.timeout, spec.id, interrupt=runner.interrupt)
        result = CheckResult(
            id=spec.id,
            description=spec.description,
            score=round(spec.points * verdict.fraction, 2),
            max_score=spec.points,
            message=verdict.message,
            visibility=spec.visibility,
            ml_test_score=spec.ml_test_score,
            duration=round(time.monotonic() - t0, 3),
            details=dict(verdict.details),
        )
        results.append(result)
        if on_check is not None:
            on_check(result)
    return results


def service_notes(runner: TeamRunner) -> list[str]:
    """What the report says about the shared service's life: the team's crashes, and the harness's own kills."""
    shared, notes = runner.shared, []
    if shared is not None and shared.restarts:
        notes.append(f"The service died during grading and was restarted {shared.restarts} time(s). First death: {shared.deaths[0]}")
    if shared is not None and shared.faults:
        notes.append(f"The harness killed the service {len(shared.faults)} time(s) on purpose (a check's fault "
                     f"injection, not a crash): {'; '.join(shared.faults)}")
    return notes


def grade(
    lab: LabSpec,
    submission: SubmissionSpec,
    *,
    data: LabData,
    hidden_paths: list[Path],
    public_data: Path | None = None,
    limits: Limits | None = None,
    on_check: Callable[[CheckResult], None] | None = None,
    hidden: bool | None = None,
) -> SubmissionResult:
    """Grade one submission: every check with ``hidden``, else the public ones (by default,
    hidden checks run when ``data.heldout`` is given)."""
    started = time.monotonic()
    hidden = data.heldout is not None if hidden is None else hidden
    specs = lab.checks if hidden else lab.selected("public")
    for spec in specs:  # a lab that names a missing check fails before any team code runs
        resolve(spec.function)
        validate_params(spec.function, spec.params)
    sandbox = Sandbox(submission, hidden=hidden_paths, limits=limits or Limits(), public_data=public_data, isolation=[network_isolation()])
    notes: list[str] = []
    runner: TeamRunner | None = None
    results: list[CheckResult] = []
    try:
        settings = ServiceSettings(command=lab.service_command() or "serve", health_path=submission.service.health_path,
                                   startup_timeout=submission.service.startup_timeout)
        runner = TeamRunner(sandbox, submission.commands, files_root=submission.root, service=settings)
        notes += run_setup_steps(runner, lab.setup_steps(), lab.lab.time_limit)
        results = run_checks(specs, runner, data, on_check)
        notes += service_notes(runner)
    finally:
        if runner is not None:
            runner.close()
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
