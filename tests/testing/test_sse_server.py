"""The ``sse_server`` fixture: scripted bytes and seams, faults, resume, and what it received."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import httpx
import pytest

from aiostreams import ServerSentEvent, SSEDecoder, connect
from aiostreams.errors import EventTooLarge
from aiostreams.testing import Recording, SSEServer
from aiostreams.testing._script import MALFORMED_CHUNK


async def read_chunks(url: str, **request: object) -> tuple[aiohttp.ClientResponse, list[bytes]]:
    """Every HTTP chunk as the server wrote it (aiohttp's readchunk keeps the seams)."""
    chunks: list[bytes] = []
    pending = b""
    async with (
        aiohttp.ClientSession() as session,
        session.request(str(request.pop("method", "GET")), url, **request) as response,  # type: ignore[arg-type]
    ):
        while True:
            data, end = await response.content.readchunk()
            pending += data
            if end and pending:
                chunks.append(pending)
                pending = b""
            if not data and not end:
                break
    return response, chunks


async def test_events_and_raw_bytes_arrive_with_their_seams(sse_server: SSEServer) -> None:
    sse_server.on("/events").event("one", id="1").send(
        b"data: t", "wo\n\n", ServerSentEvent(data="3")
    )
    response, chunks = await read_chunks(sse_server.url_for("/events"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert chunks == [b"id: 1\ndata: one\n\n", b"data: t", b"wo\n\n", b"id: \ndata: 3\n\n"]


async def test_every_request_is_recorded(sse_server: SSEServer) -> None:
    sse_server.on("/chat", method="POST").events("hi")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            sse_server.url_for("/chat?model=m&n=1"),
            json={"prompt": "hello"},
            headers={"Last-Event-ID": "41", "X-Trace": "t"},
        ) as response,
    ):
        assert await response.read() == b"data: hi\n\n"
    (request,) = sse_server.requests
    assert (request.method, request.path, request.query) == (
        "POST",
        "/chat",
        {"model": "m", "n": "1"},
    )
    assert request.query_string == "model=m&n=1"
    assert request.last_event_id == "41"
    assert request.headers["x-trace"] == "t"
    assert request.json() == {"prompt": "hello"}


async def test_scripts_answer_connections_in_order_then_404(sse_server: SSEServer) -> None:
    sse_server.on("/e").events("first")
    sse_server.on("/e").events("second")
    sse_server.on("/other", times=None).events("always")
    bodies = []
    async with aiohttp.ClientSession() as session:
        for path in ("/e", "/e", "/other", "/other", "/e"):
            async with session.get(sse_server.url_for(path)) as response:
                bodies.append((response.status, await response.read()))
    assert bodies[:4] == [
        (200, b"data: first\n\n"),
        (200, b"data: second\n\n"),
        (200, b"data: always\n\n"),
        (200, b"data: always\n\n"),
    ]
    assert bodies[4][0] == 404
    assert b"no script (left) for request 5, GET /e" in bodies[4][1]


async def test_status_with_retry_after_and_default_body(sse_server: SSEServer) -> None:
    sse_server.on().status(503, retry_after=2)
    async with aiohttp.ClientSession() as session, session.get(sse_server.url) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert await response.text() == "503 Service Unavailable\n"


async def test_headers_are_added_and_content_type_replaced(sse_server: SSEServer) -> None:
    sse_server.on().headers({"X-A": "1", "Content-Type": "text/event-stream; charset=utf-8"})
    sse_server.on().header("X-A", "2").events("x")
    async with aiohttp.ClientSession() as session:
        async with session.get(sse_server.url) as response:
            assert response.headers.getall("Content-Type") == ["text/event-stream; charset=utf-8"]
            assert response.headers["X-A"] == "1"
        async with session.get(sse_server.url) as response:
            assert response.headers["X-A"] == "2"
            assert response.headers["Cache-Control"] == "no-cache"


async def test_wrong_content_type_and_json_body(sse_server: SSEServer) -> None:
    sse_server.on().content_type("text/html").send("<html>")
    sse_server.on().status(418).json({"message": "teapot"})
    async with aiohttp.ClientSession() as session:
        async with session.get(sse_server.url) as response:
            assert response.headers["Content-Type"] == "text/html"
            assert await response.read() == b"<html>"
        async with session.get(sse_server.url) as response:
            assert response.status == 418
            assert await response.json() == {"message": "teapot"}


async def test_reset_inside_an_event(sse_server: SSEServer) -> None:
    sse_server.on().events("a", "b").send(b"data: hal").reset()
    chunks: list[bytes] = []
    async with aiohttp.ClientSession() as session, session.get(sse_server.url) as response:
        with pytest.raises(aiohttp.ClientPayloadError, match="reset by peer"):
            async for chunk in response.content.iter_any():
                chunks.append(chunk)  # noqa: PERF401 - keeps what came before the error
    assert b"".join(chunks) == b"data: a\n\ndata: b\n\ndata: hal"


async def test_disconnect_leaves_the_body_unfinished(sse_server: SSEServer) -> None:
    sse_server.on().events("a").disconnect()
    async with aiohttp.ClientSession() as session, session.get(sse_server.url) as response:
        assert await response.content.readuntil(b"\n\n") == b"data: a\n\n"
        with pytest.raises(aiohttp.ClientPayloadError, match="not completed"):
            await response.read()


def raw_get(url: str) -> bytes:
    """Everything the server sends to a bare ``GET`` until it closes (no HTTP parsing)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def test_malformed_chunk_on_the_wire(sse_server: SSEServer) -> None:
    sse_server.on().events("a").malformed_chunk()
    head, _, body = raw_get(sse_server.url).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"9\r\ndata: a\n\n\r\n" + MALFORMED_CHUNK  # then closed, no 0-chunk


async def test_malformed_chunk_fails_an_httpx_client(sse_server: SSEServer) -> None:
    sse_server.on().events("a").sleep(0.05).malformed_chunk()
    async with httpx.AsyncClient() as client, client.stream("GET", sse_server.url) as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "data: a"
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in lines:
                pass


async def test_endless_line_meets_the_client_limit(sse_server: SSEServer) -> None:
    sse_server.on().endless_line()
    decoder = SSEDecoder(max_event_size=1 << 20)
    received = 0
    async with aiohttp.ClientSession() as session, session.get(sse_server.url) as response:
        with pytest.raises(EventTooLarge):
            async for chunk in response.content.iter_any():
                received += len(chunk)
                decoder.feed(chunk)
    assert 1 << 20 <= received < 64 << 20  # the server waited for the client, then it left


async def test_endless_line_is_bounded(sse_server: SSEServer) -> None:
    sse_server.on().endless_line(limit=300_000)
    async with aiohttp.ClientSession() as session, session.get(sse_server.url) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
        assert response.content.total_bytes == len(b"data: ") + 300_000


async def test_stall_then_the_client_times_out(sse_server: SSEServer) -> None:
    sse_server.on().events("a").stall()
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(sse_server.url) as response,
    ):
        assert await response.content.readuntil(b"\n\n") == b"data: a\n\n"
        with pytest.raises(asyncio.TimeoutError):
            await response.content.read(1)


async def test_resume_from_last_event_id_across_resets(sse_server: SSEServer) -> None:
    """An aiostreams client reconnects through three resets and loses nothing."""
    history = [ServerSentEvent(data=f"event {n}", id=str(n)) for n in range(1, 8)]
    sse_server.on("/feed", times=None).resume(history, per_connection=3)
    feed = connect(sse_server.url_for("/feed"), retry_ms=1, reconnect_on_eof=False)
    async with feed as source:
        got = [event async for event in source]
    assert [e.data for e in got] == [e.data for e in history]
    assert [r.last_event_id for r in sse_server.requests] == [None, "3", "6"]


async def test_received_waits_for_requests(sse_server: SSEServer) -> None:
    sse_server.on().stall()
    async with aiohttp.ClientSession() as session:
        reading = asyncio.ensure_future(session.get(sse_server.url))
        (request,) = await sse_server.received(1)
        assert request.method == "GET"
        response = await reading
        response.close()


def test_sync_clients_work_too(sse_server: SSEServer) -> None:
    """A blocking client in a sync test: the server runs in its own thread."""
    import urllib.request

    sse_server.on("/e").events("x")
    with urllib.request.urlopen(sse_server.url_for("/e")) as response:
        assert response.read() == b"data: x\n\n"
    assert sse_server.wait_for_requests(1)[0].path == "/e"


def test_a_failing_script_is_reported() -> None:
    with SSEServer() as server:
        server.on().send(b"data: a\n\n")
        server.on()._steps.append(lambda conn: _boom())
        import urllib.request

        with urllib.request.urlopen(server.url) as response:
            assert response.read() == b"data: a\n\n"
        with pytest.raises(ConnectionError):
            urllib.request.urlopen(server.url).read()
    assert [str(e) for e in server.errors] == ["boom"]


async def _boom() -> None:
    raise ValueError("boom")


def test_the_server_is_gone_after_stop() -> None:
    server = SSEServer()
    server.on().stall()
    port = int(server.start().rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1000)
        assert head.startswith(b"HTTP/1.1 200")
        server.stop()  # the stalled stream does not hold it up
        rest = b""
        while data := sock.recv(1000):
            rest += data
        assert b"0\r\n\r\n" not in rest  # cut, not ended
    assert server.requests[0].path == "/"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()


def test_bad_scripts_are_refused_when_written(sse_server: SSEServer) -> None:
    with pytest.raises(ValueError, match="id must not contain NUL"):
        sse_server.on().event("x", id="a\0b")
    with pytest.raises(ValueError, match="status must be"):
        sse_server.on().status(99)
    with pytest.raises(TypeError, match="send\\(\\) takes bytes"):
        sse_server.on().send(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be"):
        sse_server.on(times=0)
    with pytest.raises(ValueError, match="limit must be"):
        sse_server.on().endless_line(limit=0)
    with pytest.raises(ValueError, match="per_connection must be"):
        sse_server.on().resume([], per_connection=0)
    with pytest.raises(ValueError, match="pace must be"):
        sse_server.replay(Recording("GET", "http://h/", (), None, 200, "OK", ()), pace=-1)


@pytest.mark.anyio
async def test_works_under_anyio(sse_server: SSEServer) -> None:
    sse_server.on().events("a")
    async with connect(sse_server.url, reconnect_on_eof=False) as source:
        assert [e.data async for e in source] == ["a"]
