"""A team command as a process: started in a session of its own that dies with the grader,
its output kept in a bounded buffer, stopped with SIGTERM and then killed with all it started.

The sandbox (:mod:`autograder.engine.sandbox`) decides what the command sees; this module only
runs it. :mod:`autograder.testing` uses it as it is, for a team's own checks without a sandbox.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autograder.checkapi import CommandResult
from autograder.checkapi import last_lines as tail_lines
from autograder.engine.cgroups import uid_of

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class OutputTail:
    """Keeps the first and the last bytes of a stream and counts the rest.

    A team's process can print without end; we keep memory bounded by construction instead of
    hoping it stops (``collections.deque`` of chunks with a byte budget).
    """

    def __init__(self, budget: int) -> None:
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.total = 0
        self.budget = budget
        self._lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self.total += len(chunk)
            room = self.budget // 4 - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size > self.budget - self.budget // 4 and len(self.tail) > 1:
                    self.tail_size -= len(self.tail.popleft())

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + self.tail_size

    def text(self, last_lines: int | None = None) -> str:
        with self._lock:
            tail = b"".join(self.tail)
            head = bytes(self.head)
        if self.truncated:
            skipped = self.total - len(head) - len(tail)
            body = head.decode(errors="replace") + f"\n[... {skipped} bytes of output skipped ...]\n" + tail.decode(errors="replace")
        else:
            body = (head + tail).decode(errors="replace")
        if last_lines is not None:
            body = tail_lines(body, last_lines)
        return body

    def pump(self, stream: object) -> threading.Thread:
        def run() -> None:
            read = stream.read1  # type: ignore[attr-defined]
            while chunk := read(65536):
                self.feed(chunk)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def die_with_parent() -> None:
    # If the grading process dies (even by SIGKILL), the kernel kills this child too. The child
    # must keep its uid: the kernel clears this signal on a uid change (see jail.py).
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def with_env(base: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """``base`` with ``extra``'s variables set; an extra ``PYTHONPATH`` goes in front of the
    base's own (a folder of the harness's first, the command's usual folders after it)."""
    env = dict(base)
    for key, value in (extra or {}).items():
        env[key] = f"{value}{os.pathsep}{env[key]}" if key == "PYTHONPATH" and env.get(key) else value
    return env


def start_process(
    argv: list[str],
    *,
    env: dict[str, str] | None,
    output_bytes: int,
    cwd: Path | None = None,
    setup: Callable[[], None] | None = None,
    team_uid: int | None = None,
) -> Process:
    """Start ``argv`` in a session of its own, its output pumped into a bounded buffer.

    ``setup`` runs in the child between fork and exec (after the parent-death signal is set).
    """

    def child() -> None:
        die_with_parent()
        if setup is not None:
            setup()

    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=child,
    )
    output = OutputTail(output_bytes)
    assert popen.stdout is not None
    return Process(" ".join(argv), popen, output, time.monotonic(), output.pump(popen.stdout), team_uid)


