"""Team-wide limits and a kill switch: one cgroup per team command.

``RLIMIT_AS`` and ``RLIMIT_NPROC`` hold per process (or per uid), so four children of 3 GB each
pass them; the kernel's cgroup controllers count all of a team's processes together. A
:class:`TeamCgroup` limits memory (swap included), the number of processes and the CPU share of
everything the team starts, and can kill all of it at once.

Each limit comes from cgroup v2 where the unified hierarchy offers that controller (most current
machines mount it at ``/sys/fs/cgroup``), else from the v1 hierarchy that mounts it (some
machines, this project's CI among them, mount v1 ``memory``, ``pids``, ``cpu`` and ``freezer``
next to an empty v2 hierarchy). Killing uses v2's ``cgroup.kill`` where any v2 hierarchy is
mounted (it needs no controller), else the v1 freezer (freeze, kill, thaw: a frozen fork bomb
cannot fork faster than we kill), else kill in a loop, bounded by the pids limit.

Where to put the cgroups: under the grader's own cgroup (so a team also stays inside whatever
limits the grader runs under), in a ``shipml`` folder. Cgroup v2 allows controllers in a
child only when its parent has no processes of its own; when the grader's cgroup has processes
(a login session), the v2 groups go under the hierarchy's root instead, as container engines do.

No library in the standard library or the kit's dependencies manages cgroups without systemd or
a container engine, so this module writes the cgroup files itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
GROUP = "shipml"


@dataclass(frozen=True)
class Hierarchy:
    mount: Path
    version: int
    controllers: frozenset[str]
    root: str  # the mount's root inside the hierarchy ("/" unless a namespace or bind moved it)


def hierarchies(mountinfo: str | None = None) -> list[Hierarchy]:
    """The cgroup hierarchies mounted in this mount namespace (from /proc/self/mountinfo)."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    found = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or len(extra) < 3:
            continue
        fstype, options = extra[0], extra[2].split(",")
        mount = Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            try:
                ctrls = frozenset((mount / "cgroup.controllers").read_text().split())
            except OSError:
                continue
            found.append(Hierarchy(mount, 2, ctrls, fields[3]))
        elif fstype == "cgroup":
            found.append(Hierarchy(mount, 1, frozenset(o for o in options if o in (*CONTROLLERS, "freezer")), fields[3]))
    return found


def own_cgroup(h: Hierarchy, proc_cgroup: str | None = None) -> Path:
    """The folder of this process's cgroup in hierarchy ``h``."""
    text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        names = set(ctrls.split(",")) if ctrls else set()
        if (h.version == 2 and ctrls == "") or (h.version == 1 and names & h.controllers):
            rel = os.path.relpath(path, h.root) if path.startswith(h.root) else "."
            return (h.mount / rel).resolve() if rel != "." else h.mount
    return h.mount


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _v2_parent(h: Hierarchy, wanted: list[str]) -> Path:
    """A folder under which v2 team groups may enable ``wanted`` (see the module's note)."""
    own = own_cgroup(h)
    for base in dict.fromkeys([own, h.mount]):
        try:
            enabled = set((base / "cgroup.subtree_control").read_text().split())
            missing = [c for c in wanted if c not in enabled]
            if missing:
                _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            parent = base / GROUP
            parent.mkdir(exist_ok=True)
            if wanted:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            return parent
        except OSError:
            continue  # the grader's cgroup has processes: try the hierarchy's root
    raise OSError("no cgroup v2 folder accepts the controllers " + ", ".join(wanted))


def group_parents() -> list[Path]:
    """Every folder where team groups may live, for the sweep of a dead grader's groups."""
    parents = []
    for h in hierarchies():
        for base in dict.fromkeys([own_cgroup(h), h.mount]):
            if (base / GROUP).is_dir():
                parents.append(base / GROUP)
    return parents


