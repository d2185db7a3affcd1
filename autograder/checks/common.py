"""Checks any lab with a service or a command can use."""

from __future__ import annotations

from typing import Annotated

import httpx
from pydantic import Field

from autograder.checkapi import CheckContext, CheckFailed, NoParams, Params, Verdict, passed


def check_service_starts(ctx: CheckContext[NoParams]) -> Verdict:
    """The service becomes healthy within the startup limit of submission.toml."""
    service = ctx.service()
    return passed(f"The service became healthy in {service.startup_seconds:.1f} s.", startup_seconds=service.startup_seconds)


class RequestsAnswered(Params):
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    requests: Annotated[int, Field(ge=1, le=100_000)] = 20
    request_timeout: Annotated[float, Field(gt=0)] = 5.0


def check_requests_answered(ctx: CheckContext[RequestsAnswered]) -> Verdict:
    """Every one of ``requests`` GET requests to ``path`` answers 200 in time."""
    p = ctx.params
    service = ctx.service()
    with service.client(timeout=p.request_timeout) as client:
        for i in range(1, p.requests + 1):
            where = f"GET {p.path} (request {i} of {p.requests})"
            try:
                response = client.get(p.path)
            except httpx.TimeoutException:
                raise CheckFailed(f"{where} got no answer within {p.request_timeout:g} s; never let a request hang") from None
            except httpx.TransportError as exc:
                raise CheckFailed(f"{where} failed with {exc.__class__.__name__}: {service.describe_exit()}") from None
            if response.status_code != 200:
                raise CheckFailed(f"{where} answered {response.status_code}, expected 200")
    return passed(f"All {p.requests} requests to {p.path} answered 200.")


class CommandSucceeds(Params):
    command: str = "test"


def check_command_succeeds(ctx: CheckContext[CommandSucceeds]) -> Verdict:
    """The team's ``command`` (e.g. ``test``) exits with code 0 within the time limit."""
    name = ctx.params.command
    result = ctx.setup(name) if name in ("install", "train") else ctx.run(name)
    if not result.ok:
        raise CheckFailed(f"{result.explain()}; make '{name}' pass. Last lines of its output:\n{result.tail()}")
    return passed(f"'{name}' succeeded in {result.duration:.1f} s.")
