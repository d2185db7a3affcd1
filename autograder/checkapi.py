"""The check-writing API: everything a ``check_<property>(ctx)`` function may use, and no more.

A check is one plain function about one property of a team's system, in the style of
scikit-learn's ``check_estimator`` catalogue::

    class Params(checkapi.Params):
        requests: int = 20

    def check_requests_answered(ctx: CheckContext[Params]) -> Verdict:
        \"\"\"Every request answers 200 in time.\"\"\"
        with ctx.client() as client:
            ...
        return passed("All 20 requests answered 200.")

It returns :func:`passed` or :func:`partial`, or raises :class:`CheckFailed` with a message that
tells the team what to change. Its parameters are a pydantic model named in the annotation of
``ctx``; ``lab.toml``'s ``params`` are validated against it when the lab loads, and its entry
there names the role that owns it (``role``) and what it needs to run (``requires``).

The context is deliberately narrow: the team's service (URL and client), a fresh instance of it,
the team's commands (with input files the harness writes, output files it reads back and, for
information, the line coverage of a package), the lab's data, and the time left; for the
lifecycle labs also a second process, faults, the state the service wrote, the team's own files,
and traffic on a schedule. A check never sees the sandbox or the engine, so the same check runs
under every runner (the sandbox as root with or without bubblewrap, not root, or a test's plain
folder: ``tests/test_runner_contract.py`` runs one contract over all of them), or against a
service a test started itself (:func:`autograder.testing.run_check`).

**The commands a lab declares.** ``lab.toml`` lists each command a team gives, with its stage
and the placeholders it receives (``{python}``, ``{port}``, ``{data}``, ``{model}``,
``{state}``, and file placeholders a check fills)::

    [lab.commands.worker]
    stage = "process"                       # started by a check, beside the service
    placeholders = ["python", "port", "state"]

**A second long-running process** (:meth:`CheckContext.process`)::

    def check_worker_drains_the_queue(ctx: CheckContext) -> Verdict:
        with ctx.client() as client:
            client.post("/predict", json=FLIGHT)
        with ctx.process("worker", health_path="/health") as worker:
            with worker.client() as client:
                done = client.get("/done").json()["count"]
        if done != 1:
            raise CheckFailed("The worker did not process the queued prediction; ...")
        return passed("The worker drained the queue.")

**Faults: kill and restart on the same state** (:meth:`CheckContext.restart_service`; the
report counts it as the harness's kill, never as the team's crash)::

    def check_feedback_survives_a_crash(ctx: CheckContext) -> Verdict:
        with ctx.client() as client:
            ids = [client.post("/predict", json=f).json()["id"] for f in FLIGHTS]
            for i in ids:
                client.post("/feedback", json={"id": i, "late": True})
        service = ctx.restart_service(signal.SIGKILL)   # no chance to flush
        with service.client() as client:
            kept = client.get("/feedback/count").json()["count"]
        if kept != len(ids):
            raise CheckFailed(f"{len(ids) - kept} acknowledged feedback rows were lost ...")
        return passed("Every acknowledged feedback survived a SIGKILL.")

**What the service stored** (:meth:`CheckContext.read_state`, :meth:`CheckContext.list_state`;
read safely: no symlink followed, regular files inside ``{state}`` only, at most 16 MiB)::

    def check_predictions_are_logged(ctx: CheckContext) -> Verdict:
        ctx.service()
        names = ctx.list_state()
        if "predictions.db" not in names:
            raise CheckFailed(f"No predictions.db in {{state}} (found {names}); ...")
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:                  # the database and its journal
                Path(tmp, name).write_bytes(ctx.read_state(name) or b"")
            rows = sqlite3.connect(Path(tmp, "predictions.db")).execute(
                "select count(*) from predictions").fetchone()[0]
        return passed(f"{rows} predictions logged.")

**The team's own files** (:meth:`CheckContext.read_file`, with the same rules)::

    def check_decision_names_its_costs(ctx: CheckContext) -> Verdict:
        text = ctx.read_file("decision.md")
        if text is None:
            raise CheckFailed("Add decision.md at the top of your submission; ...")
        if b"false alarm" not in text.lower():
            raise CheckFailed("decision.md must weigh a miss against a false alarm; ...")
        return passed("decision.md weighs both mistakes.")

**A module swapped for the instructor's** (``replace`` of :meth:`CheckContext.run`: a
throwaway copy of the submission; the lab's instructor-only files are in ``ctx.data.hidden``)::

    def check_tests_catch_the_off_by_one(ctx: CheckContext) -> Verdict:
        if ctx.data.hidden is None:
            raise CheckFailed("this check runs at grading only, with the instructor's modules")
        buggy = (ctx.data.hidden / "steps_off_by_one.py").read_bytes()
        own = ctx.run("test", timeout=60)
        if not own.ok:
            raise CheckFailed(f"Your tests fail on your own code: {own.explain()}")
        swapped = ctx.run("test", replace={"flightdelay/steps.py": buggy}, timeout=60)
        if swapped.ok:                          # never show its output: it could carry the code
            raise CheckFailed("Your tests pass on a join one hour off; test the weather join")
        return passed("Your tests catch the off-by-one join.")

**Traffic on a schedule** (:func:`autograder.checks.loadgen.replay`; stops by itself when the
check runs out of time, see :func:`cancel_requested`)::

    def check_drift_alarm_in_time(ctx: CheckContext) -> Verdict:
        events = loadgen.paced(STREAM, rate=50, path="/predict")  # drift from event 500
        running = loadgen.replay(ctx.service().url, events, background=True)
        ...                                     # meanwhile: poll the alarm endpoint
        result = running.wait()
        late = [s for s in result.sent if s.status != 200]
        if late:
            raise CheckFailed(f"{len(late)} requests of the stream failed; ...")
        return passed(f"Alarm raised {delay:.0f} s after the drift began.")

A check that runs past its limit scores 0; the engine sets its cancel flag and stops everything
it was driving (fresh instances, processes, running commands, the shared service) before the
next check starts, and the report says what it stopped.
"""

