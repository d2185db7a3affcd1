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

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    CheckFunction,
    CommandResult,
    Input,
    LabData,
    Params,
    Verdict,
)
from autograder.data import dataset_id, write_public
from autograder.engine.catalogue import resolve, validate_params
from autograder.engine.grading import place_inputs, run_one
from autograder.engine.sandbox import Process, render_command, start_process
from autograder.engine.service import Service, fresh, healthy
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
        values = dict(values)
        data = values.pop("data", self.data)  # a check may give {data} another folder (a second training set)
        return render_command(template, data=Path(data), **values)

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
        self._tmp = tempfile.TemporaryDirectory(prefix="shipml-run-")
        self.values = {"model": str(Path(self._tmp.name) / "model")}

    def _service(self, values: dict[str, str] | None = None) -> Service:
        serve = self.commands.get("serve", "")
        if not serve:
            raise CheckFailed("this check needs the service: pass url= or a 'serve' command")
        return Service(self.spawner, serve, self.health_path, self.startup_timeout, values=values or self.values)

    def _place(self, inputs: Mapping[str, Input]) -> dict[str, str]:
        return place_inputs(Path(tempfile.mkdtemp(dir=self._tmp.name)), inputs)

    def _setup_first(self) -> None:
        """As under the engine, install and train run before anything else uses the system."""
        for step in ("install", "train"):
            self.setup(step)

    def service(self) -> _Remote | Service:
        if self.url is not None:
            return _Remote(self.url, self.health_path, self.startup_timeout)
        if self._shared is None:
            self._setup_first()
            self._shared = self._service()
        return healthy(self._shared)

    def fresh_service(self, files: Mapping[str, Input]) -> AbstractContextManager[Service]:
        self._setup_first()
        return fresh(self._service({**self.values, **self._place(files)}))

    def run(self, name: str, *, inputs: Mapping[str, Input], outputs: Sequence[str], timeout: float) -> CommandResult:
        template = self.commands.get(name, "")
        if not template:
            raise CheckFailed(f"no '{name}' command; pass commands={{'{name}': ...}}")
        if name not in ("install", "train"):
            self._setup_first()
        values = {**self.values, **self._place(inputs)}
        io = Path(tempfile.mkdtemp(dir=self._tmp.name))
        values.update({key: str(io / key) for key in outputs})
        command = self.spawner.render(template, **values)
        started = time.monotonic()
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], cwd=self.spawner.cwd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            return CommandResult(command, None, output.decode(errors="replace"), time.monotonic() - started, timed_out=True)
        result = CommandResult(command, proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace"), time.monotonic() - started)
        for key in outputs:
            if Path(values[key]).is_file():
                result.files[key] = Path(values[key]).read_bytes()
        return result

    def setup(self, name: str) -> CommandResult | None:
        """Setup steps run once, on demand; ``train`` keeps the model file it wrote."""
        if name not in self._setup and self.commands.get(name):
            self._setup[name] = result = self.run(name, inputs={}, outputs=(), timeout=600)
            model = Path(self.values["model"])
            if name == "train" and model.is_file():
                result.files["model"] = model.read_bytes()
            self._setup[name] = result
        return self._setup.get(name)

    def close(self) -> None:
        for proc in list(self.spawner.processes):
            self.spawner.forget(proc)
        self._tmp.cleanup()


@functools.cache
def _public_export() -> Path:
    """The public data the team's commands get as {data}, written once per process (as the
    engine writes it once per grading); removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="shipml-public-"))
    atexit.register(shutil.rmtree, folder, True)
    return write_public(folder / "data")


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
    ``commands`` is started on demand. ``params`` are validated as ``lab.toml``'s are. The
    commands get a public export of the kit's data as ``{data}``, as under the engine; the
    checks' ``data`` defaults to the kit's flight data, held-out months included.
    """
    fn = resolve(check) if isinstance(check, str) else check
    name = check if isinstance(check, str) else f"{fn.__module__}:{fn.__name__}"
    if not isinstance(params, Params):
        try:
            params = validate_params(name, dict(params or {}))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    team_data = _public_export()
    data = data or LabData(public=FLIGHTS_DIR, heldout=FLIGHTS_DIR, team_data_id=dataset_id(team_data))
    runner = LocalRunner(url=url, commands=commands or {}, cwd=Path(cwd), data=team_data,
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
