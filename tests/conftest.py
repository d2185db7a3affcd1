"""Shared fixtures: the kit's paths and fixture submissions for the engine's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENGINE_FIXTURE = REPO / "tests" / "fixtures" / "engine"


def shipml(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a separate process, the way users do."""
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"shipml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_fixture_submission(root: Path, mode: str, *, test_args: str = "", startup: float = 10) -> Path:
    """A submission folder whose service behaves as ``mode`` (see fixtures/engine/server.py)."""
    folder = root / mode
    folder.mkdir(parents=True)
    shutil.copy(ENGINE_FIXTURE / "server.py", folder)
    shutil.copy(ENGINE_FIXTURE / "steal.py", folder)
    test_cmd = f"{{python}} steal.py {test_args}" if mode == "steal" else "{python} -c 'print(\"tests ok\")'"
    if mode == "flood":
        test_cmd = "yes 'flooding the log' | head -c 200000000; echo done"
    (folder / "submission.toml").write_text(
        f"""[team]
name = "team-{mode}"
members = [{{ id = "{mode}-student" }}]

[commands]
serve = '''{{python}} server.py --port {{port}} --mode {mode}'''
test = '''{test_cmd}'''

[service]
health_path = "/health"
startup_timeout = {startup}
"""
    )
    return folder


@pytest.fixture
def fixture_submission(tmp_path: Path):
    def make(mode: str, **kw: object) -> Path:
        return make_fixture_submission(tmp_path / "class", mode, **kw)  # type: ignore[arg-type]

    return make


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine of the test session's own (tests/engines.py), or None where none can
    run here: not root, no docker.io and debootstrap (``make system-deps`` installs them), or
    an engine that cannot start (a container without the rights, no Debian mirror). The tests
    then fall back (or skip) and say why; with ``SHIPML_REQUIRE_DOCKER=1``, which CI sets, an
    engine that cannot run fails them instead."""
    from engines import DockerEngine, docker_available

    required = os.environ.get("SHIPML_REQUIRE_DOCKER") == "1"
    engine = None
    if docker_available():
        try:
            engine = DockerEngine()
        except (AssertionError, OSError, subprocess.SubprocessError) as exc:
            if required:
                raise
            warnings.warn(f"no Docker engine for the simulated Gradescope and Actions: {exc}", stacklevel=1)
    elif required:
        raise AssertionError("SHIPML_REQUIRE_DOCKER=1, but this machine cannot run the engine (root, docker.io and debootstrap: make system-deps)")
    yield engine
    if engine is not None:
        engine.close()
