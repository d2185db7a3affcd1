"""The sandbox's view when the kit and its interpreter live under /tmp (a CI clone may): the
private /tmp must not cover the interpreter, or every team command fails with 'not found'."""

from __future__ import annotations

from pathlib import Path

from autograder.engine import jail


def test_the_interpreter_under_tmp_is_bound_over_the_private_tmp(monkeypatch, tmp_path):
    venv = tmp_path / "kit" / ".venv"
    (venv / "bin").mkdir(parents=True)
    monkeypatch.setattr(jail, "interpreter_dirs", lambda: [venv])
    argv = jail.bwrap_argv(uid=230000, cwd=tmp_path, read_write=[], read_only=[], hidden=[], tmp_mb=16, command="true")
    private_tmp = max(i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == "/tmp")
    bind = next(i for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1] == str(venv))
    assert private_tmp < bind, "the interpreter is bound after (on top of) the private /tmp"
    assert str(Path(tmp_path)).startswith("/tmp"), "the test's own folder lies under /tmp"


def test_the_bubblewrap_probe_runs_the_command_line_teams_get(monkeypatch):
    """The probe must try what a team's command will run, not a simpler line of its own: a
    flag the team's line needs and this machine refuses must show up as the probe's problem."""
    import shutil

    import pytest

    if shutil.which("bwrap") is None or jail.bwrap_problem() is not None:
        pytest.skip("bubblewrap does not work here")  # make system-deps installs it; CI has it
    real = jail.bwrap_argv
    seen: list[list[str]] = []

    def refused(**kwargs: object) -> list[str]:
        argv = real(**kwargs)  # type: ignore[arg-type]
        seen.append(argv)
        return [argv[0], "--no-such-option", *argv[1:]]

    monkeypatch.setattr(jail, "bwrap_argv", refused)
    jail.bwrap_problem.cache_clear()
    try:
        problem = jail.bwrap_problem()
    finally:
        jail.bwrap_problem.cache_clear()
    assert problem is not None and "no-such-option" in problem, problem
    assert seen and seen[0][-3:] == ["/bin/sh", "-c", "true"] and "setpriv" in seen[0]
