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

import shutil
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    CheckFunction,
    CommandResult,
    Input,
    LabData,
    Verdict,
)
from autograder.engine.catalogue import resolve, validate_params
from autograder.engine.netns import network_isolation
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.engine.sandbox import Limits, Sandbox, render_command
from autograder.engine.service import Service, fresh, healthy
from autograder.engine.spec import LabSpec, SubmissionSpec


def place_inputs(io: Path, inputs: Mapping[str, Input]) -> dict[str, str]:
    """Copy each input (bytes, or a harness file or folder) into ``io``; return the placeholder values."""
    values: dict[str, str] = {}
    for key, item in inputs.items():
        target = io / key
        if isinstance(item, bytes):
            target.write_bytes(item)
        elif item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copyfile(item, target)
        values[key] = str(target)
    return values


class SandboxRunner:
    """The checks' runner over one submission's sandbox (see :class:`autograder.checkapi.Runner`).

    The harness chooses where the model file lives (``{model}``): ``train`` writes it there,
    ``serve`` and ``predict`` read it from there, and the harness reads it back after ``train``
    so the provenance check can compare it with what the service says it loaded.
    """

    def __init__(self, sandbox: Sandbox, submission: SubmissionSpec) -> None:
        self.sandbox = sandbox
        self.submission = submission
        self.values = {"model": str(sandbox.exchange_dir() / "model")}
        self.setup_results: dict[str, CommandResult] = {}
        self.shared: Service | None = self._new_service(self.values) if submission.command("serve").strip() else None

    def _new_service(self, values: dict[str, str]) -> Service:
        spec = self.submission.service
        return Service(self.sandbox, self.submission.command("serve"), spec.health_path, spec.startup_timeout, values=values)

    def run_setup(self, step: str, timeout: float) -> CommandResult:
        """Run a setup step (``install``, ``train``); after ``train``, keep the model file it wrote."""
        result = self.sandbox.run(self.sandbox.render(self.submission.command(step), **self.values), timeout)
        if step == "train":
            model = self.sandbox.read_output(Path(self.values["model"]))
            if model is not None:
                result.files["model"] = model
        self.setup_results[step] = result
        return result

    def _place(self, inputs: Mapping[str, Input]) -> dict[str, str]:
        return place_inputs(self.sandbox.exchange_dir(), inputs)

    def service(self) -> Service:
        if self.shared is None:
            raise CheckFailed("submission.toml has no serve command; add 'commands.serve'")
        return healthy(self.shared)

    def fresh_service(self, files: Mapping[str, Input]) -> AbstractContextManager[Service]:
        if self.shared is None:
            raise CheckFailed("submission.toml has no serve command; add 'commands.serve'")
        return fresh(self._new_service({**self.values, **self._place(files)}))

    def run(self, name: str, *, inputs: Mapping[str, Input], outputs: Sequence[str], timeout: float) -> CommandResult:
        template = self.submission.command(name)
        if not template.strip():
            raise CheckFailed(f"submission.toml has no '{name}' command; add commands.{name} (see the lab README)")
        values = {**self.values, **self._place(inputs)}
        io = self.sandbox.exchange_dir()
        for key in outputs:
            values[key] = str(io / key)
        data = Path(values.pop("data", self.sandbox.data_dir))  # a check may give {data} another folder
        result = self.sandbox.run(render_command(template, data=data, **values), timeout)
        for key in outputs:
            content = self.sandbox.read_output(Path(values[key]))
            if content is not None:
                result.files[key] = content
        return result

    def setup(self, name: str) -> CommandResult | None:
        return self.setup_results.get(name)

    def close(self) -> None:
        if self.shared is not None:
            self.shared.stop()


def run_one(fn: CheckFunction, ctx: CheckContext[Any], timeout: float, name: str = "") -> Verdict:
    """Run one check within ``timeout`` seconds; whatever goes wrong becomes a failed Verdict.

    The check runs in a worker thread so that a check stuck on a hung team service cannot stop
    the grading; the thread is abandoned on timeout (its HTTP calls end when the service stops).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["verdict"] = fn(ctx)
        except CheckFailed as exc:
            box["verdict"] = Verdict(exc.fraction, str(exc), exc.details)
        except Exception as exc:  # noqa: BLE001 - any crash of a check is a failed check
            box["error"] = exc
            box["trace"] = traceback.format_exc(limit=3)

    thread = threading.Thread(target=target, name=f"check-{name or fn.__name__}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return Verdict(0.0, (
            f"The check did not finish within its {timeout:g} s limit; the service "
            "may be hanging on a request. Make every request answer within a few seconds."
        ))
    if "error" in box:
        exc = box["error"]
        return Verdict(0.0, f"The check could not complete: {exc.__class__.__name__}: {exc}", {"trace": box["trace"]})
    verdict = box["verdict"]
    if not isinstance(verdict, Verdict):
        return Verdict(0.0, f"internal error: {fn.__name__} returned {type(verdict).__name__}, not a Verdict")
    return verdict


def grade(
    lab: LabSpec,
    submission: SubmissionSpec,
    *,
    data: LabData,
    hidden_paths: list[Path],
    public_data: Path | None = None,
    limits: Limits | None = None,
    on_check: Callable[[CheckResult], None] | None = None,
) -> SubmissionResult:
    """Grade one submission. Hidden checks run only when ``data.heldout`` is given."""
    started = time.monotonic()
    hidden = data.heldout is not None
    specs = lab.checks if hidden else lab.selected("public")
    bound = [(spec, resolve(spec.function), validate_params(spec.function, spec.params)) for spec in specs]
    sandbox = Sandbox(submission, hidden=hidden_paths, limits=limits or Limits(), public_data=public_data, isolation=[network_isolation()])
    notes: list[str] = []
    runner: SandboxRunner | None = None
    results: list[CheckResult] = []
    try:
        runner = SandboxRunner(sandbox, submission)
        for step in ("install", "train"):
            if submission.command(step).strip():
                done = runner.run_setup(step, lab.lab.time_limit / 3)
                if not done.ok:
                    notes.append(f"The {step} step failed: {done.explain()}.")
        for spec, fn, params in bound:
            t0 = time.monotonic()
            ctx = CheckContext(params=params, runner=runner, data=data, deadline=t0 + spec.timeout)
            verdict = run_one(fn, ctx, spec.timeout, spec.id)
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
        shared = runner.shared
        if shared is not None and shared.restarts:
            notes.append(f"The service died during grading and was restarted {shared.restarts} time(s). First death: {shared.deaths[0]}")
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
