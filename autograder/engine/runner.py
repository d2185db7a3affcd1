"""The one runner behind every check: a team's system run through a workspace.

:class:`TeamRunner` is the :class:`autograder.checkapi.Runner` that checks reach through their
context. What differs between runners is only the :class:`Workspace` that starts the team's
commands: the sandbox (:class:`autograder.engine.sandbox.Sandbox`, in whichever isolation mode
the machine allows) when grading, or a plain folder (:mod:`autograder.testing`) in a kit
developer's tests. Everything else (setup steps, the shared service, fresh instances, a second
process, faults, the state folder, the team's files, stopping what a timed-out check drove) is
written once here, so the runners cannot drift apart; ``tests/test_runner_contract.py`` runs one
contract suite over every workspace.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from autograder.checkapi import CheckFailed, CommandResult, Input, cancel_requested
from autograder.engine.files import safe_list, safe_read
from autograder.engine.linecoverage import Measurement, package_names
from autograder.engine.process import Process
from autograder.engine.service import Service, ServiceUnavailable, fresh, healthy

__all__ = ["ServiceSettings", "TeamRunner", "Workspace", "place_inputs"]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The most a check reads of one of the team's files or state files."""


class Workspace(Protocol):
    """Where a team's commands run: the sandbox, or a test's plain folder."""

    state_dir: Path  # survives restarts of the service for the whole grading; {state}

    @property
    def copy(self) -> Path:
        """The submission the commands run in (their working folder)."""
        ...

    def render(self, template: str, **values: str | int) -> str: ...

    def spawn(self, command: str) -> Process: ...

    def forget(self, proc: Process) -> None: ...

    def run(self, command: str, timeout: float, env: Mapping[str, str] | None = None) -> CommandResult:
        """Run ``command`` to completion; ``env`` is added to its environment (a ``PYTHONPATH``
        goes in front of the workspace's own: see :func:`autograder.engine.process.with_env`)."""
        ...

    def exchange_dir(self) -> Path: ...

    def read_output(self, path: Path) -> bytes | None: ...

    def stop_all(self) -> int:
        """Stop every command still running; return how many there were."""
        ...

    def scratch(self, replace: Mapping[str, bytes]) -> AbstractContextManager[Workspace]:
        """A throwaway copy of the submission with ``replace``'s files written over it, with its
        own state and exchange folders, sharing this workspace's processes; removed on exit."""
        ...


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


@dataclass(frozen=True)
class ServiceSettings:
    """Which command is the service, and how it tells the harness it is up."""

    command: str = "serve"
    health_path: str = "/health"
    startup_timeout: float = 60.0


