"""The local runner: runs a team's commands as untrusted processes, isolated and bounded.

Each command runs:

- on a private copy of the submission, owned by a throw-away uid (when the harness is root);
- in a new PID namespace and mount namespace (``unshare``), where hidden data, the grading
  output and root's home are masked and ``/tmp`` is private, so killing the namespace's first
  process kills every process the team started, daemons included;
- with resource limits (address space, processes, CPU time, file size);
- inside the grading process's network namespace, which has only a loopback interface when
  the ``grade`` verb could make one (:mod:`autograder.engine.netns`);
- with its output captured into a bounded buffer.

Where the harness is not root, it falls back to a process group plus the same limits and says
so in :attr:`Sandbox.isolation`, which goes into every report.
"""

from __future__ import annotations

import collections
import ctypes
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checkapi import CommandResult
from autograder.checkapi import last_lines as tail_lines
from autograder.engine.spec import SubmissionSpec

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """Resource limits for each team command."""

    memory_mb: int = 4096
    nproc: int = 256
    cpu_seconds: int = 900
    fsize_mb: int = 512
    output_bytes: int = 256 * 1024
    tmp_size: str = "256m"


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
    # If the grading process dies (even by SIGKILL), the kernel kills this child too, so a
    # killed class run leaves no team process behind.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def render_command(template: str, *, data: Path, **values: str | int) -> str:
    """A submission.toml command with its placeholders filled in, each value shell-quoted."""
    base: dict[str, str | int] = {"python": sys.executable, "data": str(data), **values}
    return template.format(**{k: shlex.quote(str(v)) for k, v in base.items()})


