"""Run checks on their own: against a service a test started, without the engine or a sandbox.

:func:`run_check` runs one check against one running service (its URL) and, where the check
needs them, the team's commands run as plain local processes. :func:`parametrize_with_checks`
is the pytest helper, in the spirit of scikit-learn's ``parametrize_with_checks``: it yields
the lab's checks, each one callable, so a test really runs them::

    @parametrize_with_checks("serving")
    def test_my_service(check, my_service_url):
        verdict = check(url=my_service_url, commands=MY_COMMANDS, cwd=MY_FOLDER)
        assert verdict.fraction == 1, verdict.message

Nothing here isolates anything: team commands run as the caller, in ``cwd``. It is for a kit
developer's tests and a team's own test suite, never for grading other people's code (that is
``shipml grade``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    CheckFunction,
    CommandResult,
    LabData,
    Params,
    Verdict,
)
from autograder.engine.catalogue import resolve, validate_params
from autograder.engine.grading import run_one
from autograder.engine.sandbox import Process, render_command, start_process
from autograder.engine.service import Service, ServiceUnavailable
from autograder.engine.spec import CheckSpec, find_lab
from autograder.paths import FLIGHTS_DIR

if TYPE_CHECKING:
    import pytest

__all__ = ["LabCheck", "parametrize_with_checks", "run_check"]

_OUTPUT_BYTES = 256 * 1024


@dataclass
class _Remote:
    """A service some test already runs at ``url``."""

    url: str
    health_path: str = "/health"
    startup_timeout: float = 30.0
    startup_seconds: float = 0.0

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def alive(self) -> bool:
        try:
            with self.client(2.0) as client:
                return client.get(self.health_path).status_code == 200
        except httpx.HTTPError:
            return False

    def describe_exit(self, wait: float = 1.0) -> str:
        return "the connection dropped" + ("" if self.alive() else ", and the service no longer answers its health path")

    def log_tail(self, lines: int = 20) -> str:
        return "(the log of a service started outside the harness is not captured)"


@dataclass
class _PlainSpawner:
    """Starts commands as plain local processes in ``cwd`` (see :class:`autograder.engine.service.Spawner`)."""

    cwd: Path
    data: Path
    processes: list[Process] = field(default_factory=list)

    def render(self, template: str, **values: str | int) -> str:
        return render_command(template, data=self.data, **values)

    def spawn(self, command: str) -> Process:
        proc = start_process(["/bin/sh", "-c", command], env=dict(os.environ), output_bytes=_OUTPUT_BYTES, cwd=self.cwd)
        self.processes.append(proc)
        return proc

    def forget(self, proc: Process) -> None:
        proc.stop()
        if proc in self.processes:
            self.processes.remove(proc)


class LocalRunner:
    """A :class:`autograder.checkapi.Runner` with no sandbox: for tests, not for grading."""

    def __init__(self, *, url: str | None, commands: Mapping[str, str], cwd: Path, data: Path,
                 health_path: str = "/health", startup_timeout: float = 30.0) -> None:
        self.url = url
        self.commands = dict(commands)
        self.spawner = _PlainSpawner(cwd, data)
        self.health_path = health_path
        self.startup_timeout = startup_timeout
        self._shared: Service | None = None
        self._setup: dict[str, CommandResult] = {}

    def _service(self) -> Service:
        serve = self.commands.get("serve", "")
        if not serve:
            raise CheckFailed("this check needs the service: pass url= or a 'serve' command")
        return Service(self.spawner, serve, self.health_path, self.startup_timeout)

    def service(self) -> _Remote | Service:
        if self.url is not None:
            return _Remote(self.url, self.health_path, self.startup_timeout)
        if self._shared is None:
            self._shared = self._service()
        try:
            self._shared.ensure()
        except ServiceUnavailable as exc:
            raise CheckFailed(f"The service is not running: {exc}") from None
        return self._shared

    @contextmanager
    def fresh_service(self) -> Iterator[Service]:
        instance = self._service()
        try:
            try:
                instance.start()
            except ServiceUnavailable as exc:
                raise CheckFailed(f"A fresh instance of the service did not start: {exc}") from None
            yield instance
        finally:
            instance.stop()

    def run(self, name: str, *, inputs: Mapping[str, bytes], outputs: Sequence[str], timeout: float) -> CommandResult:
        import tempfile

        template = self.commands.get(name, "")
        if not template:
            raise CheckFailed(f"no '{name}' command; pass commands={{'{name}': ...}}")
        with tempfile.TemporaryDirectory(prefix="shipml-io-") as tmp:
            io = Path(tmp)
            for key, payload in inputs.items():
                (io / key).write_bytes(payload)
            values = {key: str(io / key) for key in [*inputs, *outputs]}
            command = self.spawner.render(template, **values)
            started = time.monotonic()
            try:
                proc = subprocess.run(["/bin/sh", "-c", command], cwd=self.spawner.cwd, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                output = (exc.stdout or b"") + (exc.stderr or b"")
                return CommandResult(command, None, output.decode(errors="replace"), time.monotonic() - started, timed_out=True)
            result = CommandResult(command, proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace"), time.monotonic() - started)
            for key in outputs:
                if (io / key).is_file():
                    result.files[key] = (io / key).read_bytes()
        return result

    def setup(self, name: str) -> CommandResult | None:
        if name not in self._setup and self.commands.get(name):
            self._setup[name] = self.run(name, inputs={}, outputs=(), timeout=600)
        return self._setup.get(name)

    def close(self) -> None:
        for proc in list(self.spawner.processes):
            self.spawner.forget(proc)


def run_check(
    check: str | CheckFunction,
    *,
    url: str | None = None,
    params: Mapping[str, Any] | Params | None = None,
    commands: Mapping[str, str] | None = None,
    cwd: Path | str = ".",
    data: LabData | None = None,
    health_path: str = "/health",
    startup_timeout: float = 30.0,
    timeout: float = 120.0,
) -> Verdict:
    """Run one check (a function, or its ``module:function`` path) and return its Verdict.

    ``url`` is a service that is already running; without it the ``serve`` command of
    ``commands`` is started on demand. ``params`` are validated as ``lab.toml``'s are. ``data``
    defaults to the kit's flight data, held-out months included.
    """
    fn = resolve(check) if isinstance(check, str) else check
    name = check if isinstance(check, str) else f"{fn.__module__}:{fn.__name__}"
    if not isinstance(params, Params):
        try:
            params = validate_params(name, dict(params or {}))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    data = data or LabData(public=FLIGHTS_DIR, heldout=FLIGHTS_DIR)
    runner = LocalRunner(url=url, commands=commands or {}, cwd=Path(cwd), data=data.public,
                         health_path=health_path, startup_timeout=startup_timeout)
    try:
        ctx = CheckContext(params=params, runner=runner, data=data, deadline=time.monotonic() + timeout)
        return run_one(fn, ctx, timeout, fn.__name__)
    finally:
        runner.close()


@dataclass(frozen=True)
class LabCheck:
    """One check of a lab, with the lab's parameters and time limit; call it to run it."""

    spec: CheckSpec

    def __call__(self, **kwargs: Any) -> Verdict:
        kwargs.setdefault("params", self.spec.params)
        kwargs.setdefault("timeout", self.spec.timeout)
        return run_check(self.spec.function, **kwargs)

    def __repr__(self) -> str:
        return f"LabCheck({self.spec.id})"


def parametrize_with_checks(lab: str | Path, visibility: str | None = None) -> pytest.MarkDecorator:
    """``@pytest.mark.parametrize("check", ...)`` over a lab's checks (or those of one visibility)."""
    import pytest

    spec = find_lab(lab)
    return pytest.mark.parametrize("check", [pytest.param(LabCheck(c), id=c.id) for c in spec.selected(visibility)])