from __future__ import annotations

import signal
import threading
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

__all__ = [
    "CheckContext",
    "CheckFailed",
    "CheckFunction",
    "CommandResult",
    "Input",
    "LabData",
    "NoParams",
    "Params",
    "Runner",
    "ServiceHandle",
    "Verdict",
    "cancel_flag",
    "cancel_requested",
    "params_model",
    "partial",
    "passed",
]


class Params(BaseModel):
    """Base of every check's parameter model: unknown names are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """The parameters of a check that takes none."""


P = TypeVar("P", bound=Params)
Input = bytes | Path
"""What a check hands a team command: a file's bytes, or a file or folder of the harness to copy."""


class CheckFailed(Exception):
    """Raised by a check: the message tells the team what to change.

    ``fraction`` (0..1) is the share of the points still earned; ``details`` are figures that go
    into the instructor's copy of the results.
    """

    def __init__(self, message: str, fraction: float = 0.0, **details: Any) -> None:
        super().__init__(message)
        self.fraction = fraction
        self.details = details


@dataclass(frozen=True)
class Verdict:
    """What a check found: the share of its points earned, and why."""

    fraction: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def passed(message: str, **details: Any) -> Verdict:
    """Full points."""
    return Verdict(1.0, message, details)


def partial(fraction: float, message: str, **details: Any) -> Verdict:
    """``fraction`` of the points, clipped to [0, 1]."""
    return Verdict(max(0.0, min(1.0, fraction)), message, details)


@dataclass
class CommandResult:
    """How one team command ended, and the output files the harness read back."""

    command: str
    returncode: int | None
    output: str
    duration: float
    timed_out: bool = False
    output_truncated: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    coverage: float | None = None  # run(coverage=...): the share of the packages' statements that ran
    coverage_statements: int = 0  # of how many (coverage None: nothing was measured)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the command's output (for a failure message)."""
        return last_lines(self.output, lines) or "(no output)"

    def explain(self) -> str:
        """One sentence on how it ended, for a failure message."""
        if self.timed_out:
            return f"'{self.command}' did not finish within {self.duration:.0f} s and was stopped"
        code = self.returncode
        if code is not None and (code < 0 or 128 < code < 128 + 65):
            number = -code if code < 0 else code - 128
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
            return f"'{self.command}' was killed by {name} (a resource limit, e.g. memory or CPU time, or a crash)"
        return f"'{self.command}' exited with code {self.returncode}"


def last_lines(text: str, count: int) -> str:
    """The last ``count`` lines of ``text``: the one log-tail rule of every failure message."""
    return "\n".join(text.splitlines()[-count:])


