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
import copy
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from autograder.checkapi import CheckContext, CheckFunction, CommandResult, LabData, Params, Verdict
from autograder.data import dataset_id, write_public
from autograder.engine.catalogue import resolve, validate_params
from autograder.engine.files import safe_read, safe_write
from autograder.engine.grading import run_checks, run_one, run_setup_steps, service_notes
from autograder.engine.policy import hidden_folder
from autograder.engine.process import Process, ProcessTable, start_process, with_env
from autograder.engine.results import CheckResult
from autograder.engine.runner import ServiceSettings, TeamRunner
from autograder.engine.sandbox import render_command
from autograder.engine.service import Service, fresh
from autograder.engine.spec import CheckSpec, LabSpec, find_lab, load_submission
from autograder.paths import FLIGHTS_DIR

if TYPE_CHECKING:
    import pytest

__all__ = ["LabCheck", "LocalRunner", "check_lab", "PlainWorkspace", "parametrize_with_checks", "public_data", "run_check", "serve_app"]

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


class PlainWorkspace:
    """A :class:`autograder.engine.runner.Workspace` without a sandbox: commands run as plain
    local processes in ``cwd`` (each in a session of its own, output bounded, the whole tree
    killed on timeout: the engine's :class:`~autograder.engine.process.ProcessTable`), with
    exchange and state folders under a temporary folder."""

    def __init__(self, cwd: Path, data: Path) -> None:
        self.cwd, self.data = cwd, data
        self._tmp = tempfile.TemporaryDirectory(prefix="shipml-run-")
        self.root = Path(self._tmp.name)
        self.state_dir = self.root / "state"
        self.state_dir.mkdir()
        self.table = ProcessTable(self._start)

    def _start(self, command: str, env: Mapping[str, str] | None = None) -> Process:
        # With env (coverage), none of the caller's own COVERAGE_ settings (a suite run under coverage).
        base = dict(os.environ) if not env else {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
        return start_process(["/bin/sh", "-c", command], env=with_env(base, env), output_bytes=_OUTPUT_BYTES, cwd=self.cwd)

    @property
    def copy(self) -> Path:
        """The submission the commands run in: ``cwd`` itself (no copy without the sandbox)."""
        return self.cwd

    def render(self, template: str, **values: str | int) -> str:
        return render_command(template, values, data=self.data)

    def spawn(self, command: str) -> Process:
        return self.table.spawn(command, self._start)

    def run(self, command: str, timeout: float, env: Mapping[str, str] | None = None) -> CommandResult:
        return self.table.run(command, timeout, functools.partial(self._start, env=env) if env else self._start)

    @contextmanager
    def scratch(self, replace: Mapping[str, bytes]) -> Iterator[PlainWorkspace]:
        """The engine's throwaway copy (:meth:`autograder.engine.sandbox.Sandbox.scratch`) of
        ``cwd``, without the sandbox: same process table, own state and exchange folders."""
        root = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.root))
        view = copy.copy(self)
        view.cwd, view.state_dir, view.root = root / "submission", root / "state", root
        try:
            shutil.copytree(self.cwd, view.cwd, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
            for path, content in replace.items():
                safe_write(view.cwd, path, content)
            view.state_dir.mkdir()
            yield view
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def forget(self, proc: Process) -> None:
        self.table.forget(proc)

    def stop_all(self) -> int:
        return self.table.stop_all()

    def exchange_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="io-", dir=self.root))

    def read_output(self, path: Path) -> bytes | None:
        return safe_read(self.root, path)

    def close(self) -> None:
        self.table.close()
        self._tmp.cleanup()


class LocalRunner(TeamRunner):
    """The engine's runner over a :class:`PlainWorkspace`: for tests, not for grading. With
    ``url``, the checks' shared service is one a test already runs there."""

    def __init__(self, *, url: str | None, commands: Mapping[str, str], cwd: Path, data: Path,
                 health_path: str = "/health", startup_timeout: float = 30.0, files_root: Path | None = None,
                 service_command: str = "serve") -> None:
        self.plain = PlainWorkspace(Path(cwd), data)
        settings = ServiceSettings(command=service_command, health_path=health_path, startup_timeout=startup_timeout)
        super().__init__(self.plain, commands, files_root=Path(files_root or cwd), service=settings)
        self.url = url

    def service(self) -> _Remote | Service:  # type: ignore[override]
        if self.url is not None:
            return _Remote(self.url, self.settings.health_path, self.settings.startup_timeout)
        return super().service()

    def close(self) -> None:
        super().close()
        self.plain.close()