def start_process(argv: list[str], *, env: dict[str, str] | None, output_bytes: int, cwd: Path | None = None) -> Process:
    """Start ``argv`` in a session of its own, its output pumped into a bounded buffer."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    output = OutputTail(output_bytes)
    assert popen.stdout is not None
    return Process(" ".join(argv), popen, output, time.monotonic(), output.pump(popen.stdout))


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

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 3.0) -> None:
        """Ask the process tree to stop, then kill all of it."""
        if self.popen.poll() is None:
            _signal_tree(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _kill_tree(self.popen)
        self.pump.join(1.0)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _signal_tree(pid: int, sig: int) -> None:
    # Signal the team's first process (the one below ``unshare``), which is where a server
    # installs its handlers; SIGTERM to ``unshare`` itself would only kill it.
    for target in _children(pid) or [pid]:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass


def _kill_tree(popen: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        popen.wait(5)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Sandbox:
    """A private, isolated copy of one submission, and the way to run its commands."""

    spec: SubmissionSpec
    hidden: list[Path]
    limits: Limits = field(default_factory=Limits)
    public_data: Path | None = None
    workspace_root: Path | None = None
    isolation: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Not under /tmp: the team gets a private, size-limited /tmp of its own (see jail.py).
        base = self.workspace_root or Path(os.environ.get("SHIPML_WORKSPACE", "/var/tmp"))
        base.mkdir(parents=True, exist_ok=True)
        self.workspace = Path(tempfile.mkdtemp(prefix="shipml-", dir=base))
        os.chmod(self.workspace, 0o755)
        self.copy = self.workspace / "submission"
        self.root_mode = os.geteuid() == 0 and shutil.which("unshare") is not None
        # A uid no other process uses, so RLIMIT_NPROC and kill() cannot touch anyone else.
        self.uid = 200000 + os.getpid() if self.root_mode else None
        shutil.copytree(self.spec.root, self.copy, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
        self.data_dir = self.workspace / "data"
        if self.public_data is not None:
            shutil.copytree(self.public_data, self.data_dir)
        else:
            self.data_dir.mkdir()
        if self.uid is not None:
            for path in (self.copy, self.data_dir):
                for dirpath, _dirs, files in os.walk(path):
                    os.lchown(dirpath, self.uid, self.uid)
                    for name in files:
                        os.lchown(os.path.join(dirpath, name), self.uid, self.uid)
            self.isolation.append(
                f"processes: pid+mount namespace, unprivileged uid {self.uid}, hidden paths masked, private /tmp"
            )
        else:
            self.isolation.append(
                "processes: process group only (not root: no namespaces, no uid drop; hidden paths are not masked)"
            )
        self.isolation.append(
            f"limits: memory {self.limits.memory_mb} MiB, {self.limits.nproc} processes, "
            f"CPU {self.limits.cpu_seconds} s, files {self.limits.fsize_mb} MiB, output {self.limits.output_bytes // 1024} KiB kept"
        )
        self._processes: list[Process] = []
        # Every team process is started from this one long-lived thread: PR_SET_PDEATHSIG fires
        # when the *thread* that forked a child exits, so a service started from a short-lived
        # check thread would be killed when that check ends.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")

    def render(self, template: str, **values: str | int) -> str:
        return render_command(template, data=self.data_dir, **values)

    def _argv(self, command: str) -> list[str]:
        jail = [sys.executable, "-m", "autograder.engine.jail", "--cwd", str(self.copy)]
        lim = self.limits
        jail += ["--memory-mb", str(lim.memory_mb), "--nproc", str(lim.nproc)]
        jail += ["--cpu-seconds", str(lim.cpu_seconds), "--fsize-mb", str(lim.fsize_mb)]
        if self.uid is None:
            return [*jail, "--", command]
        jail += ["--uid", str(self.uid), "--tmp-size", lim.tmp_size, "--staging", str(self.workspace / "staging")]
        for path in self._masks():
            jail += ["--mask", str(path)]
        for path in self._exposes():
            jail += ["--expose", str(path)]
        unshare = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private"]
        return [*unshare, *jail, "--", command]

    def _masks(self) -> list[Path]:
        home = Path(os.path.expanduser("~root"))
        return [*(p.resolve() for p in self.hidden), home]

    def _exposes(self) -> list[Path]:
        # What the team's processes need even when it lies under a masked folder: the
        # interpreter, the kit's own package, and their workspace.
        import autograder

        kit_pkg = Path(autograder.__file__).resolve().parent
        return [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), kit_pkg, self.workspace]

    def _env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            HOME=str(self.copy),
            PYTHONPATH=str(self.copy),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MPLCONFIGDIR="/tmp",
            SHIPML_SANDBOX="1",
        )
        return env

    def spawn(self, command: str) -> Process:
        """Start a long-running team command (a service)."""
        proc = self._spawner.submit(start_process, self._argv(command), env=self._env(), output_bytes=self.limits.output_bytes).result()
        proc.command = command
        self._processes.append(proc)
        return proc

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run a team command to completion, within ``timeout`` seconds of wall-clock time."""
        proc = self.spawn(command)
        timed_out = False
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        proc.stop(grace=0.5)
        self._processes.remove(proc)
        return CommandResult(
            command=command,
            returncode=proc.popen.returncode if not timed_out else None,
            output=proc.output.text(),
            duration=time.monotonic() - proc.started,
            timed_out=timed_out,
            output_truncated=proc.output.truncated,
        )

    def exchange_dir(self) -> Path:
        """A fresh folder where the harness puts a command's input and the team writes output."""
        folder = Path(tempfile.mkdtemp(prefix="io-", dir=self.workspace))
        os.chmod(folder, 0o755)
        if self.uid is not None:
            os.chown(folder, self.uid, self.uid)
        return folder

    def read_output(self, path: Path, max_bytes: int = 64 * 1024 * 1024) -> bytes | None:
        """The bytes of a file a team command wrote, or None when there is no such regular file.

        The team controls the workspace, so the file may be a symlink to a file the team must not
        read (``/etc/shadow``), a FIFO that blocks, or a device: it is opened without following
        symlinks and without blocking, read only if it is a regular file inside the workspace, and
        at most ``max_bytes`` of it.
        """
        if self.workspace.resolve() not in path.parent.resolve().parents and path.parent.resolve() != self.workspace.resolve():
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(max_bytes)
        finally:
            os.close(fd)

    def forget(self, proc: Process) -> None:
        """Stop ``proc`` and stop tracking it."""
        proc.stop()
        if proc in self._processes:
            self._processes.remove(proc)

    def close(self) -> None:
        """Kill everything this sandbox started and remove the private copy."""
        for proc in self._processes:
            proc.stop(grace=1.0)
        self._processes.clear()
        self._spawner.shutdown(wait=False)
        shutil.rmtree(self.workspace, ignore_errors=True)