class ServiceHandle(Protocol):
    """A running instance of the team's service, as a check sees it."""

    @property
    def url(self) -> str: ...

    @property
    def health_path(self) -> str: ...

    @property
    def startup_timeout(self) -> float: ...

    @property
    def startup_seconds(self) -> float: ...

    def client(self, timeout: float = 10.0) -> httpx.Client: ...

    def alive(self) -> bool: ...

    def describe_exit(self, wait: float = 1.0) -> str: ...

    def log_tail(self, lines: int = 20) -> str: ...


class Runner(Protocol):
    """What runs the team's system for the checks (:class:`autograder.engine.runner.TeamRunner`
    over the sandbox when grading, over a plain folder in tests).

    Each method raises :class:`CheckFailed` with the reason when it cannot do its job.
    """

    def service(self) -> ServiceHandle:
        """The shared instance, started (or restarted) on demand and healthy."""
        ...

    def fresh_service(self, files: Mapping[str, Input]) -> AbstractContextManager[ServiceHandle]:
        """A new instance, returned as soon as its health path answers 200; stopped on exit.
        Each ``files`` placeholder (say ``model`` or ``data``) gets a copy of that file or folder
        instead of the usual one."""
        ...

    def run(self, name: str, *, inputs: Mapping[str, Input], outputs: Sequence[str], timeout: float,
            replace: Mapping[str, bytes] | None = None, coverage: Sequence[str] = ()) -> CommandResult:
        """Run the team's command ``name``: each ``inputs`` placeholder gets a copy of that file or
        folder (bytes: a file holding them), each ``outputs`` placeholder a path whose file is
        read back into ``files``. With ``replace``, in a throwaway copy of the submission with
        those files written over it, and a throwaway ``{state}``. With ``coverage``, the result
        carries the line coverage of those top-level packages of the copy it ran on."""
        ...

    def setup_result(self, name: str) -> CommandResult | None:
        """How a setup step (``install``, ``train``) ended, or None if it did not run."""
        ...

    def process(self, name: str, *, inputs: Mapping[str, Input], health_path: str) -> AbstractContextManager[ServiceHandle]:
        """Another long-running team command (``{port}`` is its own), handed over once
        ``health_path`` answers 200 (at once when it is empty); stopped on exit."""
        ...

    def restart_service(self, sig: int) -> ServiceHandle:
        """Kill the shared service with ``sig`` and start it again on the same model and state."""
        ...

    def read_file(self, path: str) -> bytes | None:
        """A file of the submission as the team handed it in, read safely, or None."""
        ...

    def read_state(self, path: str) -> bytes | None:
        """A file the team's commands wrote under ``{state}``, read safely, or None."""
        ...

    def list_state(self) -> list[str]:
        """The regular files under ``{state}`` (relative paths)."""
        ...


@dataclass(frozen=True)
class LabData:
    """The data a check may use: the public months, and the held-out ones only when grading.

    ``team_data_id`` is the id of the public export the team's ``train`` step was given (see
    :func:`autograder.data.dataset_id`); ``hidden`` the lab's instructor-only folder.
    """

    public: Path
    heldout: Path | None = None
    team_data_id: str = ""
    hidden: Path | None = None
    """The lab's instructor-only folder (``labs/<lab>/hidden/``: buggy modules a check swaps in,
    say) when grading with hidden checks; None in a team's self-check and in a release."""

    def folder(self, split: str) -> Path:
        """The folder to load ``split`` from; the held-out one fails the check in a self-check."""
        if split == "heldout":
            if self.heldout is None:
                raise CheckFailed("this check needs the held-out data, which only 'shipml grade' uses")
            return self.heldout
        return self.public


