"""Reading what a team wrote, safely: the one read the engine and the checks use; and the one
write the harness makes into a tree whose content the team chose (:func:`safe_write`).

The team controls its folders, so any part of a path may be a symlink to a file it must not
read (``/etc/shadow``), the file a FIFO that blocks, or a device. :func:`safe_read` walks a path
one folder at a time from a root the harness chose, opening none through a symlink
(``O_NOFOLLOW`` on each), and reads the file only if it is a regular file on the root's own
filesystem, and at most ``max_bytes`` of it. There is no library call that does this (``open``
follows symlinks in every component; ``openat2``'s ``RESOLVE_BENEATH`` is not in Python's
standard library), hence the walk by hand.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

__all__ = ["MAX_READ_BYTES", "safe_list", "safe_read", "safe_write"]

MAX_READ_BYTES = 64 * 1024 * 1024
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(root: Path, path: Path | str) -> tuple[str, ...] | None:
    """``path`` (absolute under ``root``, or relative to it) as plain names, or None."""
    path = Path(path)
    if path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            return None
    parts = PurePosixPath(path).parts
    if not parts or any(p in ("..", "/", "") for p in parts):
        return None
    return tuple(p for p in parts if p != ".") or None


def _open_dir(root: Path, names: tuple[str, ...], opened: list[int]) -> tuple[int, int]:
    fd = os.open(root, _FLAGS | os.O_DIRECTORY)
    opened.append(fd)
    device = os.fstat(fd).st_dev
    for name in names:
        fd = os.open(name, _FLAGS | os.O_DIRECTORY, dir_fd=fd)
        opened.append(fd)
    return fd, device


def safe_read(root: Path, path: Path | str, max_bytes: int = MAX_READ_BYTES) -> bytes | None:
    """The first ``max_bytes`` of the regular file ``path`` under ``root``, or None when there
    is no such file reachable without a symlink, on ``root``'s own filesystem."""
    parts = _parts(root, path)
    if parts is None:
        return None
    opened: list[int] = []
    try:
        folder, device = _open_dir(root, parts[:-1], opened)
        fd = os.open(parts[-1], _FLAGS | os.O_NONBLOCK, dir_fd=folder)
        opened.append(fd)
        info = os.fstat(fd)
        # A hard link is a second name for a file the team may not own (where the workspace is
        # no tmpfs of its own and the kernel allows such links): read only files with one name.
        if not stat.S_ISREG(info.st_mode) or info.st_dev != device or info.st_nlink != 1:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes)
    except OSError:
        return None
    finally:
        for fd in opened:
            os.close(fd)


def safe_write(root: Path, path: str, content: bytes) -> None:
    """Write ``content`` to ``root/path`` without following a symlink: missing folders are made,
    an existing file, symlink or FIFO of that name is replaced, never written through. Raises
    ValueError when ``path`` leaves ``root`` or one of its folders is not a real folder (a
    submission that ships ``pkg`` as a symlink to ``/etc`` gets no write into ``/etc``)."""
    parts = _parts(root, path)
    if parts is None or Path(path).is_absolute():
        raise ValueError(f"{path!r} is not a relative path inside the submission")
    opened: list[int] = []
    try:
        fd = os.open(root, _FLAGS | os.O_DIRECTORY)
        opened.append(fd)
        for name in parts[:-1]:
            try:
                fd = os.open(name, _FLAGS | os.O_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(name, 0o755, dir_fd=fd)
                fd = os.open(name, _FLAGS | os.O_DIRECTORY, dir_fd=fd)
            except OSError:
                raise ValueError(f"{'/'.join(parts[:-1])} in the submission is not a folder (a symlink?)") from None
            opened.append(fd)
        try:
            info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                raise ValueError(f"{path} is a folder in the submission, not a file")
            os.unlink(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            pass
        out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as fh:
            fh.write(content)
    finally:
        for opened_fd in opened:
            os.close(opened_fd)


def safe_list(root: Path, limit: int = 10_000) -> list[str]:
    """The regular files under ``root`` (relative paths, sorted), found without following a
    symlink or leaving ``root``'s filesystem. At most ``limit`` entries (files and folders) are
    visited, and at most one folder's chain of descriptors is open at a time, so a team that
    makes a hundred thousand folders costs the grader neither its descriptors nor its time."""
    found: list[str] = []
    todo: list[tuple[str, ...]] = [()]
    visited = 0
    while todo and visited < limit:
        parts = todo.pop()
        opened: list[int] = []
        try:
            fd, device = _open_dir(root, parts, opened)
            for name in sorted(os.listdir(fd)):
                visited += 1
                if visited > limit:
                    break
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if info.st_dev != device:
                    continue
                if stat.S_ISREG(info.st_mode):
                    found.append("/".join((*parts, name)))
                elif stat.S_ISDIR(info.st_mode):
                    todo.append((*parts, name))
        except OSError:
            continue
        finally:
            for opened_fd in opened:
                os.close(opened_fd)
    return sorted(found)
