"""The harness's HTTP load generator: N concurrent clients send requests, we time each one.

Two modes. :func:`send` fires as fast as the service answers (the latency check). :func:`replay`
sends a schedule (a time-ordered stream of :class:`Event`, e.g. flights in departure order with
a drift at a known point) at the times it says, in the foreground or in the background while
the check does something else (kills the service, reads its state), and records when each
request was sent and answered. Both stop sending once the check's time is up
(:func:`autograder.checkapi.cancel_requested`).

The client is :mod:`autograder.checks.httpwire` (asyncio protocols and httptools), because the
load generator must not be what it measures: on two cores it shares the CPU with the service,
and aiohttp's (let alone httpx's) per-request cost showed in the service's figures
(``benchmarks/bench_serving.py``'s P3 compares this one with wrk). Answers are kept as bytes and
parsed after the timed window, never while requests are being timed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.checkapi import cancel_flag, cancel_requested
from autograder.checks.httpwire import Connection, Target, exchange


@dataclass
class Reply:
    index: int
    status: int  # 0: no answer (connection error or timeout)
    seconds: float
    body: Any = None
    error: str = ""


@dataclass
class LoadResult:
    replies: list[Reply]
    wall_seconds: float
    concurrency: int
    stopped_early: bool = False

    @property
    def ok(self) -> list[Reply]:
        return [r for r in self.replies if 200 <= r.status < 300]

    def percentile_ms(self, q: float) -> float:
        times = [r.seconds for r in self.ok]
        return float(np.percentile(times, q) * 1000) if times else float("inf")

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.wall_seconds if self.wall_seconds > 0 else 0.0


async def _run(
    url: str,
    payloads: list[Any],
    total: int,
    concurrency: int,
    timeout: float,
    budget: float,
    method: str,
) -> tuple[list[tuple[int, int, float, bytes, str]], float, bool]:
    target, path = Target.split(url)
    requests = [target.request(method, path, json.dumps(p).encode()) for p in payloads]
    raw: list[tuple[int, int, float, bytes, str]] = []
    counter = iter(range(total))
    deadline = time.perf_counter() + budget
    stopped = False

    async def worker() -> None:
        nonlocal stopped
        conn: Connection | None = None
        for i in counter:
            if time.perf_counter() > deadline or cancel_requested():
                stopped = True
                break
            t0 = time.perf_counter()
            try:
                status, body, conn = await exchange(target, conn, requests[i % len(requests)], timeout)
                raw.append((i, status, time.perf_counter() - t0, body, ""))
            except (TimeoutError, OSError) as exc:
                conn = None
                raw.append((i, 0, time.perf_counter() - t0, b"", f"{exc.__class__.__name__}: {exc}"))
        if conn is not None:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return raw, time.perf_counter() - started, stopped


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")


def send(
    url: str,
    payloads: list[Any],
    *,
    total: int | None = None,
    concurrency: int = 8,
    timeout: float = 5.0,
    keep_bodies: bool = False,
    budget: float = 120.0,
    method: str = "POST",
) -> LoadResult:
    """Send ``total`` requests (default: one per payload) with ``concurrency`` clients.

    Each request has ``timeout`` seconds; the whole run stops starting new requests after
    ``budget`` seconds, so a slow service cannot hold the grader.
    """
    count = len(payloads) if total is None else total
    raw, wall, stopped = _loop(_run(url, payloads, count, concurrency, timeout, budget, method))
    # After the timed window: the bodies are parsed only now, so parsing costs the service nothing.
    replies = [Reply(i, status, seconds, _parsed(body) if keep_bodies and status else None, error)
               for i, status, seconds, body, error in sorted(raw)]
    return LoadResult(replies, wall, concurrency, stopped)


def _loop(coro: Any) -> Any:
    try:
        import uvloop  # the client's event loop is half of its cost: use the fast one when there
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass(frozen=True)
class Event:
    """One request of a schedule: sent ``at`` seconds after the replay starts."""

    at: float
    path: str
    body: Any = None
    method: str = "POST"


@dataclass
class Sent:
    """What happened to one event: when it was due, sent and answered (seconds from the start)."""

    event: Event
    index: int
    due: float
    sent: float
    answered: float
    status: int  # 0: no answer (connection error or timeout)
    body: bytes = b""
    error: str = ""

    def json(self) -> Any:
        """The answer's body as JSON (parsed after the timed window, not while sending)."""
        return json.loads(self.body)