class CheckContext(Generic[P]):
    """What a check can reach. Checks receive it; they never build it."""

    def __init__(self, *, params: P, runner: Runner, data: LabData, deadline: float) -> None:
        self.params = params
        self.data = data
        self._runner = runner
        self._deadline = deadline

    def time_left(self) -> float:
        """Seconds until this check's time limit."""
        return max(0.0, self._deadline - time.monotonic())

    def service(self) -> ServiceHandle:
        """The team's running service (started on demand); CheckFailed with the log if it never became healthy."""
        return self._runner.service()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client for the running service; use it in a ``with`` block."""
        return self.service().client(timeout)

    def fresh_service(self, files: Mapping[str, Input] | None = None) -> AbstractContextManager[ServiceHandle]:
        """A new instance of the service, handed over the moment its health path says 200.
        ``files={"model": data}`` starts it on another model file than the one ``train`` wrote."""
        return self._runner.fresh_service(files or {})

    def run(
        self,
        name: str,
        *,
        inputs: Mapping[str, Input] | None = None,
        outputs: Sequence[str] = (),
        timeout: float | None = None,
        replace: Mapping[str, bytes] | None = None,
        coverage: Sequence[str] = (),
    ) -> CommandResult:
        """Run the team's ``name`` command from submission.toml (within the time left).

        ``replace={"pkg/steps.py": code}`` runs it in a throwaway copy of the submission as handed
        in, with those files written over it (a module swapped for an instructor's version), and
        a throwaway ``{state}``; ``{model}`` is a copy of the trained model. Nothing the command
        writes survives it: under bubblewrap it can write only that copy.

        ``coverage=("pkg",)`` puts the line coverage of those top-level packages of the copy it
        runs on in ``result.coverage`` (None when no process measured any) and
        ``coverage_statements``: coverage.py in each of its Python processes, the command
        unchanged. The team's processes write the data: information, never a score."""
        return self._runner.run(name, inputs=inputs or {}, outputs=outputs,
                                timeout=self.time_left() if timeout is None else timeout, replace=replace,
                                coverage=coverage)

    def setup(self, name: str) -> CommandResult:
        """The setup step ``name`` (``install``, ``train``); CheckFailed if it did not run or failed."""
        result = self._runner.setup_result(name)
        if result is None:
            raise CheckFailed(f"the '{name}' step did not run; add commands.{name} to submission.toml")
        if not result.ok:
            raise CheckFailed(f"The '{name}' step failed: {result.explain()}. Last lines:\n{result.tail()}")
        return result

    def process(self, name: str, *, inputs: Mapping[str, Input] | None = None,
                health_path: str = "/health") -> AbstractContextManager[ServiceHandle]:
        """Start the team's long-running command ``name`` (a worker beside the service) with a
        ``{port}`` of its own; handed over once ``health_path`` answers 200 (``""``: at once)."""
        return self._runner.process(name, inputs=inputs or {}, health_path=health_path)

    def restart_service(self, sig: int = signal.SIGKILL) -> ServiceHandle:
        """A fault: kill the running service with ``sig`` (SIGKILL: no chance to flush) and start
        it again on the same model and ``{state}`` folder; healthy when it returns. The report
        counts it as the harness's doing, never as the team's crash."""
        return self._runner.restart_service(sig)

    def read_file(self, path: str) -> bytes | None:
        """A file of the team's submission (``"decision.md"``, ``"Dockerfile"``) as handed in,
        or None. Read as the engine reads: no symlink followed, regular files inside the
        submission only, at most 16 MiB."""
        return self._runner.read_file(path)

    def read_state(self, path: str) -> bytes | None:
        """A file the team's service wrote under ``{state}`` (a database, a log), read as
        :meth:`read_file` reads, or None."""
        return self._runner.read_state(path)

    def list_state(self) -> list[str]:
        """The regular files under ``{state}``, as relative paths (a database and its journal)."""
        return self._runner.list_state()


_current = threading.local()


def cancel_requested() -> bool:
    """True once the check running in this thread is past its time limit: long loops (the load
    generator) stop sending. The engine sets it before it stops what the check was driving."""
    event = cancel_flag()
    return bool(event is not None and event.is_set())


def cancel_flag() -> threading.Event | None:
    """The cancel flag of the check this thread runs, for a helper thread it starts (a
    background replay) to read; None outside a check."""
    return getattr(_current, "cancel", None)


def bind_cancel(event: threading.Event | None) -> None:  # not in __all__: the engine's, not a check's
    """The engine's side of :func:`cancel_requested`: the event of the check this thread runs."""
    _current.cancel = event


CheckFunction = Callable[[CheckContext[Any]], Verdict]


def params_model(check: CheckFunction) -> type[Params]:
    """The parameter model a check declares as ``ctx: CheckContext[Model]`` (NoParams if bare)."""
    hints = typing.get_type_hints(check)
    first = next(iter(hints.items()), None)
    if first is None or first[0] == "return":
        raise TypeError(f"{check.__name__} must annotate its ctx argument as CheckContext[...]")
    annotation = first[1]
    if annotation is CheckContext:
        return NoParams
    if typing.get_origin(annotation) is not CheckContext:
        raise TypeError(f"{check.__name__}'s ctx is annotated {annotation!r}, not CheckContext[...]")
    (model,) = typing.get_args(annotation)
    if not (isinstance(model, type) and issubclass(model, Params)):
        raise TypeError(f"{check.__name__}: CheckContext[{model!r}] must name a checkapi.Params model")
    return model
