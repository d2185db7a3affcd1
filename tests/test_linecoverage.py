"""The harness's side of ``ctx.run(..., coverage=...)`` (autograder/engine/linecoverage.py) on
its own: the start-up files leave a command as it was, and the data files the team's processes
wrote are read as untrusted (a symlink, garbage, a schema that never ends, a forged blob cost
nothing and give None, or at worst a wrong figure). Each runner's side is in
tests/test_runner_contract.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coverage import CoverageData

from autograder.engine import linecoverage
from autograder.engine.linecoverage import Measurement, package_names
from autograder.engine.process import with_env

MODULE = "def area(side):\n    return side * side\n\n\ndef perimeter(side):\n    total = 4 * side\n    return total\n"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A submission copy with a package ``pkg`` (five statements) and an exchange folder."""
    copy, io = tmp_path / "copy", tmp_path / "io"
    (copy / "pkg").mkdir(parents=True)
    (copy / "pkg" / "__init__.py").write_text("")
    (copy / "pkg" / "shapes.py").write_text(MODULE)
    io.mkdir()
    return copy, io


def team_data(io: Path, lines: dict[str, list[int]], suffix: str = "team") -> Path:
    """A data file as a team's process writes it (coverage.py's own format)."""
    data = CoverageData(basename=str(io / ".coverage"), suffix=suffix)
    data.add_lines(lines)
    data.write()
    return io / f".coverage.{suffix}"


def run_python(copy: Path, measured: Measurement, code: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")} | {"PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, "-c", code], cwd=copy, env=with_env(base, measured.env),
                          capture_output=True, text=True, timeout=60)


def test_a_measured_command_runs_as_it_would_have_and_its_lines_are_counted(folders):
    copy, io = folders
    # A sitecustomize of the team's own, which the harness's hides on sys.path, still runs.
    (copy / "sitecustomize.py").write_text("print('team sitecustomize')\n")
    measured = Measurement(io, copy, ["pkg", "pkg"])
    done = run_python(copy, measured, "import sys, pkg.shapes as s; print(s.area(3)); sys.exit(7)")
    assert (done.returncode, done.stdout, done.stderr) == (7, "team sitecustomize\n9\n", "")
    assert measured.result() == (3 / 5, 5)


def test_nothing_measured_is_none(folders):
    copy, io = folders
    assert Measurement(io, copy, ["pkg"]).result() is None  # no process wrote a data file
    team_data(io, {str(copy / "pkg" / "shapes.py"): [1]})
    assert Measurement(io, copy, ["nopkg"]).result() is None  # no such package: nothing to measure
    with pytest.raises(ValueError, match="top-level packages"):
        package_names(["pkg.sub", "../etc"])


def test_a_symlink_garbage_or_a_hard_link_is_no_data(folders, tmp_path):
    copy, io = folders
    measured = Measurement(io, copy, ["pkg"])
    elsewhere = team_data(tmp_path, {str(copy / "pkg" / "shapes.py"): [1, 2]}, "elsewhere")
    (io / ".coverage.link").symlink_to(elsewhere)
    os.link(elsewhere, io / ".coverage.hard")
    (io / ".coverage.garbage").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    os.mkfifo(io / ".coverage.fifo")
    assert measured.result() is None


def test_a_forged_file_gives_at_worst_a_wrong_figure(folders):
    copy, io = folders
    measured = Measurement(io, copy, ["pkg"])
    shapes = str(copy / "pkg" / "shapes.py")
    # Files outside the package count for nothing, nor does a blob of lines the file does not
    # have; the lines one process ran are merged with another's.
    team_data(io, {shapes: [1, 2], str(copy / "other.py"): [1], "/etc/passwd": [1]}, "one")
    team_data(io, {shapes: [5]}, "two")
    team_data(io, {shapes: [3, 4, 999_999]}, "three")
    assert measured.result() == (3 / 5, 5)
    # A forged file that claims every line ran makes the figure wrong, and that is all it can do.
    team_data(io, {shapes: list(range(1, 8))}, "four")
    assert measured.result() == (5 / 5, 5)


def test_a_schema_that_never_ends_is_stopped(folders, monkeypatch):
    copy, io = folders
    monkeypatch.setattr(linecoverage, "READ_SECONDS", 0.5)
    endless = sqlite3.connect(io / ".coverage.endless")
    endless.executescript(
        "create table line_bits (file_id integer, numbits blob);"
        "create view file as with recursive n(i) as (select 1 union all select i + 1 from n) select i as id, 'x' as path from n;"
    )
    endless.close()
    started = time.monotonic()
    assert Measurement(io, copy, ["pkg"]).result() is None
    assert time.monotonic() - started < 10


def test_a_blob_longer_than_the_file_is_not_decoded(folders):
    copy, io = folders
    path = team_data(io, {str(copy / "pkg" / "shapes.py"): [1]}, "blob")
    forged = sqlite3.connect(path)
    forged.execute("update line_bits set numbits = ?", (b"\xff" * 1_000_000,))
    forged.commit()
    forged.close()
    assert Measurement(io, copy, ["pkg"]).result() == (0 / 5, 5)