@dataclass
class TeamCgroup:
    """All of one team command's processes, limited together; :meth:`kill` ends every one."""

    name: str
    dirs: list[Path] = field(default_factory=list)
    where: dict[str, tuple[str, Path]] = field(default_factory=dict)  # controller -> (v1|v2, folder)
    killer: str = "loop"  # cgroup.kill / freezer / loop

    @classmethod
    def create(cls, name: str, *, memory_bytes: int, pids: int, cpu_weight: int = 100) -> TeamCgroup:
        """Make the team's groups and set the limits that the machine offers (maybe none)."""
        group = cls(name)
        found = hierarchies()
        for h in found:
            if h.version != 2:
                continue
            wanted = [c for c in CONTROLLERS if c in h.controllers]
            with contextlib.suppress(OSError):
                d = group._add(_v2_parent(h, wanted) / name)
                group.where.update({c: ("v2", d) for c in wanted})
                if (d / "cgroup.kill").exists():
                    group.killer = "cgroup.kill"
                break
        for h in found:
            wanted = [c for c in (*CONTROLLERS, "freezer") if c in h.controllers and c not in group.where]
            if h.version != 1 or not wanted:
                continue
            with contextlib.suppress(OSError):
                parent = own_cgroup(h) / GROUP
                parent.mkdir(exist_ok=True)
                d = group._add(parent / name)
                group.where.update({c: ("v1", d) for c in wanted})
                if "freezer" in wanted and group.killer == "loop":
                    group.killer = "freezer"
        group.where.pop("freezer", None)
        group._set_limits(memory_bytes, pids, cpu_weight)
        return group

    def _add(self, path: Path) -> Path:
        path.mkdir(exist_ok=True)
        self.dirs.append(path)
        return path

    def _set_limits(self, memory_bytes: int, pids: int, cpu_weight: int) -> None:
        # The first file of each list is the limit itself; the rest are extras (swap) that a
        # kernel may lack.
        settings = {
            "memory": {"v2": [("memory.max", memory_bytes), ("memory.swap.max", 0)],
                       "v1": [("memory.limit_in_bytes", memory_bytes), ("memory.memsw.limit_in_bytes", memory_bytes)]},
            "pids": {"v2": [("pids.max", pids)], "v1": [("pids.max", pids)]},
            # An equal share for every team (v2 weight 100 is v1's 1024 shares): a team with
            # 200 busy processes gets no more CPU than a team with one.
            "cpu": {"v2": [("cpu.weight", cpu_weight)], "v1": [("cpu.shares", cpu_weight * 1024 // 100)]},
        }
        for controller, (how, d) in list(self.where.items()):
            for i, (name, value) in enumerate(settings[controller][how]):
                try:
                    _write(d / name, str(value))
                except OSError:
                    if i == 0:
                        del self.where[controller]
                        break

    def join_fds(self) -> list[int]:
        """File descriptors of every ``cgroup.procs``, opened now; a child writes ``0`` to each
        between fork and exec (:meth:`join_child`), so no team process ever runs outside."""
        return [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for d in self.dirs]

    @staticmethod
    def join_child(fds: list[int]) -> None:
        for fd in fds:
            os.write(fd, b"0")

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return found

    def signal_all(self, sig: int, uid: int | None = None) -> None:
        """Send ``sig`` to every process in the group (only those of ``uid``, when given)."""
        for pid in self.pids():
            if uid is not None and uid_of(pid) != uid:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self, within: float = 2.0) -> bool:
        """Kill every process in the group; True once it is empty."""
        deadline = time.monotonic() + within
        freezer = next((d for d in self.dirs if (d / "freezer.state").exists()), None)
        while self.pids():
            if self.killer == "cgroup.kill":
                for d in self.dirs:
                    if (d / "cgroup.kill").exists():
                        with contextlib.suppress(OSError):
                            _write(d / "cgroup.kill", "1")
            elif freezer is not None:
                with contextlib.suppress(OSError):
                    _write(freezer / "freezer.state", "FROZEN")
                self.signal_all(signal.SIGKILL)
                with contextlib.suppress(OSError):
                    _write(freezer / "freezer.state", "THAWED")
            else:
                self.signal_all(signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def remove(self) -> bool:
        """Kill what is left, then remove the groups. True when nothing is left behind."""
        empty = self.kill()
        for d in self.dirs:
            for _ in range(100):  # the kernel frees a group a moment after its last process
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        return empty and not any(d.exists() for d in self.dirs)

    def describe(self) -> str:
        if not self.where:
            return "none (no cgroup controller could be used)"
        return ", ".join(f"{c} (cgroup {how})" for c, (how, _) in self.where.items())


def uid_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def sweep_groups(is_stale: object) -> int:
    """Kill and remove the team groups whose grader is gone (``is_stale(name)``); how many."""
    removed = 0
    for parent in group_parents():
        for child in parent.iterdir():
            if child.is_dir() and is_stale(child.name):  # type: ignore[operator]
                TeamCgroup(child.name, [child], killer="cgroup.kill" if (child / "cgroup.kill").exists() else "loop").remove()
                removed += 1
    return removed
