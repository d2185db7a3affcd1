"""A team's private workspace, and the sweep of what a dead grader left behind.

As root, a workspace is a size-limited tmpfs mounted on a fresh folder
``<base>/shipml-<pid>-<start>-<random>`` (mode 0700, owned by root; the team's own folders
inside are 0700 and owned by the team's uid). A tmpfs, because its size caps the team's disk
use as a whole (``RLIMIT_FSIZE`` caps one file at a time), it bounds the number of files, and a
file on it cannot be a hard link to a file of the host. Its pages are charged to the memory
cgroup of the process that writes them, so a team's files count against its memory limit too.

A grader that is SIGKILLed cannot clean up. Its team's processes die with it (see
:mod:`autograder.engine.jail`), but its workspace mount and cgroups stay. Each name carries
the grader's pid and its start time (pids are reused, the pair is not), so the next grader
(:func:`sweep`) knows which leftovers belong to a grader that is gone, and removes them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import tempfile
from pathlib import Path

from autograder.engine.cgroups import sweep_groups
from autograder.engine.process import kill_uid

_libc = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
TEAM_UID_BASE = 200000
"""A team's uid is ``TEAM_UID_BASE + the grader's pid``: a uid no other process uses."""
_NAME = re.compile(r"^shipml-(\d+)-(\d+)-")


def default_base() -> Path:
    # Not under /tmp: the team gets a private /tmp of its own.
    return Path(os.environ.get("SHIPML_WORKSPACE", "/var/tmp"))


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def owner_tag(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}-{start_time(pid)}"


def is_stale(name: str) -> bool:
    """Does ``name`` (a workspace or cgroup) belong to a grader that is no longer running?"""
    match = _NAME.match(name)
    if not match:
        return False
    pid, started = int(match.group(1)), int(match.group(2))
    return start_time(pid) != started


def _mount_tmpfs(path: Path, size_mb: int, inodes: int) -> None:
    options = f"size={size_mb}m,nr_inodes={inodes},mode=0700,uid=0,gid=0"
    if _libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", ctypes.c_ulong(_MS_NOSUID | _MS_NODEV), options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {path}: {os.strerror(err)}")


def _unmount(path: Path) -> None:
    # Lazy: a process that still holds a file open there cannot keep the folder from going.
    _libc.umount2(str(path).encode(), _MNT_DETACH)


def mounts_under(base: Path) -> list[Path]:
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = Path(line.split()[4].replace("\\040", " "))
            if point.parent == base and point.name.startswith("shipml-"):
                found.append(point)
    return found


def create(base: Path, *, tmpfs_mb: int | None, inodes: int = 100_000) -> tuple[Path, bool]:
    """A fresh workspace folder under ``base``; as root a tmpfs of ``tmpfs_mb``. (path, mounted)."""
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"shipml-{owner_tag()}-", dir=base))
    os.chmod(path, 0o700)
    if tmpfs_mb is None:
        return path, False
    try:
        _mount_tmpfs(path, tmpfs_mb, inodes)
    except OSError:
        return path, False
    return path, True


def remove(path: Path) -> None:
    if path in mounts_under(path.parent):
        _unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def sweep(base: Path | None = None) -> list[str]:
    """Remove what dead graders left: team processes, cgroups, workspaces. Says what it did."""
    base = base or default_base()
    done = []
    # Processes: those of a dead grader's teams are in its cgroups (a team process joins its
    # group before it runs), so killing the groups' processes finds every one, and never a
    # process of someone else that merely has a uid in the teams' range. Without cgroups, the
    # workspaces below name the uids.
    with contextlib.suppress(OSError):
        groups = sweep_groups(is_stale)
        if groups:
            done.append(f"killed the processes of and removed {groups} cgroup(s)")
    stale = set(mounts_under(base))
    with contextlib.suppress(OSError):
        stale.update(p for p in base.iterdir() if p.name.startswith("shipml-") and p.is_dir())
    old = [p for p in stale if is_stale(p.name)]
    for path in old:
        # Where no cgroup held its teams (a container's read-only /sys/fs/cgroup), a process that
        # left its session may still run as the team's uid. That uid is the dead grader's pid
        # plus TEAM_UID_BASE, and it is nobody else's only while no process has that pid again.
        owner = int(_NAME.match(path.name).group(1))  # type: ignore[union-attr]
        if start_time(owner) is None and not kill_uid(TEAM_UID_BASE + owner):
            done.append(f"could not kill every process of uid {TEAM_UID_BASE + owner}")
        remove(path)
    if old:
        done.append(f"removed {len(old)} workspace(s)")
    return done