@contextmanager
def serve_app(command: str, *, cwd: Path | str, data: Path | None = None, health_path: str = "/health",
              startup_timeout: float = 60.0, **values: str) -> Iterator[Service]:
    """Run a small app (a test's stand-in for a team's service) until the block ends: ``command``
    is a submission.toml-style template (``{python}``, ``{port}``, ``{data}`` and ``values``),
    started in ``cwd`` and handed over once ``health_path`` answers 200."""
    workspace = PlainWorkspace(Path(cwd), data or public_data())
    try:
        with fresh(Service(workspace, command, health_path, startup_timeout, values=dict(values))) as service:
            yield service
    finally:
        workspace.close()


@functools.cache
def public_data() -> Path:
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
    time_limit: float = 900.0,
    setup_steps: Sequence[str] = ("install", "train"),
    service_command: str = "serve",
) -> Verdict:
    """Run one check (a function, or its ``module:function`` path) and return its Verdict.

    ``url`` is a service that is already running; without it the ``serve`` command of
    ``commands`` is started on demand. ``params`` are validated as ``lab.toml``'s are. The
    commands get a public export of the kit's data as ``{data}``, as under the engine; the
    checks' ``data`` defaults to the kit's flight data, held-out months included. The setup
    steps (``install``, ``train``) run first, as under the engine, each within a third of
    ``time_limit`` (the lab's limit); a lab's :class:`LabCheck` passes its own steps, service
    command and limit.
    """
    fn = resolve(check) if isinstance(check, str) else check
    name = check if isinstance(check, str) else f"{fn.__module__}:{fn.__name__}"
    if not isinstance(params, Params):
        try:
            params = validate_params(name, dict(params or {}))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    team_data = public_data()
    data = data or LabData(public=FLIGHTS_DIR, heldout=FLIGHTS_DIR, team_data_id=dataset_id(team_data))
    runner = LocalRunner(url=url, commands=commands or {}, cwd=Path(cwd), data=team_data, health_path=health_path,
                         startup_timeout=startup_timeout, service_command=service_command)
    try:
        # As under the engine: the setup steps run first, each within its share of the lab's limit.
        run_setup_steps(runner, setup_steps, time_limit)
        ctx = CheckContext(params=params, runner=runner, data=data, deadline=time.monotonic() + timeout)
        return run_one(fn, ctx, timeout, fn.__name__, interrupt=runner.interrupt)
    finally:
        runner.close()


def check_lab(lab: str | Path | LabSpec, folder: Path | str, *, data: LabData | None = None,
              visibility: str | None = None) -> tuple[list[CheckResult], list[str]]:
    """Run a lab's checks in order on a submission folder with the :class:`LocalRunner` (no
    sandbox: trusted code only), as the engine runs them: setup steps first, one runner for all
    checks. Returns the results and the notes the engine's report would carry."""
    spec = lab if isinstance(lab, LabSpec) else find_lab(lab)
    submission = load_submission(folder, spec)
    team_data = public_data()
    data = data or LabData(public=FLIGHTS_DIR, heldout=FLIGHTS_DIR, team_data_id=dataset_id(team_data),
                           hidden=hidden_folder(spec) if visibility != "public" else None)
    runner = LocalRunner(url=None, commands=submission.commands, cwd=submission.root, data=team_data,
                         health_path=submission.service.health_path, startup_timeout=submission.service.startup_timeout,
                         service_command=spec.service_command() or "serve")
    try:
        notes = run_setup_steps(runner, spec.setup_steps(), spec.lab.time_limit)
        results = run_checks(spec.selected(visibility), runner, data)
        return results, notes + service_notes(runner)
    finally:
        runner.close()


@dataclass(frozen=True)
class LabCheck:
    """One check of a lab, with the lab's parameters and time limit; call it to run it."""

    spec: CheckSpec
    lab: LabSpec | None = None  # its setup steps, service command and time limit, when given

    def __call__(self, **kwargs: Any) -> Verdict:
        kwargs.setdefault("params", self.spec.params)
        kwargs.setdefault("timeout", self.spec.timeout)
        if self.lab is not None:
            kwargs.setdefault("setup_steps", self.lab.setup_steps())
            kwargs.setdefault("service_command", self.lab.service_command() or "serve")
            kwargs.setdefault("time_limit", self.lab.lab.time_limit)
        return run_check(self.spec.function, **kwargs)

    def __repr__(self) -> str:
        return f"LabCheck({self.spec.id})"


def parametrize_with_checks(lab: str | Path, visibility: str | None = None) -> pytest.MarkDecorator:
    """``@pytest.mark.parametrize("check", ...)`` over a lab's checks (or those of one visibility)."""
    import pytest

    spec = find_lab(lab)
    return pytest.mark.parametrize("check", [pytest.param(LabCheck(c, spec), id=c.id) for c in spec.selected(visibility)])
