"""Checks of the serving lab's API: contract, bad input, honest health, latency and skew.

Each check is about one property of the running service, and its message says what to change:
for every answer it did not expect, the request, the status, the body and the service's log.
The checks of the served *model* (provenance, quality, accuracy) are in
:mod:`autograder.checks.serving_model`.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

import httpx
import numpy as np
import pandas as pd
from pydantic import Field, ValidationError

from autograder.checkapi import (
    CheckContext,
    CheckFailed,
    Params,
    ServiceHandle,
    Verdict,
    partial,
    passed,
)
from autograder.checks import flights_api, loadgen
from autograder.checks.flights_api import prediction_problem, short
from autograder.checks.serving_contract import ModelInfo
from autograder.errors import explain_validation

REQUIRED_PATHS = {"/predict": "post", "/health": "get", "/version": "get"}
Count = Annotated[int, Field(ge=1, le=100_000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


def traffic(ctx: CheckContext[Any], rows: int, seed: int) -> pd.DataFrame:
    """Ordinary traffic: validation flights, mixed with held-out ones when grading."""
    return flights_api.traffic(ctx.data.folder("validation"), ctx.data.heldout, rows, seed)


def unexpected(service: ServiceHandle, what: str, status: int | str, body: Any, request: Any) -> str:
    """One answer the check did not expect, with everything a team needs to reproduce it."""
    return (
        f"{what} answered {status}: {short(body)}\nRequest: {short(request)}\n"
        f"Last lines of the service's log:\n{service.log_tail(8)}"
    )


def model_info(client: httpx.Client) -> ModelInfo:
    """GET /version as the contract's ModelInfo, or CheckFailed naming the field that is wrong."""
    response = client.get("/version")
    if response.status_code != 200:
        raise CheckFailed(f"GET /version answered {response.status_code}: {short(response.text)}; it must answer 200 with the contract's ModelInfo")
    try:
        return ModelInfo.model_validate(response.json())
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            problem = explain_validation(exc, where="field {}", top="the answer")
            raise CheckFailed(f"GET /version: {problem} (see the contract's ModelInfo); it answered {short(response.text)}") from None
        raise CheckFailed(f"GET /version did not answer JSON: {short(response.text)}") from None


class ApiContract(Params):
    rows: Count = 20


def check_api_contract(ctx: CheckContext[ApiContract]) -> Verdict:
    """OpenAPI is served with the contract's paths; /version and /predict answer in the contract's shape."""
    rows = ctx.params.rows
    requests = flights_api.to_requests(traffic(ctx, rows, seed=13))
    # A carrier of the airlines table that the training months never saw must still get an answer.
    unseen = {**requests[0], "carrier": "OO", "weather": None}
    service = ctx.service()
    with service.client() as client:
        doc = client.get("/openapi.json")
        if doc.status_code != 200:
            raise CheckFailed(f"GET /openapi.json answered {doc.status_code}; serve the OpenAPI document there (FastAPI does by default)")
        try:
            paths = doc.json().get("paths", {})
        except (ValueError, AttributeError):
            raise CheckFailed("GET /openapi.json did not return a JSON OpenAPI document") from None
        missing = [f"{m.upper()} {p}" for p, m in REQUIRED_PATHS.items() if m not in paths.get(p, {})]
        if missing:
            raise CheckFailed(f"the OpenAPI document lacks {', '.join(missing)}; implement every endpoint of the contract")
        version = model_info(client).model_version
        for i, body in enumerate([*requests, unseen], start=1):
            name = "a valid carrier absent from training (OO)" if body is unseen else f"flight {i} ({body['carrier']} {body['origin']}->{body['dest']})"
            response = client.post("/predict", json=body)
            if response.status_code != 200:
                raise CheckFailed(unexpected(service, f"POST /predict for {name}", response.status_code, response.text, body))
            problem = prediction_problem(response.json(), version)
            if problem:
                raise CheckFailed(f"POST /predict for {name}: {problem}")
    return passed(f"OpenAPI served; /version in the contract's shape; {rows + 1} valid requests answered in the contract's shape (model {version}).")


