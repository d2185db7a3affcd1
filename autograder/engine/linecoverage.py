"""Line coverage of a team's packages while one of its commands runs (``ctx.run(...,
coverage=("flightdelay",))``): information for the team, never a score.

The command runs unchanged. Its exchange folder gets two files of the harness's: an rcfile
(``coverage.ini``: parallel data files written into that folder, ``source`` the packages'
folders in the copy the command runs on) and a ``sitecustomize.py`` that calls coverage.py's
:func:`coverage.process_startup`; the folder goes first on the command's ``PYTHONPATH`` and
``COVERAGE_PROCESS_START`` names the rcfile. Every Python process of the command (and each it
starts) that can import coverage.py measures itself and writes ``.coverage.<suffix>`` there when
it exits; one that cannot, or a command that runs no Python, measures nothing (None). The
kit's ``{python}`` always can (coverage.py is the kit's dependency, and its ``.pth`` file
starts it as well); the ``sitecustomize`` this one hides (the system's) still runs after it.
The exchange folder is the one place every mode lets the command read and write: under
bubblewrap it lies in the workspace's ``io`` folder, bound read-write at the same path, so the
paths in the rcfile and in the data are the same on both sides; in a throwaway copy
(``replace``) the copy's own.

Afterwards the harness reads what the team's processes wrote. Those files are the team's,
so they are untrusted: each is read without following a symlink and size-bounded
(:func:`autograder.engine.files.safe_read`), copied into a folder of the harness's, and read
with its own read-only SQLite connection (plain selects of coverage.py's ``file`` and
``line_bits`` tables under a time limit, never coverage.py's own joins or a combine over the
team's schema); their line numbers go into a :class:`coverage.CoverageData` of the harness's.
The statements are counted by :meth:`coverage.Coverage.analysis2` over the packages' ``.py``
files of the copy the command ran on, read the same safe way. A malformed file is skipped, and a
forged one can only make the figure wrong: it is information only and never affects a score.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import coverage
from coverage.numbits import numbits_to_nums

from autograder.engine.files import safe_list, safe_read
from autograder.engine.jail import PARSE_LOCK

__all__ = ["Measurement", "package_names"]

RCFILE, DATA_PREFIX = "coverage.ini", ".coverage."
MAX_DATA_FILES, MAX_DATA_BYTES = 256, 32 * 1024 * 1024  # the team's data files, all together
MAX_SOURCE_FILES, MAX_SOURCE_BYTES = 2000, 8 * 1024 * 1024  # of the packages' files, all together
READ_SECONDS = 20.0  # all of the team's data files together
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SITECUSTOMIZE = '''\
# Written by the grading harness: line coverage of the team's packages (information only).
import os, sys
try:
    import coverage
    coverage.process_startup()
except BaseException:  # never change how the command runs
    pass


def _the_hidden_one():  # the sitecustomize this file hides on sys.path runs as it would have
    import importlib.machinery, importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_the_hidden_one()
del _the_hidden_one
'''


def package_names(packages: Sequence[str]) -> tuple[str, ...]:
    """``packages`` without repeats; a ValueError (the check's mistake) unless each is the
    name of a top-level package, which is a folder of the submission's top level."""
    if isinstance(packages, str):
        packages = (packages,)
    bad = [p for p in packages if not _PACKAGE.match(p)]
    if bad:
        raise ValueError(f"coverage= takes names of top-level packages of the submission, not {bad}")
    return tuple(dict.fromkeys(packages))


class Measurement:
    """The coverage files of one command run in ``io`` (its own exchange folder, which the
    command may read and write), for ``packages`` (top-level folders of ``copy``, the
    submission the command runs on)."""

    def __init__(self, io: Path, copy: Path, packages: Sequence[str]) -> None:
        self.io, self.copy, self.packages = io, Path(os.path.abspath(copy)), package_names(packages)
        sources = "".join(f"\n    {_literal(self.copy / p)}" for p in self.packages)
        (io / RCFILE).write_text(
            "[run]\nparallel = True\nbranch = False\n"
            f"data_file = {_literal(io / DATA_PREFIX.rstrip('.'))}\nsource ={sources}\n"
            "disable_warnings =\n    no-data-collected\n    module-not-imported\n    module-not-measured\n"
            "    module-not-python\n    already-imported\n    couldnt-parse\n    no-ctracer\n    no-sysmon\n"
        )
        (io / "sitecustomize.py").write_text(SITECUSTOMIZE)

    @property
    def env(self) -> dict[str, str]:
        """What the command's environment gets (``PYTHONPATH`` goes in front of the usual one)."""
        return {"PYTHONPATH": str(self.io), "COVERAGE_PROCESS_START": str(self.io / RCFILE)}

    def result(self) -> tuple[float, int] | None:
        """The share of the packages' statements in the copy that ran, and how many there are;
        None when no process of the command wrote coverage data, or there is no statement."""
        with tempfile.TemporaryDirectory(prefix="shipml-coverage-") as tmp:
            try:
                return self._measure(Path(os.path.realpath(tmp)))
            except Exception:  # information only: a file the harness cannot make sense of
                return None

    def _measure(self, tmp: Path) -> tuple[float, int] | None:
        sources = self._sources(tmp / "src")
        executed = self._executed(tmp, sources) if sources else None
        if executed is None:
            return None
        cov = coverage.Coverage(data_file=None, config_file=False)
        cov.get_data().add_lines({str(tmp / "src" / name): executed.get(name, set()) for name in sources})
        statements = ran = 0
        for name in sources:
            try:
                with PARSE_LOCK:  # ast.parse, which CPython 3.11 cannot run in two threads at once
                    _, lines, _, missing, _ = cov.analysis2(str(tmp / "src" / name))
            except Exception:  # not Python (a syntax error, nesting too deep): no statements to count
                continue
            statements += len(lines)
            ran += len(lines) - len(missing)
        return (ran / statements, statements) if statements else None

    def _sources(self, into: Path) -> dict[str, int]:
        """The packages' ``.py`` files in the copy, read safely into ``into``: their line counts
        by path relative to the copy (``pkg/mod.py``)."""
        found: dict[str, int] = {}
        budget = MAX_SOURCE_BYTES
        for package in self.packages:
            root = self.copy / package  # opened without following a symlink (safe_list, safe_read)
            for name in [n for n in safe_list(root) if n.endswith(".py")][:MAX_SOURCE_FILES]:
                content = safe_read(root, name, budget + 1)
                if content is None or len(content) > budget:
                    continue
                budget -= len(content)
                target = into / package / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                found[f"{package}/{name}"] = content.count(b"\n") + 1
        return found

    def _executed(self, tmp: Path, sources: dict[str, int]) -> dict[str, set[int]] | None:
        """The lines the command's processes ran in each of ``sources``; None when none of them
        wrote a data file the harness could read."""
        names = sorted(n for n in safe_list(self.io, limit=MAX_DATA_FILES * 4) if n.startswith(DATA_PREFIX))
        prefixes = {f"{os.path.realpath(self.copy)}/", f"{self.copy}/"}
        found: dict[str, set[int]] = {}
        budget, deadline, read = MAX_DATA_BYTES, time.monotonic() + READ_SECONDS, 0
        for index, name in enumerate(names[:MAX_DATA_FILES]):
            content = safe_read(self.io, name, budget + 1) if "/" not in name else None
            if content is None or len(content) > budget:
                continue
            budget -= len(content)
            local = tmp / f"data-{index}.sqlite"
            local.write_bytes(content)
            try:
                for path, numbits in _read_numbits(local, deadline):
                    relative = next((path[len(p):] for p in prefixes if path.startswith(p)), None)
                    count = sources.get(relative or "")
                    # At most the bytes that the file's own lines need: a forged blob costs nothing.
                    if relative is not None and count is not None and len(numbits) <= count // 8 + 1:
                        found.setdefault(relative, set()).update(n for n in numbits_to_nums(numbits) if n <= count)
            except (sqlite3.Error, ValueError, OverflowError):
                continue
            finally:
                local.unlink()
            read += 1
        return found if read else None


def _literal(path: Path) -> str:
    """A path as a value of coverage.py's rcfile, which expands ``$NAME`` (``$$`` is a ``$``)."""
    text = str(path)
    if "\n" in text:
        raise ValueError(f"a folder name with a line break cannot go into coverage.py's rcfile: {text!r}")
    return text.replace("$", "$$")


def _read_numbits(path: Path, deadline: float) -> list[tuple[str, bytes]]:
    """(measured path, numbits) of one of coverage.py's data files (its ``file`` and
    ``line_bits`` tables), read with a connection of the harness's: read-only, no query past
    ``deadline``, nothing in the file's schema trusted."""
    uri = f"{path.as_uri()}?mode=ro&immutable=1"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        connection.execute("pragma trusted_schema = off")
        paths = {row[0]: row[1] for row in connection.execute("select id, path from file")
                 if isinstance(row[0], int) and isinstance(row[1], str)}
        return [(paths[file_id], numbits) for file_id, numbits in connection.execute("select file_id, numbits from line_bits")
                if isinstance(numbits, bytes) and file_id in paths]
    finally:
        connection.close()
