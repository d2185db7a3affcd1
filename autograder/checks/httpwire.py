"""The load generator's HTTP/1.1 client: keep-alive connections as asyncio protocols, answers
parsed by httptools (the C parser uvicorn uses).

Written by hand, because no kept library is cheap enough: on these 2-core machines the client
shares the CPU with the service it measures. aiohttp's request machinery cost about 290 µs of
CPU per request against a minimal FastAPI app, this protocol about 70 µs (measured side by side,
``benchmarks/bench_serving.py``'s P3 compares the load generator with wrk), and httpx's async
client far more (the project's field notes, "HTTP load on 2 cores"). What is by hand is only the
connection loop; parsing (status, headers, chunked or sized bodies, keep-alive) is httptools'.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

__all__ = ["Connection", "Target", "exchange"]


@dataclass(frozen=True)
class Target:
    """Where requests go: ``host``, ``port`` and the ``Host`` header's value."""

    host: str
    port: int

    @classmethod
    def split(cls, url: str) -> tuple[Target, str]:
        """``url``'s host and port, and its path (with its query)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the load generator speaks plain http to a host: {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, parts.port or 80), path

    def request(self, method: str, path: str, body: bytes | None) -> bytes:
        """One request's bytes (JSON body, or none)."""
        head = f"{method} {path or '/'} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is None:
            return (head + "Content-Length: 0\r\n\r\n").encode()
        return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`send` writes a request and returns a future of
    ``(status, body, keep_alive)``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._body: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)
        self.answered_bytes = 0  # of the current request's answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"the answer is not valid HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the service closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    # httptools' callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), b"".join(self._body), self._parser.should_keep_alive()))

    def send(self, raw: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        self._body = []  # the parser runs on from one answer to the next on a kept-alive connection
        self.answered_bytes = 0
        self._waiter = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def exchange(target: Target, conn: Connection | None, raw: bytes, timeout: float) -> tuple[int, bytes, Connection | None]:
    """Send ``raw`` on ``conn`` (a new connection when None or closed) and wait up to
    ``timeout`` seconds for the answer; returns its status and body and the connection to reuse
    (None when the service closes it). Raises OSError or TimeoutError; the connection is closed then.

    A kept-alive connection the service closed while it was idle (uvicorn closes them after 5 s)
    fails before a byte of the answer arrives: the request is sent again once, on a new
    connection, as browsers and HTTP libraries do, so a slow schedule is not failed for it."""
    loop = asyncio.get_running_loop()
    reused = conn is not None and not conn.closed
    if conn is None or conn.closed:
        _, conn = await asyncio.wait_for(loop.create_connection(lambda: Connection(loop), target.host, target.port), timeout)
    answer = conn.send(raw)
    timer = loop.call_later(timeout, lambda: answer.done() or answer.set_exception(TimeoutError(f"no answer within {timeout:g} s")))
    try:
        status, body, keep = await answer
    except ConnectionError:
        conn.close()
        if reused and conn.answered_bytes == 0:
            return await exchange(target, None, raw, timeout)
        raise
    except BaseException:
        conn.close()
        raise
    finally:
        timer.cancel()
    if not keep:
        conn.close()
        return status, body, None
    return status, body, conn
