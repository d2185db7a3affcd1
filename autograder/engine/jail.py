"""The child side of the sandbox: ``python -m autograder.engine.jail [options] -- COMMAND``.

The runner starts this under ``unshare --pid --fork --kill-child --mount`` as root. Before it
executes the team's command it hides paths the team must not read (hidden data, other teams'
results, root's home) behind empty tmpfs mounts, gives the team a private ``/tmp``, sets the
resource limits, drops to an unprivileged uid and finally ``exec``s ``/bin/sh -c COMMAND``.

It is a separate small program, not a ``preexec_fn``, because mounts and privilege drops must
happen in the new mount namespace that ``unshare`` creates, and because a failure here has to
be reported as one clear line on stderr, which the runner shows in the report.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import sys
from pathlib import Path

_MS_RDONLY = 1
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    if _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    ) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def setup_mounts(masks: list[Path], exposes: list[Path], tmp_size: str, staging: Path) -> None:
    """Hide ``masks`` behind empty tmpfs and give the team a private ``/tmp``, then put back
    the ``exposes`` (interpreter, kit package, workspace) that lie under any of them."""
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    tmp = Path("/tmp")
    hidden = [*masks, tmp]
    if any(_under(staging, h) for h in hidden):
        raise OSError(f"the sandbox workspace {staging.parent} must not lie under /tmp or a hidden path; set SHIPML_WORKSPACE")
    staged: list[tuple[Path, Path]] = []
    for i, path in enumerate(exposes):
        if any(_under(path, h) for h in hidden) and path.exists():
            spot = staging / str(i)
            spot.mkdir(parents=True, exist_ok=True)
            _mount(str(path), str(spot), None, _MS_BIND | _MS_REC, None)
            staged.append((path, spot))
    for mask in masks:
        if mask.exists():
            _mount("tmpfs", str(mask), "tmpfs", 0, "size=1m,mode=0755")
    _mount("tmpfs", str(tmp), "tmpfs", 0, f"size={tmp_size},mode=1777")
    for path, spot in staged:
        path.mkdir(parents=True, exist_ok=True)
        _mount(str(spot), str(path), None, _MS_BIND | _MS_REC, None)


def set_limits(memory_mb: int, nproc: int, cpu_seconds: int, fsize_mb: int) -> None:
    mib = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mib, memory_mb * mib))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb * mib, fsize_mb * mib))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.engine.jail")
    parser.add_argument("--uid", type=int)
    parser.add_argument("--mask", action="append", default=[], type=Path)
    parser.add_argument("--expose", action="append", default=[], type=Path)
    parser.add_argument("--staging", type=Path)
    parser.add_argument("--tmp-size", default="256m")
    parser.add_argument("--memory-mb", type=int, default=4096)
    parser.add_argument("--nproc", type=int, default=256)
    parser.add_argument("--cpu-seconds", type=int, default=900)
    parser.add_argument("--fsize-mb", type=int, default=512)
    parser.add_argument("--cwd", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if args.uid is not None:
            setup_mounts(args.mask, args.expose, args.tmp_size, args.staging or args.cwd.parent / "staging")
        set_limits(args.memory_mb, args.nproc, args.cpu_seconds, args.fsize_mb)
        if args.uid is not None:
            os.setgroups([])
            os.setgid(args.uid)
            os.setuid(args.uid)
        os.chdir(args.cwd)
    except OSError as exc:
        print(f"shipml sandbox: could not start the command: {exc}", file=sys.stderr)
        return 126
    return supervise(["/bin/sh", "-c", " ".join(command)])


def supervise(argv: list[str]) -> int:
    """Run ``argv`` as our child and act as the namespace's init until it exits.

    In a new PID namespace the first process is PID 1, which the kernel shields from signals
    it has no handler for: a plain ``sh`` there would ignore SIGTERM and every stop would wait
    out its grace period. So this process stays PID 1 (no library does this small job in the
    standard library; tini does it in C): it forwards SIGTERM/SIGINT to the command's process
    group, reaps orphans, and exits with the command's status. When it exits, the kernel kills
    whatever the team left in the namespace.
    """
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        os.execv(argv[0], argv)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    raise SystemExit(main())