def _named_bad_inputs(good: dict[str, Any]) -> list[tuple[str, bytes | None, Any]]:
    """(name, raw body, JSON body): each must get a 4xx (see ``_FIELD_OF`` for the field it names)."""
    def with_(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    without = {k: v for k, v in good.items() if k != "carrier"}
    return [
        ("malformed JSON", b'{"carrier": "UA", "origin": ', None),
        ("empty body", b"", None),
        ("a JSON list instead of an object", None, [good]),
        ("missing field 'carrier'", None, without),
        ("extra field 'price'", None, with_(price=99)),
        ("distance as text", None, with_(distance="far")),
        ("negative distance", None, with_(distance=-100)),
        ("departure hour 25", None, with_(scheduled_departure="2013-09-02T25:10:00")),
        ("not a date", None, with_(scheduled_departure="next tuesday")),
        ("unknown carrier 'ZZ'", None, with_(carrier="ZZ")),
        ("unknown origin airport 'BOS'", None, with_(origin="BOS")),
        ("unknown destination airport 'QQQ'", None, with_(dest="QQQ")),
        ("weather as a string", None, with_(weather="sunny")),
        ("humidity of 180%", None, with_(weather={**(good.get("weather") or {}), "humid": 180})),
        ("a 2 MB body", None, with_(notes="x" * 2_000_000)),
    ]


def _generated_cases(schema_doc: dict[str, Any], count: int) -> list[tuple[str, bytes | None, Any]]:
    """Requests to POST /predict generated by schemathesis from the team's own OpenAPI document,
    half of them breaking the schema on purpose. Deterministic: the same cases every run."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_dict(schema_doc)
    operation = next(op.ok() for op in schema.get_all_operations() if op.ok().path == "/predict")
    cases: list[tuple[str, bytes | None, Any]] = []
    def collector(label: str) -> Any:
        def collect(case: Any) -> None:
            body = case.body
            if not isinstance(body, bytes | dict | list | str | int | float | bool | None):
                body = b""  # schemathesis's "no body" marker: a document without a request schema
            raw = body if isinstance(body, bytes) else None
            cases.append((label, raw, None if raw is not None else body))

        return collect

    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        run = settings(max_examples=count // 2, database=None, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))(
            given(operation.as_strategy(generation_mode=mode))(collector(f"generated {mode.value} case"))
        )
        try:
            run()
        except Unsatisfiable:  # a document without a request schema has no invalid bodies to generate
            continue
    return cases


# The field each named bad input breaks: its 4xx must name it, so the caller knows what to fix.
_FIELD_OF = {
    "missing field 'carrier'": "carrier", "extra field 'price'": "price", "distance as text": "distance",
    "negative distance": "distance", "departure hour 25": "scheduled_departure", "not a date": "scheduled_departure",
    "unknown carrier 'ZZ'": "carrier", "unknown origin airport 'BOS'": "origin",
    "unknown destination airport 'QQQ'": "dest", "weather as a string": "weather", "humidity of 180%": "humid",
}


def _valid_variants(ctx: CheckContext[Any], good: dict[str, Any], destinations: int) -> list[tuple[str, dict[str, Any]]]:
    """Valid flights a careless validation rejects: every destination of the public data, no
    weather at all, weather with every field null, a carrier training never saw."""
    from autograder import data

    dests = sorted(set(data.load_flights("public", ctx.data.folder("validation"))["dest"].astype(str)))
    picked = dests if len(dests) <= destinations else [dests[i * len(dests) // destinations] for i in range(destinations)]
    variants = [(f"destination {d}", {**good, "dest": d}) for d in picked]
    variants += [
        ("weather null", {**good, "weather": None}),
        ("no weather field", {k: v for k, v in good.items() if k != "weather"}),
        ("every weather value null", {**good, "weather": dict.fromkeys(flights_api.WEATHER_FIELDS)}),
        ("carrier OO (valid, absent from training)", {**good, "carrier": "OO"}),
    ]
    return variants


class BadInput(Params):
    generated: Annotated[int, Field(ge=0, le=10_000)] = 60
    request_timeout: Seconds = 5.0
    destinations: Annotated[int, Field(ge=0, le=500)] = 200


def check_bad_input_handled(ctx: CheckContext[BadInput]) -> Verdict:
    """Bad input gets a 4xx naming the field, valid input is never rejected, nothing gets a 5xx or a hang, and the service lives."""
    p = ctx.params
    good = flights_api.to_requests(traffic(ctx, 1, seed=17))[0]
    service = ctx.service()
    problems: list[str] = []
    handled = cases = 0  # the bad inputs: each named case, and the generated ones as one case
    rejected: set[str] = set()  # the kinds of valid flight the service turned away
    # A connection per request: after a 500 the server may close a kept-alive connection, and the
    # reset must not be blamed on the next, innocent request.
    with httpx.Client(base_url=service.url, timeout=p.request_timeout, limits=httpx.Limits(max_keepalive_connections=0)) as client:

        def send(raw: bytes | None, body: Any) -> httpx.Response | str:
            try:
                if raw is not None:
                    return client.post("/predict", content=raw, headers={"content-type": "application/json"})
                return client.post("/predict", json=body)
            except httpx.TimeoutException:
                return f"no answer within {p.request_timeout:g} s"
            except httpx.TransportError:
                return f"a broken connection ({service.describe_exit()})"

        for name, raw, body in _named_bad_inputs(good):
            cases += 1
            shown = short(raw.decode(errors="replace") if raw is not None else body)
            answer = send(raw, body)
            if isinstance(answer, str):
                problems.append(f"{name}: {answer}. Request: {shown}")
            elif not 400 <= answer.status_code < 500:
                problems.append(f"{name}: answered {answer.status_code} {short(answer.text, 100)}; bad input must get a 4xx (422). Request: {shown}")
            elif _FIELD_OF.get(name) and _FIELD_OF[name] not in answer.text:
                problems.append(f"{name}: answered {answer.status_code} without naming the field '{_FIELD_OF[name]}': {short(answer.text, 100)}")
            else:
                handled += 1
        variants = _valid_variants(ctx, good, p.destinations)
        for name, body in variants:
            answer = send(None, body)
            if isinstance(answer, str) or answer.status_code != 200:
                got = answer if isinstance(answer, str) else f"{answer.status_code} {short(answer.text, 100)}"
                problems.append(f"rejected a valid flight ({name}): {got}; valid input must get a prediction. Request: {short(body)}")
                rejected.add(name.split(" ")[0] if name.startswith("destination") else name)
        try:
            schema_doc = client.get("/openapi.json").json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CheckFailed(f"GET /openapi.json failed after the bad inputs ({exc.__class__.__name__}: {exc}): {service.describe_exit()}") from None
        generated = _generated_cases(schema_doc, p.generated)
        broken = []
        for name, raw, body in generated:
            answer = send(raw, body)
            if isinstance(answer, str) or answer.status_code >= 500:
                got = answer if isinstance(answer, str) else f"{answer.status_code}"
                broken.append(f"{name}: {got}. Request: {short(raw.decode(errors='replace') if raw is not None else body)}")
        if generated:
            cases += 1
            handled += not broken
            if broken:
                problems.append(f"{len(broken)} of {len(generated)} generated requests got a 5xx or no answer; the first: {broken[0]}")
        try:
            alive = service.alive() and client.get("/health").status_code == 200
        except httpx.HTTPError:
            alive = False
    if not alive:
        raise CheckFailed(f"after the bad requests the service is no longer healthy; bad input must never take it down. Last lines of its log:\n{service.log_tail(10)}")
    if problems:
        # Points: the share of bad inputs handled, less a fifth for each kind of valid flight
        # turned away (all destinations count as one kind): rejecting everything earns nothing.
        fraction = handled / cases - 0.2 * len(rejected)
        shown = "\n".join(f"- {line}" for line in problems[:15]) + (f"\n- ... and {len(problems) - 15} more" if len(problems) > 15 else "")
        return partial(fraction, f"{len(problems)} problems ({handled} of {cases} bad inputs handled, {len(rejected)} kinds of valid flight rejected):\n{shown}\nLast lines of the service's log:\n{service.log_tail(8)}")
    return passed(f"{cases} bad inputs got a 4xx naming the field (the {len(generated)} generated ones no 5xx); {len(variants)} valid variants got a prediction; the service stayed healthy.")


class Latency(Params):
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    requests: Count = 2000
    warmup: Annotated[int, Field(ge=0, le=10_000)] = 200
    p50_ms: Annotated[float, Field(gt=0)]
    p95_ms: Annotated[float, Field(gt=0)]
    min_rps: Annotated[float, Field(gt=0)]
    budget: Seconds = 60


def check_latency_under_load(ctx: CheckContext[Latency]) -> Verdict:
    """p50/p95 latency and throughput under concurrent clients, on fresh valid flights, meet the lab's limits; every answer keeps the contract."""
    p = ctx.params
    # Fresh flights on every run, none of them in the warm-up: a cache of answers gains nothing.
    pool = flights_api.to_requests(traffic(ctx, p.warmup + p.requests, seed=secrets.randbelow(2**31)))
    warm, timed = pool[: p.warmup], pool[p.warmup :]
    service = ctx.service()
    url = service.url + "/predict"
    if warm:
        loadgen.send(url, warm, concurrency=p.concurrency)
    result = loadgen.send(url, timed, total=p.requests, concurrency=p.concurrency, budget=p.budget, keep_bodies=True)
    p50, p95, p99, rps = result.percentile_ms(50), result.percentile_ms(95), result.percentile_ms(99), result.throughput
    figures = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, {rps:.0f} requests/s with {p.concurrency} concurrent clients, {len(timed)} distinct flights"
    details = {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "rps": rps, "requests": len(result.replies)}
    for reply in result.replies:
        request = timed[reply.index % len(timed)]
        if 400 <= reply.status < 500:
            raise CheckFailed(
                f"{figures}. But a valid flight was rejected, which is a validation bug, not a load problem: "
                + unexpected(service, f"POST /predict (request {reply.index + 1})", reply.status, reply.body, request), **details)
        if not 200 <= reply.status < 300:
            raise CheckFailed(f"{figures}. But " + unexpected(service, f"POST /predict under load (request {reply.index + 1})", reply.status or reply.error, reply.body, request)
                              + "\nA service under load must still answer every request.", **details)
        problem = prediction_problem(reply.body, need_version=False)
        if problem:
            raise CheckFailed(f"{figures}. But the answer to request {reply.index + 1} breaks the contract: {problem}. Request: {short(request)}", **details)
    misses = []
    if result.stopped_early:
        misses.append(f"only {len(result.replies)} of {p.requests} requests finished within the {p.budget:g} s budget")
    if p50 > p.p50_ms:
        misses.append(f"p50 is above {p.p50_ms:g} ms")
    if p95 > p.p95_ms:
        misses.append(f"p95 is above {p.p95_ms:g} ms")
    if rps < p.min_rps:
        misses.append(f"throughput is below {p.min_rps:g} requests/s")
    if misses:
        raise CheckFailed(f"{figures}: {'; '.join(misses)}. Profile the /predict path: avoid per-request DataFrames, sleeps and model reloads.", **details)
    return passed(figures, **details)


class NoSkew(Params):
    rows: Count = 300
    tolerance: Annotated[float, Field(ge=0)] = 1e-6


def check_no_training_serving_skew(ctx: CheckContext[NoSkew]) -> Verdict:
    """On the same flights, the live API's probabilities match the offline predict command's, which reads the flights table's own layout."""
    tolerance = ctx.params.tolerance
    frame = flights_api.labelled_flights("validation", ctx.params.rows, seed=7, data_dir=ctx.data.folder("validation"))
    requests = flights_api.to_requests(frame)
    run = ctx.run("predict", inputs={"input": flights_api.training_rows(frame)}, outputs=["output"])
    offline = flights_api.offline_predictions(run, len(requests), "the offline predict command")
    service = ctx.service()
    result = loadgen.send(service.url + "/predict", requests, concurrency=4, keep_bodies=True)
    bad = next((r for r in result.replies if not 200 <= r.status < 300), None)
    if bad is not None or len(result.replies) != len(requests):
        status = bad.status or bad.error if bad else "nothing"
        raise CheckFailed(unexpected(service, f"POST /predict (flight {bad.index + 1 if bad else '?'} of {len(requests)})", status, bad.body if bad else "", requests[bad.index] if bad else ""))
    online = np.array([r.body["delay_probability"] for r in result.replies], dtype=float)
    diff = np.abs(online - offline)
    worst = int(np.argmax(diff))
    if diff[worst] > tolerance:
        count = int((diff > tolerance).sum())
        raise CheckFailed(
            f"{count} of {len(requests)} flights get a different probability online than offline; the largest gap is "
            f"{diff[worst]:.4f} (API {online[worst]:.4f}, offline {offline[worst]:.4f}) for {short(requests[worst])}. "
            "Serving must compute features exactly as training does (same time zone, same joins, same encoding).",
            max_abs_diff=float(diff[worst]),
        )
    return passed(f"API and offline predictions agree on {len(requests)} flights (largest gap {diff[worst]:.2g}).", max_abs_diff=float(diff[worst]))


class HealthHonest(Params):
    first_answer_factor: Annotated[float, Field(ge=1)] = 10
    first_answer_slack_ms: Annotated[float, Field(ge=0)] = 50


def check_health_is_honest(ctx: CheckContext[HealthHonest]) -> Verdict:
    """A fresh instance becomes healthy within the limit, and not before its model answers."""
    factor, slack_ms = ctx.params.first_answer_factor, ctx.params.first_answer_slack_ms
    good = flights_api.to_requests(traffic(ctx, 1, seed=19))[0]
    with ctx.fresh_service() as fresh, fresh.client(timeout=30.0) as client:
        seconds, path = fresh.startup_seconds, fresh.health_path
        t0 = time.monotonic()
        response = client.post("/predict", json=good)
        answer_ms = (time.monotonic() - t0) * 1000
        if response.status_code != 200 or prediction_problem(response.json(), need_version=False):
            raise CheckFailed(
                f"{path} said healthy after {seconds:.2f} s, but then "
                + unexpected(fresh, "POST /predict", response.status_code, response.text, good)
                + "\nReport healthy only once the model is loaded and answering (load it before the server accepts requests)."
            )
        # Compare the first answer with the service's own steady pace, so that a slow but honest
        # service passes and a lazily loading one does not.
        steady = []
        for _ in range(5):
            t0 = time.monotonic()
            client.post("/predict", json=good)
            steady.append((time.monotonic() - t0) * 1000)
        pace = sorted(steady)[2]
        allowed = factor * pace + slack_ms
        if answer_ms > allowed:
            raise CheckFailed(
                f"{path} said healthy after {seconds:.2f} s, but the first /predict then took {answer_ms:.0f} ms, against "
                f"{pace:.0f} ms for the next ones (allowed: {allowed:.0f} ms): the model was not ready. "
                "Load and warm the model before reporting healthy, not on the first request."
            )
        return passed(
            f"healthy after {seconds:.2f} s (limit {fresh.startup_timeout:g} s); the first /predict took {answer_ms:.0f} ms, the next ones {pace:.0f} ms.",
            startup_seconds=seconds,
        )
