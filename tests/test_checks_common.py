"""The checks any lab can use, each on its own against the engine fixture's tiny service."""

from __future__ import annotations

import sys

import pytest
from conftest import ENGINE_FIXTURE

from autograder.testing import run_check

SERVE = f"{sys.executable} server.py --port {{port}} --mode {{mode}}"


def serve(mode: str) -> dict[str, str]:
    return {"serve": SERVE.replace("{mode}", mode)}


def test_check_service_starts():
    ok = run_check("autograder.checks.common:check_service_starts", commands=serve("healthy"), cwd=ENGINE_FIXTURE)
    assert ok.fraction == 1 and "healthy in" in ok.message
    ko = run_check("autograder.checks.common:check_service_starts", commands=serve("never_healthy"), cwd=ENGINE_FIXTURE, startup_timeout=2)
    assert ko.fraction == 0 and "did not become healthy within 2 s" in ko.message and "answered 503" in ko.message


def test_check_requests_answered():
    params = {"path": "/ping", "requests": 20, "request_timeout": 2}
    ok = run_check("autograder.checks.common:check_requests_answered", commands=serve("healthy"), cwd=ENGINE_FIXTURE, params=params)
    assert ok.fraction == 1, ok.message
    ko = run_check("autograder.checks.common:check_requests_answered", commands=serve("crash"), cwd=ENGINE_FIXTURE, params=params)
    assert ko.fraction == 0 and "request 6 of 20" in ko.message and "died (exit code 3)" in ko.message, ko.message


def test_check_command_succeeds():
    ok = run_check("autograder.checks.common:check_command_succeeds", commands={"test": "echo tests ok"}, params={"command": "test"})
    assert ok.fraction == 1
    ko = run_check("autograder.checks.common:check_command_succeeds", commands={"test": "echo 'one test failed'; exit 1"})
    assert ko.fraction == 0 and "exited with code 1" in ko.message and "one test failed" in ko.message


def test_run_check_validates_params_like_lab_toml():
    with pytest.raises(ValueError, match="params.reqests is not a parameter of check_requests_answered"):
        run_check("autograder.checks.common:check_requests_answered", params={"reqests": 3})
