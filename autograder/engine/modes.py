"""The sandbox's three isolation modes, as objects behind one interface.

Which mode a grading gets depends on the machine, never on the team:

- :class:`NotRoot`: the grader is not root (every student's ``shipml check``). The team's
  commands run as the grader's own user, in a process group, with per-process limits only;
  the report says plainly what that leaves open.
- :class:`Bubblewrap`: root with a working bubblewrap. The team's uid, an allow-list view of the
  machine, its own PID/mount/IPC/UTS namespaces, killed with the grader even by SIGKILL.
- :class:`UidOnly`: root where bubblewrap is missing or cannot make its namespaces (a Docker
  container's default profile). The team still gets its own uid (dropped between fork and exec),
  its cgroup and its tmpfs; the kit's data loader is copied into its workspace; only file
  permissions keep hidden data from it, and the report tries each hidden path as its uid.

The :class:`autograder.engine.sandbox.Sandbox` holds one mode and asks it for the command line,
the ``PYTHONPATH``, what to do in the child before exec, and the report's lines about it.
``tests/test_runner_contract.py`` runs the same contract over all three.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from autograder.engine.jail import bwrap_argv, package_dir, team_modules
from autograder.engine.process import die_with_parent, run_as

if TYPE_CHECKING:
    from autograder.engine.sandbox import Sandbox

__all__ = ["Bubblewrap", "Isolation", "NotRoot", "UidOnly"]


class Isolation(Protocol):
    """What differs between the modes. ``team_uid``: whether teams run as a uid of their own."""

    name: str
    team_uid: bool

    def prepare(self, box: Sandbox) -> None:
        """Make the workspace ready for this mode (after it is created, before any command)."""
        ...

    def argv(self, box: Sandbox, command: str) -> list[str]:
        """The command line that runs ``command`` (a shell command line) for the team."""
        ...

    def pythonpath(self, box: Sandbox) -> str:
        """``PYTHONPATH`` for the team: its copy, then where the kit's data loader is."""
        ...

    def in_child(self, box: Sandbox) -> Callable[[], None] | None:
        """What the child does between fork and exec, after joining the cgroup and its rlimits."""
        ...

    def describe(self, box: Sandbox) -> list[str]:
        """The report's lines on processes, filesystem and hidden data in this mode."""
        ...


def _shell(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]


@dataclass(frozen=True)
class NotRoot:
    name: str = "not root"
    team_uid: bool = False

    def prepare(self, box: Sandbox) -> None:
        pass

    def argv(self, box: Sandbox, command: str) -> list[str]:
        return _shell(command)

    def pythonpath(self, box: Sandbox) -> str:
        return str(box.copy)  # not root: the kit is the user's own install

    def in_child(self, box: Sandbox) -> Callable[[], None] | None:
        return None

    def describe(self, box: Sandbox) -> list[str]:
        return [
            "processes: NOT isolated (the grader is not root): the team's commands run as your user in a "
            "process group; they can read and write whatever your user can (your home, the kit, other "
            "submissions), their limits hold per process only, and a grader killed by SIGKILL leaves them "
            "running. Grade as root for full isolation (README, 'Without root')",
        ]


@dataclass(frozen=True)
class Bubblewrap:
    name: str = "bubblewrap"
    team_uid: bool = True

    def prepare(self, box: Sandbox) -> None:
        pass

    def argv(self, box: Sandbox, command: str) -> list[str]:
        assert box.uid is not None
        return bwrap_argv(
            uid=box.uid,
            cwd=box.copy,
            read_write=[box.copy, box.io_root, box.state_dir],
            read_only=[box.data_dir],
            hidden=box.hidden,
            tmp_mb=box.limits.tmp_mb,
            command=command,
        )

    def pythonpath(self, box: Sandbox) -> str:
        # In the view, the kit's package folder holds only the modules teams may import (jail.py).
        return f"{box.copy}:{package_dir().parent}"

    def in_child(self, box: Sandbox) -> Callable[[], None] | None:
        return None  # setpriv, inside the view, drops to the team's uid

    def describe(self, box: Sandbox) -> list[str]:
        return [
            f"processes: bubblewrap (own PID, mount, IPC and UTS namespaces, own /proc), uid {box.uid} without "
            "capabilities or new privileges; killed with the grader, even by SIGKILL",
            "filesystem: allow-list view: system directories and the interpreter read-only, the kit's data "
            f"loader only, its own 0700 workspace ({box.disk_line()}), private /tmp, /var/tmp and /dev/shm "
            f"({box.limits.tmp_mb} MiB each)",
        ]


@dataclass(frozen=True)
class UidOnly:
    problem: str  # why bubblewrap cannot run here
    name: str = "uid only"
    team_uid: bool = True

    def prepare(self, box: Sandbox) -> None:
        os.chmod(box.workspace, 0o711)  # no view: the team's uid must pass through it
        # The kit modules teams may import are copied into the workspace, root-owned and
        # read-only, and go on PYTHONPATH: the team's {python} imports the data loader as under
        # bubblewrap, and the kit folder itself (its hidden data) can stay closed to the team's
        # uid (a Gradescope container).
        dest = box.workspace / "kit"
        package = package_dir()
        for source in team_modules(package):
            target = dest / source.relative_to(package.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            os.chmod(target, 0o644)
        for folder in (dest, *(p for p in dest.rglob("*") if p.is_dir())):
            os.chmod(folder, 0o755)

    def argv(self, box: Sandbox, command: str) -> list[str]:
        return _shell(command)

    def pythonpath(self, box: Sandbox) -> str:
        return f"{box.copy}:{box.workspace / 'kit'}"

    def in_child(self, box: Sandbox) -> Callable[[], None] | None:
        uid = box.uid
        assert uid is not None

        def drop() -> None:  # no bwrap and setpriv: drop to the team's uid here
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            die_with_parent()  # again: the kernel cleared it on the uid change

        return drop

    def describe(self, box: Sandbox) -> list[str]:
        assert box.uid is not None
        lines = [
            f"processes: NOT isolated ({self.problem}): the team's commands run as uid {box.uid}, in the "
            "host's namespaces; they see the host's /proc; every process of that uid is killed when grading "
            "ends, but one that left its session outlives a grader killed by SIGKILL until the next grader's sweep",
            "filesystem: NOT an allow-list view: the team's uid reads whatever the host lets any user read "
            f"(the kit checkout included) and writes the host's /tmp, /var/tmp and /dev/shm; its own 0700 "
            f"workspace ({box.disk_line()}). Install bubblewrap, or grade where it can make namespaces (README, 'Without root')",
        ]
        open_to_team = box.exposed()
        lines.append(
            "hidden data: READABLE by the team's uid (it can read in "
            + ", ".join(map(str, open_to_team)) + "): close it (chmod 700 its folder) before grading"
            if open_to_team else
            f"hidden data: closed to the team's uid by file permissions (tried from its side when grading began: "
            f"nothing readable in {len(box.hidden)} hidden paths)"
        )
        if run_as(box.uid, lambda: b"yes" if os.access(sys.executable, os.X_OK) else b"no") != b"yes":
            lines.append(f"interpreter: {sys.executable} is NOT executable by the team's uid, so every "
                         "{python} command fails: grade with an interpreter outside folders closed to other users")
        return lines

