"""Checks of the serving lab: a team's live flight-delay service, through its HTTP API.

Each check is about one property of the running service, and its message says what to change.
"""

from __future__ import annotations

import io
import json
import time
from typing import Annotated, Any

import httpx
import numpy as np
import pandas as pd
from pydantic import Field, ValidationError
from sklearn.metrics import average_precision_score, f1_score

from autograder.checkapi import CheckContext, CheckFailed, Params, Verdict, partial, passed
from autograder.checks import flights_api, loadgen
from autograder.checks.serving_contract import Prediction

REQUIRED_PATHS = {"/predict": "post", "/health": "get", "/version": "get"}
Count = Annotated[int, Field(ge=1, le=100_000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Share = Annotated[float, Field(ge=0, le=1)]


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def _valid_prediction(body: Any, version: str | None = None, need_version: bool = True) -> str:
    """What is wrong with a /predict answer, or '' when it keeps the contract (``Prediction``)."""
    if not isinstance(body, dict):
        return f"the answer is not a JSON object: {_short(body)}"
    if not need_version and not body.get("model_version"):
        body = {**body, "model_version": "-"}
    try:
        answer = Prediction.model_validate(body, strict=True)  # JSON types as they came: no "true" for true
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return f"{field} {err['msg'].lower()}, got {err.get('input')!r} (see the contract's Prediction)"
    if answer.delayed != (answer.delay_probability >= answer.threshold):
        return (f"delayed={answer.delayed} contradicts delay_probability={answer.delay_probability} with threshold="
                f"{answer.threshold} (delayed means probability >= threshold)")
    if version is not None and answer.model_version != version:
        return f"model_version {answer.model_version!r} differs from /version's {version!r}"
    return ""


class ApiContract(Params):
    rows: Count = 20


def check_api_contract(ctx: CheckContext[ApiContract]) -> Verdict:
    """OpenAPI is served with the contract's paths; /predict answers valid flights in the contract's shape."""
    rows = ctx.params.rows
    requests = flights_api.to_requests(flights_api.labelled_flights("validation", rows, data_dir=ctx.data.folder("validation")))
    # A carrier of the airlines table that the training months never saw must still get an answer.
    unseen = {**requests[0], "carrier": "OO", "weather": None}
    with ctx.client() as client:
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
        info = client.get("/version")
        version = info.json().get("model_version") if info.status_code == 200 else None
        if not isinstance(version, str) or not version.strip():
            raise CheckFailed(f"GET /version must answer 200 with a non-empty model_version, got {info.status_code}: {_short(info.text)}")
        for i, body in enumerate([*requests, unseen], start=1):
            name = "a valid carrier absent from training (OO)" if body is unseen else f"flight {i} ({body['carrier']} {body['origin']}->{body['dest']})"
            response = client.post("/predict", json=body)
            if response.status_code != 200:
                raise CheckFailed(f"POST /predict for {name} answered {response.status_code}: {_short(response.text)}; request: {_short(body)}")
            problem = _valid_prediction(response.json(), version)
            if problem:
                raise CheckFailed(f"POST /predict for {name}: {problem}")
    return passed(f"OpenAPI served; {rows + 1} valid requests answered in the contract's shape (model {version}).")


def _named_bad_inputs(good: dict[str, Any]) -> list[tuple[str, bytes | None, Any]]:
    """(name, raw body, JSON body): each must get a 4xx."""
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
            raw = case.body if isinstance(case.body, bytes) else None
            cases.append((label, raw, None if raw is not None else case.body))

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


class BadInput(Params):
    generated: Annotated[int, Field(ge=0, le=10_000)] = 60
    request_timeout: Seconds = 5.0


def check_bad_input_handled(ctx: CheckContext[BadInput]) -> Verdict:
    """Bad input gets a clear 4xx, generated input never gets a 5xx or a hang, and the service lives."""
    good = flights_api.to_requests(flights_api.labelled_flights("validation", 1, data_dir=ctx.data.folder("validation")))[0]
    timeout = ctx.params.request_timeout
    service = ctx.service()
    with service.client(timeout=timeout) as client:
        schema_doc = client.get("/openapi.json").json()
        named = _named_bad_inputs(good)
        generated = _generated_cases(schema_doc, ctx.params.generated)
        for kind, cases in (("named", named), ("generated", generated)):
            for name, raw, body in cases:
                shown = _short(raw.decode(errors="replace") if raw is not None else body)
                try:
                    if raw is not None:
                        response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
                    else:
                        response = client.post("/predict", json=body)
                except httpx.TimeoutException:
                    raise CheckFailed(f"POST /predict with {name} got no answer within {timeout:g} s; answer bad input quickly with a 4xx. Request: {shown}") from None
                except httpx.TransportError:
                    raise CheckFailed(f"POST /predict with {name} broke the connection: {service.describe_exit()}\nRequest: {shown}") from None
                if response.status_code >= 500:
                    raise CheckFailed(f"POST /predict with {name} answered {response.status_code}; validate the input and answer 4xx (422) naming the bad field. Request: {shown}")
                if kind == "named" and not 400 <= response.status_code < 500:
                    raise CheckFailed(f"POST /predict with {name} answered {response.status_code}; bad input must get a 4xx that names the problem. Request: {shown}")
        if client.get("/health").status_code != 200 or not service.alive():
            raise CheckFailed("after the bad requests the service is no longer healthy; bad input must never take it down")
    return passed(f"{len(named)} named bad inputs got a 4xx; {len(generated)} generated requests got no 5xx; the service stayed healthy.")


class Latency(Params):
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    requests: Count = 2000
    p50_ms: Annotated[float, Field(gt=0)]
    p95_ms: Annotated[float, Field(gt=0)]
    min_rps: Annotated[float, Field(gt=0)]
    budget: Seconds = 60


def check_latency_under_load(ctx: CheckContext[Latency]) -> Verdict:
    """p50/p95 latency and throughput under concurrent clients meet the lab's limits."""
    p = ctx.params
    concurrency, total = p.concurrency, p.requests
    payloads = flights_api.to_requests(flights_api.labelled_flights("validation", 200, data_dir=ctx.data.folder("validation")))
    service = ctx.service()
    loadgen.send(service.url + "/predict", payloads, total=min(200, total), concurrency=concurrency)  # warm-up
    result = loadgen.send(service.url + "/predict", payloads, total=total, concurrency=concurrency, budget=p.budget)
    failure = result.first_failure()
    if failure is not None:
        raise CheckFailed(f"request {failure.index} under load answered {failure.status or failure.error}; a service under load must still answer every request")
    p50, p95, p99, rps = result.percentile_ms(50), result.percentile_ms(95), result.percentile_ms(99), result.throughput
    figures = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, {rps:.0f} requests/s with {concurrency} concurrent clients"
    details = {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "rps": rps, "requests": len(result.replies)}
    misses = []
    if result.stopped_early:
        misses.append(f"only {len(result.replies)} of {total} requests finished within the time budget")
    if p50 > p.p50_ms:
        misses.append(f"p50 is above {p.p50_ms:g} ms")
    if p95 > p.p95_ms:
        misses.append(f"p95 is above {p.p95_ms:g} ms")
    if rps < p.min_rps:
        misses.append(f"throughput is below {p.min_rps:g} requests/s")
    if misses:
        raise CheckFailed(f"{figures}: {'; '.join(misses)}. Profile the /predict path: avoid per-request DataFrames, sleeps and model reloads.", **details)
    return passed(figures, **details)


class Accuracy(Params):
    rows: Count = 2000
    min_f1: Share
    min_pr_auc_lift: Share
    budget: Seconds = 120


def check_accuracy_in_production(ctx: CheckContext[Accuracy]) -> Verdict:
    """F1 and PR AUC of the live API on the held-out months beat the majority baseline and the lab's limits."""
    frame = flights_api.labelled_flights("heldout", ctx.params.rows, data_dir=ctx.data.folder("heldout"))
    payloads = flights_api.to_requests(frame)
    result = loadgen.send(ctx.service().url + "/predict", payloads, concurrency=8, keep_bodies=True, timeout=10, budget=ctx.params.budget)
    answered = [r for r in result.ok if not _valid_prediction(r.body, need_version=False)]
    if len(answered) < len(payloads):
        bad = result.first_failure() or next(r for r in result.replies if r not in answered)
        raise CheckFailed(f"only {len(answered)} of {len(payloads)} held-out flights got a valid prediction; the first other answer: {bad.status} {_short(bad.body or bad.error)}")
    y = frame["late"].astype(bool).to_numpy()
    proba = np.array([r.body["delay_probability"] for r in answered])
    label = np.array([r.body["delayed"] for r in answered])
    f1, pr_auc, base = float(f1_score(y, label, zero_division=0)), float(average_precision_score(y, proba)), float(y.mean())
    figures = f"on {len(y)} held-out flights (Sep-Dec): F1 {f1:.3f}, PR AUC {pr_auc:.3f}; the majority baseline has F1 0.000 and PR AUC {base:.3f}"
    min_f1, min_lift = ctx.params.min_f1, ctx.params.min_pr_auc_lift
    score = 0.5 * (f1 >= min_f1) + 0.5 * (pr_auc >= base + min_lift)
    details = {"f1": f1, "pr_auc": pr_auc, "baseline_pr_auc": base}
    if score < 1:
        return partial(score, f"{figures}. Needed: F1 >= {min_f1} and PR AUC >= baseline + {min_lift}. Serve a trained model, and check it on later months than it was trained on.", **details)
    return passed(figures, **details)


class NoSkew(Params):
    rows: Count = 300
    tolerance: Annotated[float, Field(ge=0)] = 1e-6


def check_no_training_serving_skew(ctx: CheckContext[NoSkew]) -> Verdict:
    """On the same flights, the live API's probabilities match the offline predict command's."""
    tolerance = ctx.params.tolerance
    frame = flights_api.labelled_flights("validation", ctx.params.rows, seed=7, data_dir=ctx.data.folder("validation"))
    requests = flights_api.to_requests(frame)
    table = flights_api.requests_table(requests).to_csv(index=False).encode()
    run = ctx.run("predict", inputs={"input": table}, outputs=["output"])
    if not run.ok:
        raise CheckFailed(f"the offline predict command failed: {run.explain()}. Last lines:\n{run.tail(10)}")
    if "output" not in run.files:
        raise CheckFailed("the predict command wrote no file at {output}; write the predictions CSV to the path it is given")
    try:
        offline = pd.read_csv(io.BytesIO(run.files["output"]))["delay_probability"].to_numpy(dtype=float)
    except (KeyError, ValueError) as exc:
        raise CheckFailed(f"could not read a delay_probability column from the predict command's {{output}} CSV ({exc})") from None
    if len(offline) != len(requests):
        raise CheckFailed(f"the predict command wrote {len(offline)} rows for {len(requests)} input rows; write one prediction per row, in order")
    result = loadgen.send(ctx.service().url + "/predict", requests, concurrency=4, keep_bodies=True)
    if len(result.ok) != len(requests):
        raise CheckFailed(f"only {len(result.ok)} of {len(requests)} requests to /predict succeeded")
    online = np.array([r.body["delay_probability"] for r in result.replies], dtype=float)
    diff = np.abs(online - offline)
    worst = int(np.argmax(diff))
    if diff[worst] > tolerance:
        bad = int((diff > tolerance).sum())
        raise CheckFailed(
            f"{bad} of {len(requests)} flights get a different probability online than offline; the largest gap is "
            f"{diff[worst]:.4f} (API {online[worst]:.4f}, offline {offline[worst]:.4f}) for {_short(requests[worst])}. "
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
    good = flights_api.to_requests(flights_api.labelled_flights("validation", 1, data_dir=ctx.data.folder("validation")))[0]
    with ctx.fresh_service() as fresh, fresh.client(timeout=30.0) as client:
        seconds, path = fresh.startup_seconds, fresh.health_path
        t0 = time.monotonic()
        response = client.post("/predict", json=good)
        answer_ms = (time.monotonic() - t0) * 1000
        if response.status_code != 200 or _valid_prediction(response.json(), need_version=False):
            raise CheckFailed(
                f"{path} said healthy after {seconds:.2f} s, but /predict then answered {response.status_code}: {_short(response.text)}. "
                "Report healthy only once the model is loaded and answering (load it before the server accepts requests)."
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