class ProcessTable:
    """The team processes one workspace started: each started from one long-lived thread,
    tracked until it is stopped, and run to completion within a time limit.

    One thread starts them all because ``PR_SET_PDEATHSIG`` fires when the *thread* that forked
    a child exits: a service started from a short-lived check thread would be killed (SIGKILL)
    the moment that check ends. The sandbox and a test's plain workspace share this table, so
    they cannot start, run or stop processes differently."""

    def __init__(self, start: Callable[[str], Process]) -> None:
        self._start = start
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="team-launcher")
        self._lock = threading.Lock()
        self.processes: list[Process] = []

    def spawn(self, command: str, start: Callable[[str], Process] | None = None) -> Process:
        """Start a long-running team command (a service); ``start``, when given, starts it instead
        of the table's own (a throwaway copy's view of the same sandbox)."""
        proc = self._thread.submit(start or self._start, command).result()
        proc.command = command
        with self._lock:
            self.processes.append(proc)
        return proc

    def run(self, command: str, timeout: float, start: Callable[[str], Process] | None = None) -> CommandResult:
        """Run a team command to completion, within ``timeout`` seconds of wall-clock time."""
        proc = self.spawn(command, start)
        try:
            return proc.finish(timeout)
        finally:
            self._drop(proc)

    def _drop(self, proc: Process) -> None:
        with self._lock:
            if proc in self.processes:
                self.processes.remove(proc)

    def forget(self, proc: Process) -> None:
        """Stop ``proc`` and stop tracking it."""
        proc.stop()
        self._drop(proc)

    def stop_all(self, grace: float = 0.5) -> int:
        """Stop every command still running; return how many there were."""
        with self._lock:
            running = [proc for proc in self.processes if proc.alive()]
        for proc in running:
            proc.stop(grace=grace)
        return len(running)

    def close(self) -> None:
        """Stop everything, and the launcher thread."""
        self.stop_all(grace=1.0)
        with self._lock:
            self.processes.clear()
        self._thread.shutdown(wait=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A running team command (a service) and its output."""

    command: str
    popen: subprocess.Popen[bytes]
    output: OutputTail
    started: float
    pump: threading.Thread
    team_uid: int | None = None  # set when the command runs under bwrap as that uid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def finish(self, timeout: float) -> CommandResult:
        """Wait up to ``timeout`` seconds for the command to end, then stop it and all it
        started: its process group, and under bubblewrap every process of its PID namespace. (Not
        root or without bubblewrap, a process that left both its group and the command's tree,
        a double-forked daemon, outlives this; the sandbox's close kills every process of the
        team's uid, and a not-root run says in its report that it has no such guard.)"""
        timed_out = False
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        self.stop(grace=0.5)
        return CommandResult(
            command=self.command,
            returncode=None if timed_out else self.popen.returncode,
            output=self.output.text(),
            duration=time.monotonic() - self.started,
            timed_out=timed_out,
            output_truncated=self.output.truncated,
        )

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the team's processes of this command (a harness-made fault): the
        process group without a team uid, else every process of the command that runs as the
        team's uid (never bubblewrap's own root processes)."""
        if self.popen.poll() is not None:
            return
        if self.team_uid is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            return
        for pid in [self.popen.pid, *_descendants(self.popen.pid)]:
            # A pidfd first, then the uid: a pid reused between the two cannot be signalled.
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if uid_of(pid) == self.team_uid:
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(fd, sig)
            finally:
                os.close(fd)

    def stop(self, grace: float = 3.0) -> None:
        """Ask the command's processes to stop, then kill all of them."""
        if self.popen.poll() is None:
            if self.team_uid is None:
                _signal_tree(self.popen.pid, signal.SIGTERM)
            else:
                # Like systemd's stop: SIGTERM to every team process of this command, none to
                # bwrap's own two (root) processes, whose death would kill the rest at once.
                self.signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _kill_tree(self.popen)
        self.pump.join(1.0)


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _signal_tree(pid: int, sig: int) -> None:
    for target in _children(pid) or [pid]:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass


def _kill_tree(popen: subprocess.Popen[bytes]) -> None:
    # Under bwrap, killing its first process is enough: the second one (the namespace's PID 1)
    # dies with it by its parent-death signal, and the kernel kills the rest of the namespace.
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        popen.wait(5)
    except subprocess.TimeoutExpired:
        pass


def run_as(uid: int, job: Callable[[], bytes], timeout: float = 30.0) -> bytes | None:
    """Run ``job`` in a forked child that has taken ``uid`` (no groups, no capabilities), and
    return what it returned, or None if it failed or took longer than ``timeout``.

    This is how the grader asks what a team's uid can do, from the team's side: the kernel's
    own permission checks (modes, ACLs, every folder on the way) and its own rule for whom a
    process may signal. A fork rather than a command, because the team's uid may not be able
    to run any interpreter of the grader's (a virtual environment under /root). The child makes
    only system calls and writes a pipe before ``os._exit``, so forking from a threaded grader
    is safe.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            data = job()
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    return b"".join(chunks) if os.waitstatus_to_exitcode(status) == 0 else None


def living_pids_of(uid: int) -> list[int]:
    """The processes whose real uid is ``uid`` and that are not zombies (read from ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)] and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(entry))
    return found


def kill_uid(uid: int, within: float = 2.0) -> bool:
    """SIGKILL every process of ``uid`` (a team's own uid), wherever it runs; True when none is
    left. A child that has taken the uid signals -1, which the kernel delivers to exactly the
    processes that uid may signal: its own. The backstop where no cgroup holds a team's
    processes (a container's read-only /sys/fs/cgroup) and one of them left its session.

    Whether any is left is read from ``/proc``, not from kill(-1)'s answer: Linux answers 0 to
    kill(-1) whenever the machine has any other process at all, even when the signal reached
    none of them (every one refused with EPERM), so "no such process" never comes."""

    def job() -> bytes:
        me = os.getpid()
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            if not [pid for pid in living_pids_of(uid) if pid != me]:
                return b"none left"
            if time.monotonic() > deadline:
                return b""
            time.sleep(0.01)

    return run_as(uid, job, timeout=within + 5) == b"none left"
