"""Service lifecycle: pick a port, start a long-running team command, wait for health, stop;
and the harness-made faults (kill with a chosen signal), told apart from the team's crashes."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from autograder.checkapi import CheckFailed
from autograder.engine.process import Process, free_port


class Spawner(Protocol):
    """What starts a service's process: the sandbox, or :mod:`autograder.testing`'s plain runner."""

    def render(self, template: str, **values: str | int) -> str: ...

    def spawn(self, command: str) -> Process: ...

    def forget(self, proc: Process) -> None: ...


class ServiceUnavailable(Exception):
    """The team's service is not up: the message says why and shows the tail of its log."""


@dataclass
class Service:
    """A running team service, as the checks see it (a :class:`autograder.checkapi.ServiceHandle`)."""

    spawner: Spawner
    command_template: str
    health_path: str
    startup_timeout: float
    port: int = 0
    process: Process | None = None
    startup_seconds: float = 0.0
    restarts: int = 0
    failure: str = ""
    deaths: list[str] = field(default_factory=list)  # the team's crashes, found by the harness
    faults: list[str] = field(default_factory=list)  # the harness's own kills (never a crash)
    values: dict[str, str] = field(default_factory=dict)  # more placeholders for the command, e.g. {model}
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the service and wait until its health path answers 200, or fail with the reason."""
        try:
            self._start()
        except ServiceUnavailable as exc:
            self.failure = str(exc)
            raise

    def _start(self) -> None:
        self.stop()
        self.port = free_port()
        command = self.spawner.render(self.command_template, port=self.port, **self.values)
        self.process = self.spawner.spawn(command)
        started = time.monotonic()
        if not self.health_path:  # a process without a health path is handed over as started
            return
        deadline = started + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.url, timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if not self.process.alive():
                    code = self.process.popen.returncode
                    raise ServiceUnavailable(
                        f"the serve command exited with code {code} before it became healthy. "
                        f"Last lines of its log:\n{self.log_tail()}"
                    )
                try:
                    response = probe.get(self.health_path)
                    if response.status_code == 200:
                        self.startup_seconds = time.monotonic() - started
                        return
                    last = f"{self.health_path} answered {response.status_code}"
                except httpx.HTTPError as exc:
                    last = f"{self.health_path}: {exc.__class__.__name__}"
                time.sleep(0.05)
        self.stop()
        raise ServiceUnavailable(
            f"the service did not become healthy within {self.startup_timeout:g} s ({last}); "
            f"it must listen on 127.0.0.1:{{port}} and answer 200 on {self.health_path}. "
            f"Last lines of its log:\n{self.log_tail()}"
        )

    def ensure(self) -> None:
        """Make sure the service is up, restarting it if an earlier check killed it."""
        if self.process is not None and self.process.alive():
            return
        if self.failure:
            # It never became healthy: say so again at once rather than wait out the limit per check.
            raise ServiceUnavailable(self.failure)
        if self.process is not None:
            self.restarts += 1
            self.deaths.append(f"exit code {self.process.popen.returncode}; last lines: {self.log_tail(5)}")
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """A client for the service; checks own and close it (``with ctx.client() as c``)."""
        return httpx.Client(base_url=self.url, timeout=timeout)

    def describe_exit(self, wait: float = 1.0) -> str:
        """After a dropped connection: did the service die, and what did it print last?"""
        if self.process is None:
            return "the service never started"
        try:
            self.process.popen.wait(wait)
        except Exception:  # noqa: BLE001 - still running is an answer too
            return f"the service dropped the connection but is still running. Last log lines:\n{self.log_tail()}"
        return f"the service died (exit code {self.process.popen.returncode}). Last log lines:\n{self.log_tail()}"

    def log_tail(self, lines: int = 20) -> str:
        if self.process is None:
            return "(the service never started)"
        return self.process.output.text(last_lines=lines) or "(the service printed nothing)"

    def stop(self) -> None:
        if self.process is not None:
            self.spawner.forget(self.process)

    def kill(self, sig: int = signal.SIGKILL, wait: float = 10.0) -> str:
        """A harness-made fault: send ``sig`` to the service's processes, wait up to ``wait``
        seconds for it to end, then stop what is left. It is recorded in :attr:`faults`, so the
        next :meth:`ensure` starts the service again without counting a crash of the team's.
        Returns how the service ended."""
        if self.process is None or not self.process.alive():
            raise ServiceUnavailable("the service is not running, so there is nothing to kill")
        name = signal.Signals(sig).name
        self.process.signal(sig)
        try:
            self.process.popen.wait(wait)
            ended = f"{name} sent by the harness; the service ended (exit code {self.process.popen.returncode})"
        except Exception:  # noqa: BLE001 - still running after the wait: say so, then stop it
            ended = f"{name} sent by the harness; the service was still running {wait:g} s later and was stopped"
        self.stop()
        self.process = None
        self.faults.append(ended)
        return ended


def healthy(service: Service) -> Service:
    """``service``, running and healthy (restarted if an earlier check killed it); else CheckFailed."""
    try:
        service.ensure()
    except ServiceUnavailable as exc:
        raise CheckFailed(f"The service is not running: {exc}") from None
    return service


@contextmanager
def fresh(instance: Service) -> Iterator[Service]:
    """Start ``instance``, hand it over once healthy, and stop it afterwards; else CheckFailed."""
    try:
        try:
            instance.start()
        except ServiceUnavailable as exc:
            raise CheckFailed(f"A fresh instance of the service did not start: {exc}") from None
        yield instance
    finally:
        instance.stop()
