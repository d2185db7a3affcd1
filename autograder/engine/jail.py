"""The team's view of the machine: the bubblewrap command line that runs one team command.

``bwrap`` (Debian's ``bubblewrap``, also Flatpak's sandbox) builds the view from an allow-list,
so a folder we forgot to hide is hidden anyway. The team sees:

- the system's read-only directories (``/usr``, ``/etc`` and the ``/bin``, ``/lib`` links);
- the interpreter that runs ``{python}`` (its prefix and its virtual environment), read-only;
- of the kit's own package, only the modules team code may import (see :func:`team_modules`);
- its workspace: its copy of the submission and the exchange folders read-write, the public
  data read-only;
- a private, size-limited ``/tmp``, ``/var/tmp`` and ``/dev/shm``, a minimal ``/dev``, and a
  ``/proc`` of its own PID namespace.

Nothing else: no other workspace, no kit checkout (``.git``, tests, labs, data, book), no
grading output, no home directory. Paths the caller calls hidden (the kit, the held-out data,
the output, the class folder) are masked again where they lie inside an allowed directory (a kit
checked out under ``/usr/local/src`` or an ``/etc`` folder).

The network namespace is *not* unshared: the team shares the grading process's namespace, which
has only loopback (:mod:`autograder.engine.netns`), because the harness reaches the team's
service on 127.0.0.1.

Privileges: bwrap runs as root, so that it can mount; the team's command starts under
``setpriv``, which drops to the team's uid, clears every capability and sets no-new-privs
before it executes ``/bin/sh -c COMMAND``. bwrap keeps only CAP_SETUID and CAP_SETGID for that
step. The two bwrap processes stay root, so the kernel keeps their parent-death signal (it clears
it on a uid change): bwrap's first process dies with the grader's spawning thread, the second
(PID 1 of the namespace) with the first, and the kernel then kills every team process in the
namespace. This chain is what makes the team die with the grader, even one killed by SIGKILL.
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
TEAM_ENTRY_MODULES = ("autograder", "autograder.data")
"""What team code may import from the kit. The serving lab's reference (and teams that copy it)
load the flight data with ``autograder.data``; nothing else of the grader is theirs to import.
The grader itself (engine, checks, their sampling and thresholds) stays out of the team's view,
so the students' runtime never depends on it: a future student release ships the data loader
on its own."""


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


PARSE_LOCK = threading.Lock()
"""Held around ``ast.parse`` of team code (CPython 3.11 cannot run it in two threads at once)."""


def team_modules(package: Path | None = None) -> list[Path]:
    """The source files of :data:`TEAM_ENTRY_MODULES` and of every kit module they import.

    Read from their import statements (``ast``), not by importing them, so the list follows
    the code when a loader starts to import another kit module. Worked out once per package
    and process, under a lock: two sandboxes start commands from two threads, and CPython
    3.11's ``ast.parse`` is not safe to run in two threads at once (a clean-clone CI run failed
    with "SystemError: AST constructor recursion depth mismatch").
    """
    with PARSE_LOCK:
        return list(_team_modules(package or package_dir()))


@functools.cache
def _team_modules(package: Path) -> tuple[Path, ...]:
    root, name = package.parent, package.name
    todo, seen = list(TEAM_ENTRY_MODULES), set()
    files: set[Path] = set()
    while todo:
        module = todo.pop()
        if module in seen or not (module == name or module.startswith(name + ".")):
            continue
        seen.add(module)
        parts = module.split(".")
        for i in range(1, len(parts)):  # every parent package's __init__ runs on import
            todo.append(".".join(parts[:i]))
        base = root.joinpath(*parts)
        source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not source.is_file():
            continue
        files.add(source)
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return tuple(sorted(files))


def package_dir() -> Path:
    """The kit's package as the grader imported it. In the sandbox its parent goes on
    ``PYTHONPATH``, so ``{python}`` imports the team modules from there, whatever else its
    environment would find (an editable install pointing at another checkout)."""
    import autograder

    return Path(autograder.__file__).resolve().parent


def interpreter_dirs() -> list[Path]:
    """The folders ``{python}`` needs: its prefix and, for a virtual environment, its base."""
    found = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent.parent]
    return list(dict.fromkeys(p for p in found if p != Path("/")))


class _View:
    """Folders made so far in the sandbox's root. bwrap makes a bind's missing parents with the
    host's modes (``/root`` is 0700), which would bar the team's uid from the interpreter under
    a home or from its own workspace in a 0700 folder; so each parent is made 0755 first."""

    def __init__(self) -> None:
        self.made: set[Path] = {Path("/")}

    def parents(self, path: Path, inside: list[Path]) -> list[str]:
        argv: list[str] = []
        for parent in reversed(path.parents):
            if parent not in self.made and not any(_under(parent, b) for b in inside):
                argv += ["--perms", "0755", "--dir", str(parent)]
                self.made.add(parent)
        return argv


def _ro(path: Path) -> list[str]:
    return ["--ro-bind", str(path), str(path)]


def _mask(path: Path) -> list[str]:
    if path.is_dir():
        return ["--tmpfs", str(path)]
    return ["--ro-bind", "/dev/null", str(path)] if path.exists() else []


def bwrap_argv(
    *,
    uid: int,
    cwd: Path,
    read_write: list[Path],
    read_only: list[Path],
    hidden: list[Path],
    tmp_mb: int,
    command: str,
) -> list[str]:
    """The full command line: ``bwrap [view] setpriv [drop to uid] /bin/sh -c COMMAND``."""
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    # CAP_DAC_READ_SEARCH only lets bwrap chdir into the team's 0700 folder; setpriv drops it.
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_DAC_READ_SEARCH"]
    bound: list[Path] = []
    view = _View()
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            argv += _ro(path)
            bound.append(path)
    hidden = [h.resolve() for h in hidden]
    argv += [a for h in hidden if any(_under(h, b) for b in bound) for a in _mask(h)]
    # The private tmp folders before the interpreter: a kit (and its venv) checked out under /tmp,
    # as a CI clone may be, must stay visible on top of the private /tmp.
    for private in ("/tmp", "/var/tmp", "/dev/shm"):
        argv += view.parents(Path(private), bound)
        argv += ["--perms", "1777", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", private]
        view.made.add(Path(private))
    interpreters = interpreter_dirs()
    for path in interpreters:
        if not any(_under(path, b) for b in bound):
            argv += view.parents(path, bound) + _ro(path)
    argv += [a for h in hidden for p in interpreters if _under(h, p) and h != p for a in _mask(h)]
    # An empty folder over the package, wherever it lies, then only the team's modules on it.
    package = package_dir()
    argv += view.parents(package, bound) + ["--tmpfs", str(package)]
    for module in team_modules():
        argv += _ro(module)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # After the private tmp folders: the workspace usually lies under /var/tmp.
    for path in read_only:
        argv += view.parents(path, bound) + _ro(path)
    for path in read_write:
        argv += view.parents(path, bound) + ["--bind", str(path), str(path)]
    argv += ["--chdir", str(cwd)]
    argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
    argv += ["--bounding-set=-all", "--no-new-privs", "--", "/bin/sh", "-c", command]
    return argv


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot give a team its view here, or None when it can.

    Tried once per grader with the very command line a team's command gets (:func:`bwrap_argv`:
    the same namespaces, mounts, capabilities and uid drop, on a throw-away folder, as
    ``nobody``): a container may ship ``bwrap`` but forbid the namespaces or mounts it needs.
    """
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="shipml-bwrap-probe-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        argv = bwrap_argv(uid=65534, cwd=folder, read_write=[folder], read_only=[], hidden=[], tmp_mb=1, command="true")
        try:
            probe = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap does not run here: {exc}"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        return f"bubblewrap cannot make its namespaces here: {last}"
    return None