class TeamRunner:
    """The checks' runner over one team's workspace (see :class:`autograder.checkapi.Runner`).

    The harness chooses where the model file lives (``{model}``: ``train`` writes it, ``serve``
    and ``predict`` read it) and gives every command the same state folder (``{state}``), which
    survives restarts. ``commands`` maps each command name to the team's template.
    """

    def __init__(self, workspace: Workspace, commands: Mapping[str, str], *, files_root: Path,
                 service: ServiceSettings = ServiceSettings()) -> None:
        self.workspace = workspace
        self.commands = dict(commands)
        self.files_root = files_root
        self.settings = service
        self.values = {"model": str(workspace.exchange_dir() / "model"), "state": str(workspace.state_dir)}
        self.setup_results: dict[str, CommandResult] = {}
        self.shared: Service | None = self._new(service.command, self.values) if self._template(service.command) else None
        self._driven: list[Service] = []
        self._lock = threading.Lock()

    # -- the team's commands -------------------------------------------------------------

    def _template(self, name: str) -> str:
        return self.commands.get(name, "").strip()

    @staticmethod
    def _not_cancelled() -> None:
        """A check past its time limit gets nothing new started for it: its thread may still run
        after the engine stopped what it drove, and must not drive the next check's service."""
        if cancel_requested():
            raise CheckFailed("the check's time is up; the harness starts nothing more for it")

    def _require(self, name: str) -> str:
        template = self._template(name)
        if not template:
            raise CheckFailed(f"submission.toml has no '{name}' command; add commands.{name} (see the lab README)")
        return template

    def _new(self, name: str, values: Mapping[str, str], health_path: str | None = None) -> Service:
        self._not_cancelled()
        path = self.settings.health_path if health_path is None else health_path
        return Service(self.workspace, self._require(name), path, self.settings.startup_timeout, values=dict(values))

    def _place(self, inputs: Mapping[str, Input]) -> dict[str, str]:
        return place_inputs(self.workspace.exchange_dir(), inputs)

    def run_setup(self, step: str, timeout: float) -> CommandResult:
        """Run a setup step (``install``, ``train``); after ``train``, keep the model file it wrote."""
        result = self.workspace.run(self.workspace.render(self._require(step), **self.values), timeout)
        if step == "train":
            model = self.workspace.read_output(Path(self.values["model"]))
            if model is not None:
                result.files["model"] = model
        self.setup_results[step] = result
        return result

    def setup_result(self, name: str) -> CommandResult | None:
        return self.setup_results.get(name)

    def run(self, name: str, *, inputs: Mapping[str, Input], outputs: Sequence[str], timeout: float,
            replace: Mapping[str, bytes] | None = None, coverage: Sequence[str] = ()) -> CommandResult:
        self._not_cancelled()
        template, coverage = self._require(name), package_names(coverage)
        if not replace:
            return self._run_in(self.workspace, template, dict(self.values), inputs, outputs, timeout, coverage)
        model = self.workspace.read_output(Path(self.values["model"]))
        try:
            with self.workspace.scratch(replace) as scratch:
                values = {"state": str(scratch.state_dir), **place_inputs(scratch.exchange_dir(), {"model": model or b""})}
                return self._run_in(scratch, template, values, inputs, outputs, timeout, coverage)
        except ValueError as exc:  # a replaced path the submission's layout does not allow
            raise CheckFailed(f"The harness could not put its file in your submission: {exc}") from None

    @staticmethod
    def _run_in(workspace: Workspace, template: str, values: dict[str, str], inputs: Mapping[str, Input],
                outputs: Sequence[str], timeout: float, coverage: Sequence[str] = ()) -> CommandResult:
        values.update(place_inputs(workspace.exchange_dir(), inputs))
        io = workspace.exchange_dir()
        for key in outputs:
            values[key] = str(io / key)
        # Line coverage: coverage.py's start-up files in an exchange folder of its own (see linecoverage).
        measured = Measurement(workspace.exchange_dir(), workspace.copy, coverage) if coverage else None
        result = workspace.run(workspace.render(template, **values), timeout, env=measured.env if measured else None)
        for key in outputs:
            content = workspace.read_output(Path(values[key]))
            if content is not None:
                result.files[key] = content
        found = measured.result() if measured is not None else None
        if found is not None:
            result.coverage, result.coverage_statements = found
        return result

    # -- long-running processes ----------------------------------------------------------

    def service(self) -> Service:
        self._not_cancelled()
        if self.shared is None:
            raise CheckFailed(f"submission.toml has no {self.settings.command} command; add 'commands.{self.settings.command}'")
        return healthy(self.shared)

    def _drive(self, instance: Service) -> AbstractContextManager[Service]:
        with self._lock:
            self._driven.append(instance)

        @contextmanager
        def tracked() -> Iterator[Service]:
            try:
                self._not_cancelled()
                with fresh(instance) as up:
                    yield up
            finally:
                with self._lock:
                    if instance in self._driven:
                        self._driven.remove(instance)

        return tracked()

    def fresh_service(self, files: Mapping[str, Input]) -> AbstractContextManager[Service]:
        if self.shared is None:
            self._require(self.settings.command)
        return self._drive(self._new(self.settings.command, {**self.values, **self._place(files)}))

    def process(self, name: str, *, inputs: Mapping[str, Input], health_path: str) -> AbstractContextManager[Service]:
        return self._drive(self._new(name, {**self.values, **self._place(inputs)}, health_path))

    def restart_service(self, sig: int = signal.SIGKILL) -> Service:
        """Kill the shared service with ``sig`` (a harness-made fault, never counted as the
        team's crash) and start it again on the same model and state folder."""
        service = self.service()
        if not isinstance(service, Service):
            raise CheckFailed("this runner does not run the service (it was given a URL), so it cannot restart it")
        try:
            service.kill(sig)
        except ServiceUnavailable as exc:
            raise CheckFailed(f"The service could not be killed: {exc}") from None
        return self.service()

    # -- what the team wrote -------------------------------------------------------------

    @staticmethod
    def _whole(content: bytes | None, path: str, where: str) -> bytes | None:
        if content is not None and len(content) > MAX_FILE_BYTES:
            raise CheckFailed(f"{where}{path} is larger than {MAX_FILE_BYTES // 2**20} MiB, more than a check reads; keep it smaller")
        return content

    def read_file(self, path: str) -> bytes | None:
        return self._whole(safe_read(self.files_root, path, MAX_FILE_BYTES + 1), path, "")

    def read_state(self, path: str) -> bytes | None:
        return self._whole(safe_read(self.workspace.state_dir, path, MAX_FILE_BYTES + 1), path, "{state}/")

    def list_state(self) -> list[str]:
        return safe_list(self.workspace.state_dir)

    # -- the engine's side ---------------------------------------------------------------

    def interrupt(self) -> str:
        """Stop what a check that ran out of time was driving: every fresh instance and process
        it started, any command it was running, and the shared service (started again by the
        next check that needs it, which is not counted as a restart). Says what it stopped."""
        with self._lock:
            driven, self._driven = list(self._driven), []
        instances = sum(1 for instance in driven if instance.alive())
        for instance in driven:
            instance.stop()
        service = self.shared is not None and self.shared.alive()
        if self.shared is not None and service:
            self.shared.stop()
            self.shared.process = None  # the harness stopped it: no crash of the team's
        commands = self.workspace.stop_all()
        parts = [f"{instances} fresh instance(s) or process(es)"] if instances else []
        parts += ["the service"] if service else []
        parts += [f"{commands} running command(s)"] if commands else []
        return ", ".join(parts) or "nothing (no process of the team's was running)"

    def close(self) -> None:
        self.interrupt()
        if self.shared is not None:
            self.shared.stop()

    @property
    def faults(self) -> list[str]:
        return list(self.shared.faults) if self.shared is not None else []
