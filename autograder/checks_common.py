"""Checks any lab with a service or a command can use."""

from __future__ import annotations

import httpx

from autograder.engine import CheckFailed, Context, Verdict, passed


def check_service_starts(ctx: Context) -> Verdict:
    """The service becomes healthy within the startup limit of submission.toml."""
    service = ctx.service()
    return passed(f"The service became healthy in {service.startup_seconds:.1f} s.", startup_seconds=service.startup_seconds)


def check_requests_answered(ctx: Context) -> Verdict:
    """Every one of ``params.requests`` GET requests to ``params.path`` answers 200 in time."""
    path = str(ctx.params.get("path", "/"))
    count = int(ctx.params.get("requests", 20))
    timeout = float(ctx.params.get("request_timeout", 5.0))
    service = ctx.service()
    with service.client(timeout=timeout) as client:
        for i in range(1, count + 1):
            try:
                response = client.get(path)
            except httpx.TimeoutException:
                raise CheckFailed(f"GET {path} (request {i} of {count}) got no answer within {timeout:g} s; never let a request hang") from None
            except httpx.TransportError as exc:
                raise CheckFailed(f"GET {path} (request {i} of {count}) failed with {exc.__class__.__name__}: {service.describe_exit()}") from None
            if response.status_code != 200:
                raise CheckFailed(f"GET {path} (request {i} of {count}) answered {response.status_code}, expected 200")
    return passed(f"All {count} requests to {path} answered 200.")


def check_command_succeeds(ctx: Context) -> Verdict:
    """The team's ``params.command`` (e.g. ``test``) exits with code 0 within the time limit."""
    name = str(ctx.params.get("command", "test"))
    if name in ctx.setup:
        result = ctx.require_setup(name)
    else:
        result = ctx.run(name)
    if not result.ok:
        tail = "\n".join(result.output.splitlines()[-15:])
        raise CheckFailed(f"{result.explain()}; make '{name}' pass. Last lines of its output:\n{tail}")
    return passed(f"'{name}' succeeded in {result.duration:.1f} s.")
