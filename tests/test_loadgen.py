"""The load generator's HTTP client against servers that answer in every way HTTP allows (and
some it does not): chunked and sized bodies, keep-alive and close, an idle connection closed by
the server, no answer, garbage. A raw socket server, so each test controls the bytes."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from autograder.checks import loadgen

Answer = Callable[[socket.socket, int], bool]  # (connection, request number) -> keep the connection?


def _read_request(sock: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return True


@contextmanager
def server(answer: Answer) -> Iterator[tuple[str, list[int]]]:
    """A server whose every request is answered by ``answer``; yields its URL and the number of
    connections it accepted so far."""
    connections = [0]
    counter = [0]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            connections[0] += 1
            while _read_request(self.request):
                counter[0] += 1
                if not answer(self.request, counter[0]):
                    return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{srv.server_address[1]}/predict", connections
        finally:
            srv.shutdown()


def sized(sock: socket.socket, n: int, close: bool = False) -> bool:
    body = b'{"n": %d}' % n
    extra = b"Connection: close\r\n" if close else b""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return not close


def test_sized_and_chunked_bodies_are_read_whole_and_parsed_after_the_run():
    def chunked(sock: socket.socket, n: int) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"n\":\r\n" + b"%x\r\n %d}\r\n0\r\n\r\n" % (len(b" %d}" % n), n))
        return True

    for answer in (sized, chunked):
        with server(answer) as (url, connections):
            result = loadgen.send(url, [{"a": 1}], total=40, concurrency=4, keep_bodies=True)
        assert [r.status for r in result.replies] == [200] * 40
        assert sorted(r.body["n"] for r in result.replies) == list(range(1, 41))
        assert connections[0] == 4, "each client keeps its connection alive"


def test_connection_close_answers_each_get_a_new_connection():
    with server(lambda sock, n: sized(sock, n, close=True)) as (url, connections):
        result = loadgen.send(url, [{"a": 1}], total=10, concurrency=2)
    assert [r.status for r in result.replies] == [200] * 10 and connections[0] == 10


def test_an_idle_connection_the_server_closed_is_not_a_failed_request():
    """uvicorn closes a kept-alive connection after 5 idle seconds; when that close crosses the
    next request (the request is sent, the connection then drops without a byte of answer), the
    request is sent again on a new connection: a slow schedule must not fail a team for it."""
    def drops_the_second(sock: socket.socket, n: int) -> bool:
        if n == 2:
            return False  # the first connection's second request: closed without an answer
        return sized(sock, n)

    with server(drops_the_second) as (url, connections):
        events = [loadgen.Event(0.0, "/predict", {"i": 0}), loadgen.Event(0.3, "/predict", {"i": 1})]
        result = loadgen.replay(url.removesuffix("/predict"), events, concurrency=1)
    assert isinstance(result, loadgen.ReplayResult)
    assert [s.status for s in result.sent] == [200, 200], [s.error for s in result.sent]
    assert connections[0] == 2


def test_no_answer_and_garbage_are_failed_requests_with_the_reason():
    def silent(sock: socket.socket, n: int) -> bool:
        time.sleep(3)
        return False

    def garbage(sock: socket.socket, n: int) -> bool:
        sock.sendall(b"this is not http\r\n\r\n")
        return False

    with server(silent) as (url, _):
        started = time.monotonic()
        result = loadgen.send(url, [{"a": 1}], total=2, concurrency=2, timeout=0.5)
    assert time.monotonic() - started < 2.5, "the per-request timeout holds"
    assert [r.status for r in result.replies] == [0, 0] and all("TimeoutError" in r.error for r in result.replies)
    with server(garbage) as (url, _):
        result = loadgen.send(url, [{"a": 1}], total=1, concurrency=1)
    assert result.replies[0].status == 0 and "not valid HTTP" in result.replies[0].error, result.replies[0].error


def test_nothing_listening_is_a_failed_request_not_a_crash():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = loadgen.send(f"http://127.0.0.1:{port}/predict", [{"a": 1}], total=3, concurrency=1)
    assert [r.status for r in result.replies] == [0, 0, 0] and "ConnectionRefusedError" in result.replies[0].error
