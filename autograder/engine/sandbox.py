"""The local runner: runs a team's commands as untrusted processes, isolated and bounded.

As root, each command runs:

- on a private copy of the submission, in a workspace of its own: a size-limited tmpfs, mode
  0700, whose folders are owned by a throw-away uid (:mod:`autograder.engine.workspace`);
- under bubblewrap, which gives it an allow-list view of the filesystem, its own PID, mount, IPC
  and UTS namespaces and its own ``/proc``, and drops to the team's uid without capabilities
  (:mod:`autograder.engine.jail`); when the command's first process exits, or the grader dies
  however it dies, the kernel kills every process the command started, daemons included;
- in one cgroup per team, which limits memory, processes and CPU share for all of the team's
  processes together, and kills whatever is left when grading ends
  (:mod:`autograder.engine.cgroups`); per-process limits (CPU time, file size) stay as well;
- inside the grading process's network namespace, which has only a loopback interface when
  the ``grade`` verb could make one (:mod:`autograder.engine.netns`);
- with its output captured into a bounded buffer.

Without root there are no namespaces, uid, cgroups or tmpfs: the commands run in a process
group with per-process limits, and :attr:`Sandbox.isolation`, which goes into every report,
says plainly what is not isolated.
"""

from __future__ import annotations

import copy
import functools
import os
import resource
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checkapi import CommandResult
from autograder.engine import workspace
from autograder.engine.cgroups import TeamCgroup
from autograder.engine.files import MAX_READ_BYTES, safe_read, safe_write
from autograder.engine.jail import bwrap_problem
from autograder.engine.modes import Bubblewrap, Isolation, NotRoot, UidOnly
from autograder.engine.process import (
    OutputTail,
    Process,
    ProcessTable,
    die_with_parent,
    free_port,
    kill_uid,
    run_as,
    start_process,
    with_env,
)
from autograder.engine.spec import SubmissionSpec

# Re-exported: the service, the test runner and the benchmarks import these from here.
__all__ = ["Limits", "OutputTail", "Process", "Sandbox", "die_with_parent", "free_port", "render_command", "start_process"]


_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__")


@dataclass(frozen=True)
class Limits:
    """Resource limits: team-wide (cgroups, tmpfs) where the machine allows, else per process."""

    memory_mb: int = 4096  # all of the team's processes together (cgroup); also each process
    nproc: int = 256  # all of the team's processes together (cgroup); also per uid
    cpu_seconds: int = 900  # CPU time of each process
    fsize_mb: int = 512  # each file
    disk_mb: int = 1024  # the workspace (tmpfs): the submission, its model, its outputs
    tmp_mb: int = 256  # each of /tmp, /var/tmp and /dev/shm (tmpfs)
    output_bytes: int = 256 * 1024


def render_command(template: str, values: Mapping[str, str | int], *, data: Path) -> str:
    """A submission.toml command with its placeholders filled in, each value shell-quoted.
    ``data`` is the usual ``{data}`` folder; a ``data`` in ``values`` replaces it (a check may
    give ``{data}`` another folder, e.g. a second training set)."""
    base: dict[str, str | int] = {"python": sys.executable, "data": str(data), **values}
    return template.format(**{k: shlex.quote(str(v)) for k, v in base.items()})


def hand_over(folder: Path, uid: int) -> None:
    """Give a check's exchange folder to the team's uid: what the harness put in it becomes
    readable by all (folders 0755, files 0644) and stays root's, while the folder is still
    root's 0700 and out of the team's reach; only then is the folder itself chowned. Chowning
    the contents instead would race the team: once the top folder is its own, it could swap a
    subfolder for a symlink and have root chown whatever that points to."""
    for dirpath, _, files in os.walk(folder):
        os.chmod(dirpath, 0o755)
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):  # the harness copies files, never links; never follow one
                os.chmod(path, 0o644)
    os.chown(folder, uid, uid)
    os.chmod(folder, 0o700)


def choose_mode() -> Isolation:
    """The strongest isolation this machine gives: not root; root with a working bubblewrap;
    root without it (missing, or a container that forbids its namespaces), where teams still
    get their own uid, cgroup and tmpfs and the report says what is missing, rather than every
    team failing every check."""
    if os.geteuid() != 0:
        return NotRoot()
    problem = bwrap_problem()
    return UidOnly(problem) if problem else Bubblewrap()