@dataclass
class ReplayResult:
    sent: list[Sent]
    wall_seconds: float
    stopped_early: bool = False

    @property
    def lateness(self) -> float:
        """The largest delay between an event's due time and its send time (seconds)."""
        return max((s.sent - s.due for s in self.sent), default=0.0)


def paced(payloads: Sequence[Any], rate: float, path: str, method: str = "POST") -> list[Event]:
    """A schedule sending ``payloads`` in order at ``rate`` requests per second."""
    return [Event(i / rate, path, body, method) for i, body in enumerate(payloads)]


async def _replay(base: str, events: Sequence[Event], concurrency: int, timeout: float, budget: float,
                  halted: Callable[[], bool]) -> ReplayResult:
    target, prefix = Target.split(base)
    prefix = prefix.rstrip("/")
    out: list[Sent] = []
    idle: list[Connection] = []  # kept-alive connections, at most `concurrency` in use at once
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()
    stopped = False

    async def one(index: int, event: Event) -> None:
        async with gate:
            if halted():  # queued behind a slow service when the replay was stopped
                return
            sent = time.perf_counter() - start
            conn = idle.pop() if idle else None
            body = None if event.body is None else json.dumps(event.body).encode()
            try:
                status, answer, conn = await exchange(target, conn, target.request(event.method, prefix + event.path, body), timeout)
                out.append(Sent(event, index, event.at, sent, time.perf_counter() - start, status, answer))
                if conn is not None:
                    idle.append(conn)
            except (TimeoutError, OSError) as exc:
                out.append(Sent(event, index, event.at, sent, time.perf_counter() - start, 0, b"", f"{exc.__class__.__name__}: {exc}"))

    tasks = []
    for index, event in enumerate(sorted(events, key=lambda e: e.at)):
        while not halted() and (delay := event.at - (time.perf_counter() - start)) > 0:
            await asyncio.sleep(min(delay, 0.05))  # in slices: a stop is seen within 50 ms
        if halted() or time.perf_counter() - start > budget:
            stopped = True
            break
        tasks.append(asyncio.ensure_future(one(index, event)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    out.sort(key=lambda s: s.index)
    return ReplayResult(out, time.perf_counter() - start, stopped)


class Replay:
    """A replay running in the background: :meth:`wait` for its result, :meth:`stop` to end it early."""

    def __init__(self, base: str, events: Sequence[Event], concurrency: int, timeout: float, budget: float) -> None:
        self._stop = threading.Event()
        self._result: ReplayResult | None = None
        self._error: BaseException | None = None

        # The calling check's cancel flag, read from the replay's own thread at every event: the
        # replay stops the moment its check ends or runs out of time, as send() does.
        flag = cancel_flag()

        def halted() -> bool:
            return self._stop.is_set() or (flag is not None and flag.is_set())

        def run() -> None:
            try:
                self._result = _loop(_replay(base, events, concurrency, timeout, budget, halted))
            except BaseException as exc:  # noqa: BLE001 - handed to wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> ReplayResult:
        """The result, once every event was sent and answered; after ``timeout`` seconds the
        replay is stopped (no new event is sent) and waits only for answers already due."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()  # bounded: no event starts after the stop, each answer has `timeout`
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def replay(
    base: str,
    events: Sequence[Event],
    *,
    concurrency: int = 4,
    timeout: float = 5.0,
    budget: float = 120.0,
    background: bool = False,
) -> ReplayResult | Replay:
    """Send each event to ``base + event.path`` at its time (``concurrency`` requests in flight
    at most; a late answer delays no later event beyond that), recording send and answer times.
    Answers are kept as bytes and parsed after the timed window. With ``background=True``, returns
    a :class:`Replay` at once; else waits and returns the :class:`ReplayResult`."""
    runner = Replay(base, events, concurrency, timeout, budget)
    return runner if background else runner.wait()
