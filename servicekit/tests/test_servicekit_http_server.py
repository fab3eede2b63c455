"""The suite's HTTP/1.1 protocol (httptools with a bound on the request head), over real sockets: heads within the bound
are served, heads over it are refused with 400 whether they come at once or trickle in, bodies are not heads, and
malformed requests get uvicorn's 400."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordermesh_servicekit.http_server import MAX_HEAD_BYTES, BoundedHttpToolsProtocol


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"path": request.url.path, "headers": len(request.headers), "body": len(body)})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = Starlette(routes=[Route("/{rest:path}", _echo, methods=["GET", "POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", http=BoundedHttpToolsProtocol, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn exited while starting"
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _exchange(port: int, *pieces: bytes, pause: float = 0.0, until_answered: bool = False) -> bytes:
    """Sends `pieces` (pausing between them, so they arrive as separate reads; with `until_answered`, stopping once an
    answer comes) and returns what comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if until_answered:
                try:
                    first = await asyncio.wait_for(reader.read(1), pause)
                except TimeoutError:
                    continue
                return first + await asyncio.wait_for(reader.read(), 10)
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _head(extra: bytes = b"", method: bytes = b"GET", target: bytes = b"/x") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + extra + b"\r\n"


async def test_a_head_within_the_bound_is_served(port) -> None:
    answer = await _exchange(port, _head(b"X-Junk: " + b"a" * 8000 + b"\r\n" + b"X-More: 1\r\n" * 50))
    assert _status(answer) == 200 and b'"headers":53' in answer


async def test_a_head_over_the_bound_in_one_read_is_refused_with_400(port) -> None:
    answer = await _exchange(port, _head(b"X-Junk: " + b"a" * MAX_HEAD_BYTES + b"\r\n"))
    assert _status(answer) == 400 and answer.endswith(b"Invalid HTTP request received.")


async def test_too_many_headers_are_refused_with_400(port) -> None:
    answer = await _exchange(port, _head(b"".join(b"X-%d: 1\r\n" % i for i in range(5000))))
    assert _status(answer) == 400


async def test_a_request_target_over_the_bound_is_refused_with_400(port) -> None:
    answer = await _exchange(port, _head(target=b"/" + b"a" * MAX_HEAD_BYTES))
    assert _status(answer) == 400


async def test_a_header_trickling_in_past_the_bound_is_refused_before_it_ends(port) -> None:
    start = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Junk: "
    answer = await _exchange(port, start, *[b"a" * 1024] * (MAX_HEAD_BYTES // 1024 + 64), pause=0.01, until_answered=True)
    assert _status(answer) == 400


async def test_a_body_larger_than_the_bound_is_not_a_head(port) -> None:
    body = b"b" * (MAX_HEAD_BYTES * 8)
    answer = await _exchange(port, _head(b"Content-Length: %d\r\n" % len(body), method=b"POST") + body)
    assert _status(answer) == 200 and b'"body":%d' % len(body) in answer


async def test_a_request_after_a_large_body_on_a_kept_alive_connection_is_served(port) -> None:
    body = b"b" * (MAX_HEAD_BYTES * 4)
    first = b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    second = _head(b"X-Junk: " + b"a" * 1000 + b"\r\n", target=b"/second")
    # The second request's head starts in the same read as the first's body and ends in the next one.
    answer = await _exchange(port, first + second[:600], second[600:], pause=0.05)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and b'"path":"/second"' in answer


@pytest.mark.parametrize("raw", [
    b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\nBroken\r\n\r\n",
    b"G@T /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,
], ids=["nul-in-header", "header-without-colon", "bad-method", "two-lengths", "negative-length", "bad-chunk", "tls"])
async def test_malformed_requests_get_400(port, raw: bytes) -> None:
    assert _status(await _exchange(port, raw)) == 400