def _set_rlimits(limits: Limits) -> None:
    mib = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mib, limits.memory_mb * mib))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb * mib, limits.fsize_mb * mib))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class Sandbox:
    """A private, isolated copy of one submission, and the way to run its commands."""

    spec: SubmissionSpec
    hidden: list[Path]
    limits: Limits = field(default_factory=Limits)
    public_data: Path | None = None
    workspace_root: Path | None = None
    isolation: list[str] = field(default_factory=list)

    mode: Isolation | None = None  # chosen from the machine (choose_mode) unless given

    def __post_init__(self) -> None:
        self.mode = self.mode or choose_mode()
        self.root_mode = self.mode.team_uid
        base = self.workspace_root or workspace.default_base()
        if self.root_mode:
            workspace.sweep(base)
        # A uid no other process uses, so RLIMIT_NPROC and kill() cannot touch anyone else.
        self.uid = workspace.TEAM_UID_BASE + os.getpid() if self.root_mode else None
        self.workspace, self.mounted = workspace.create(base, tmpfs_mb=self.limits.disk_mb if self.root_mode else None)
        self.copy = self.workspace / "submission"
        self.data_dir = self.workspace / "data"
        self.io_root = self.workspace / "io"
        self.state_dir = self.workspace / "state"  # {state}: survives restarts of the service
        shutil.copytree(self.spec.root, self.copy, symlinks=True, ignore=_NOT_COPIED)
        if self.public_data is not None:
            shutil.copytree(self.public_data, self.data_dir)
        else:
            self.data_dir.mkdir()
        self.state_dir.mkdir()
        # The exchange folders' parent belongs to root, so the team cannot swap an exchange
        # folder for a symlink while the harness writes a command's input into it.
        self.io_root.mkdir(mode=0o755)
        self.mode.prepare(self)
        self._pending: list[Path] = []
        self.group: TeamCgroup | None = None
        if self.uid is not None:
            self._hand_to_team(self.copy, self.data_dir)
            self.group = TeamCgroup.create(
                f"shipml-{workspace.owner_tag()}-{self.workspace.name.rpartition('-')[2]}",
                memory_bytes=self.limits.memory_mb * 1024 * 1024,
                pids=self.limits.nproc,
            )
        self.isolation.extend(self._describe())
        self.table = ProcessTable(self._start)

    def _hand_to_team(self, *trees: Path) -> None:
        """The state folder and ``trees`` (walked without following a symlink) to the team's uid, 0700."""
        assert self.uid is not None
        os.chown(self.state_dir, self.uid, self.uid)
        os.chmod(self.state_dir, 0o700)
        for path in trees:
            os.lchown(path, self.uid, self.uid)
            os.chmod(path, 0o700)
            for dirpath, dirs, files in os.walk(path):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(dirpath, name), self.uid, self.uid)

    @contextmanager
    def scratch(self, replace: Mapping[str, bytes]) -> Iterator[Sandbox]:
        """A throwaway copy of the submission as handed in, with ``replace``'s files written over
        it (``{"pkg/steps.py": code}``), and a ``{state}`` and exchange folders of its own: a view
        of this sandbox (same uid, cgroup, limits and process table, so a timed-out check's
        interrupt stops its commands too). Under bubblewrap its commands can write only that copy
        and those folders, never the real copy or state; all of it is removed when the block
        ends, so nothing a command wrote there reaches a later command of the team's."""
        root = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.workspace))
        os.chmod(root, 0o711)  # root's: the team's uid may only pass through (without bubblewrap)
        view = copy.copy(self)
        view.copy, view.state_dir, view.io_root = root / "submission", root / "state", root / "io"
        view._pending = []
        try:
            shutil.copytree(self.spec.root, view.copy, symlinks=True, ignore=_NOT_COPIED)
            for path, content in replace.items():
                safe_write(view.copy, path, content)
            view.state_dir.mkdir()
            view.io_root.mkdir(mode=0o755)
            if view.uid is not None:
                view._hand_to_team(view.copy)
            yield view
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def exposed(self, per_path: int = 2000) -> list[Path]:
        """The hidden paths where the team's uid can read something, found from its side: a
        child that has taken the uid tries each hidden path and what lies under it (the first
        ``per_path`` entries, as root lists them), so a folder it may pass through but not list
        (0711) still counts when a file in it is readable. Modes, ACLs and every folder on the
        way count, as the kernel counts them. Without a uid of the team's, every path counts."""
        if self.uid is None:
            return list(self.hidden)
        candidates: list[tuple[int, str]] = []
        for i, root in enumerate(self.hidden):
            if not os.path.lexists(root):
                continue
            found = [str(root)]
            if root.is_dir() and not root.is_symlink():
                for dirpath, dirs, files in os.walk(root):
                    found += [os.path.join(dirpath, name) for name in (*dirs, *files)]
                    if len(found) > per_path:
                        break
            candidates += [(i, path) for path in found[: per_path + 1]]

        def job() -> bytes:
            return " ".join(sorted({str(i) for i, path in candidates if os.access(path, os.R_OK)})).encode() + b"."

        answer = run_as(self.uid, job)
        if answer is None:  # the probe itself failed: assume the worst
            return list(self.hidden)
        hits = {int(i) for i in answer.decode().rstrip(".").split()}
        return [path for i, path in enumerate(self.hidden) if i in hits]

    def disk_line(self) -> str:
        """How the workspace's size is limited, for the report."""
        return f"a {self.limits.disk_mb} MiB tmpfs" if self.mounted else "NOT size-limited (tmpfs mount failed)"

    def _describe(self) -> list[str]:
        assert self.mode is not None
        lim = self.limits
        if self.group is None:
            return [
                *self.mode.describe(self),
                f"limits: per process only: memory {lim.memory_mb} MiB, {lim.nproc} processes, CPU {lim.cpu_seconds} s, "
                f"files {lim.fsize_mb} MiB; output {lim.output_bytes // 1024} KiB kept",
            ]
        names = {"memory": f"memory {lim.memory_mb} MiB", "pids": f"{lim.nproc} processes", "cpu": "an equal CPU share"}
        held = [f"{names[c]} ({how})" for c, (how, _) in self.group.where.items()]
        missing = [names[c] for c in names if c not in self.group.where]
        return [
            *self.mode.describe(self),
            "limits: team-wide through cgroups: " + (", ".join(held) or "none")
            + (f"; NOT team-wide (no cgroup controller): {', '.join(missing)}" if missing else "")
            + f"; per process: memory {lim.memory_mb} MiB, CPU {lim.cpu_seconds} s, files {lim.fsize_mb} MiB; "
            f"output {lim.output_bytes // 1024} KiB kept",
        ]

    def render(self, template: str, **values: str | int) -> str:
        return render_command(template, values, data=self.data_dir)

    def _env(self) -> dict[str, str]:
        # The same plain environment under `check` and `grade`, with nothing that names the
        # grader: a team's service cannot tell that it is being graded, or by which checks.
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env.update(
            HOME=str(self.copy),
            # As root, the kit's package folder holds only the modules teams may import (jail.py).
            PYTHONPATH=self.mode.pythonpath(self),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MPLCONFIGDIR="/tmp",
        )
        return env

    def _start(self, command: str, env: Mapping[str, str] | None = None) -> Process:
        assert self.mode is not None
        argv, limits, environment = self.mode.argv(self, command), self.limits, with_env(self._env(), env)
        if self.uid is None:
            return start_process(argv, env=environment, output_bytes=limits.output_bytes, cwd=self.copy,
                                 setup=lambda: _set_rlimits(limits))
        assert self.group is not None
        for folder in self._pending:
            hand_over(folder, self.uid)
        self._pending.clear()
        fds = self.group.join_fds()
        then = self.mode.in_child(self)

        def setup() -> None:
            TeamCgroup.join_child(fds)
            _set_rlimits(limits)
            if then is not None:
                then()

        # Under bubblewrap the view sets the working folder (--chdir); otherwise the copy is it.
        cwd = None if isinstance(self.mode, Bubblewrap) else self.copy
        try:
            return start_process(argv, env=environment, output_bytes=limits.output_bytes, cwd=cwd, setup=setup, team_uid=self.uid)
        finally:
            for fd in fds:
                os.close(fd)

    def spawn(self, command: str) -> Process:
        """Start a long-running team command (a service)."""
        return self.table.spawn(command, self._start)

    def run(self, command: str, timeout: float, env: Mapping[str, str] | None = None) -> CommandResult:
        """Run a team command to completion, within ``timeout`` seconds of wall-clock time;
        ``env`` is added to its environment (:func:`autograder.engine.process.with_env`)."""
        return self.table.run(command, timeout, functools.partial(self._start, env=env) if env else self._start)

    def exchange_dir(self) -> Path:
        """A fresh folder where the harness puts a command's input and the team writes output.

        It belongs to root (0700) until the next command starts, so the harness writes the
        inputs where the team cannot plant a symlink; then :func:`hand_over` makes what the
        harness put there readable and hands the folder itself, last, to the team's uid.
        """
        folder = Path(tempfile.mkdtemp(prefix="io-", dir=self.io_root))
        os.chmod(folder, 0o700 if self.uid is not None else 0o755)
        if self.uid is not None:
            self._pending.append(folder)
        return folder

    def read_output(self, path: Path, max_bytes: int = MAX_READ_BYTES) -> bytes | None:
        """The bytes of a file a team command wrote in the workspace, or None when there is no
        such regular file (read with :func:`autograder.engine.files.safe_read`: the team
        controls its folders, so no symlink is followed)."""
        return safe_read(self.workspace, path, max_bytes)

    def stop_all(self) -> int:
        """Stop every command this sandbox started that still runs (a timed-out check's)."""
        return self.table.stop_all()

    def forget(self, proc: Process) -> None:
        """Stop ``proc`` and stop tracking it."""
        self.table.forget(proc)

    def close(self) -> None:
        """Kill everything this sandbox started and remove the private copy."""
        self.table.close()
        if self.group is not None:
            self.group.remove()
        if self.uid is not None:
            kill_uid(self.uid)  # where no cgroup held them: a process that left its session
        workspace.remove(self.workspace)
