"""EventStream and the request layer against small real servers on loopback.

Connection accounting uses two views:

* server side, ``Tracker.active``: handlers of endless streams still running (the
  server cancels a handler when its client disconnects);
* client side, ``pool_state``: aiohttp's connector internals (``_acquired``: in
  use; ``_conns``: idle keep-alive connections).  Private attributes, but the only
  way to tell "returned to the pool" from "closed"; pinned aiohttp >= 3.9.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from support import pool_state

from aiostreams import ServerSentEvent, SSEDecoder
from aiostreams._request import HTTPRequest, open_stream
from aiostreams._session import create_session
from aiostreams._stream import DRAIN_TIMEOUT, EventStream
from aiostreams.errors import (
    ConnectError,
    ResponseValidationError,
    SDKError,
    StreamTimeout,
    UnexpectedContentType,
)
from aiostreams.models import operations, shared
from aiostreams.server import run_server

SSE = {"Content-Type": "text/event-stream"}
TRACKER = web.AppKey("tracker", dict)


async def _script(request: web.Request) -> web.StreamResponse:
    """Writes ``?n=`` events ``data: i``, one write each, then ends."""
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    for i in range(int(request.query.get("n", "3"))):
        await response.write(f"data: {i}\n\n".encode())
    return response


async def _endless(request: web.Request) -> web.StreamResponse:
    """One event every 5 ms until the client goes away."""
    tracker = request.app[TRACKER]
    tracker["active"] += 1
    try:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        i = 0
        while True:
            await response.write(f"data: {i}\n\n".encode())
            i += 1
            await asyncio.sleep(0.005)
    finally:
        tracker["active"] -= 1


async def _sentinel_then_hold(request: web.Request) -> web.StreamResponse:
    """Chat events, ``[DONE]``, one event that must never be decoded, then holds the
    connection open (like a misbehaving proxy) until the client leaves."""
    tracker = request.app[TRACKER]
    tracker["active"] += 1
    try:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b'data: {"content": "a"}\n\ndata: {"content": "b"}\n\n')
        await response.write(b"data: [DONE]\n\n")
        await response.write(b"data: not json at all\n\n")
        await asyncio.sleep(3600)
        return response
    finally:
        tracker["active"] -= 1


async def _sentinel_then_end(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    await response.write(b'data: {"content": "a"}\n\ndata: [DONE]\n\n')
    return response


async def _odd_chunks(request: web.Request) -> web.StreamResponse:
    """Events cut inside a line, inside CRLF and inside a UTF-8 sequence, one byte
    per write at the start; content type with parameters and odd case."""
    response = web.StreamResponse(headers={"Content-Type": "Text/Event-Stream; charset=UTF-8"})
    await response.prepare(request)
    body = "id: 1\r\ndata: h\u00e9llo\r\n\r\ndata: line1\ndata: line2\n\n".encode()
    for i in range(25):  # through the CRLFs and the two bytes of "\u00e9"
        await response.write(body[i : i + 1])
        await asyncio.sleep(0)
    await response.write(body[25:])
    return response


async def _json_200(request: web.Request) -> web.Response:
    return web.json_response({"not": "a stream"})


async def _teapot(request: web.Request) -> web.Response:
    return web.json_response({"message": "I'm a teapot"}, status=418)


async def _huge_error(request: web.Request) -> web.Response:
    return web.Response(status=500, body=b"x" * (1024 * 1024), content_type="text/plain")


async def _silent(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={**SSE, "Request-Id": "req-42"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    await asyncio.sleep(3600)
    return response


async def _slow_headers(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    app = web.Application()
    app[TRACKER] = {"active": 0}
    for path, handler in {
        "/script": _script,
        "/endless": _endless,
        "/sentinel-hold": _sentinel_then_hold,
        "/sentinel-end": _sentinel_then_end,
        "/odd": _odd_chunks,
        "/json": _json_200,
        "/teapot": _teapot,
        "/huge-error": _huge_error,
        "/silent": _silent,
        "/slow-headers": _slow_headers,
    }.items():
        app.router.add_get(path, handler)
    async with run_server(app) as url:
        yield url, app[TRACKER]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as session:
        yield session


async def wait_until(predicate: object, timeout: float = 2.0) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def open_raw(
    session: aiohttp.ClientSession, url: str, **kw: float
) -> EventStream[ServerSentEvent]:
    return await open_stream(session, HTTPRequest("GET", url), SSEDecoder(), **kw)  # type: ignore[arg-type]


# -- reading ----------------------------------------------------------------------------


async def test_reads_every_event_then_returns_connection_to_pool(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    stream = await open_raw(session, f"{url}/script?n=50")
    assert stream.status == 200
    assert stream.headers["Content-Type"] == "text/event-stream"
    data = [event.data async for event in stream]
    assert data == [str(i) for i in range(50)]
    assert stream.closed
    assert pool_state(session) == (0, 1)


async def test_odd_chunking_and_content_type_parameters(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    async with await open_raw(session, f"{url}/odd") as stream:
        events = [event async for event in stream]
    assert events == [
        ServerSentEvent(data="h\u00e9llo", id="1"),
        ServerSentEvent(data="line1\nline2", id="1"),
    ]
    assert stream.last_event_id == "1"


async def test_batches_hand_out_every_event_once(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    async with await open_raw(session, f"{url}/script?n=200") as stream:
        first = await stream.__anext__()
        batches = [batch async for batch in stream.batches()]
    assert all(batches)
    rest = [event.data for batch in batches for event in batch]
    assert [first.data, *rest] == [str(i) for i in range(200)]


async def test_events_of_one_chunk_are_handed_out_without_suspending(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    # An event the stream already holds is served by a coroutine that finishes on
    # its first send() (no await reached): no per-event suspension.
    async with await open_raw(session, f"{url}/script?n=100") as stream:
        await stream.__anext__()
        pending = len(stream._events) - stream._index
        assert pending > 0, "the server's writes should coalesce into one chunk"
        for _ in range(pending):
            coro = stream.__anext__()
            with pytest.raises(StopIteration):
                coro.send(None)


# -- sentinel ---------------------------------------------------------------------------


async def test_sentinel_stops_at_once_although_server_holds_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    decoder = operations.CHAT_SKIP_SENTINEL.decoder()
    stream = await open_stream(session, HTTPRequest("GET", f"{url}/sentinel-hold"), decoder)
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = [event async for event in stream]
    elapsed = loop.time() - started
    assert events == [
        shared.ChatCompletionEvent(data=shared.ChatCompletionEventData(content="a")),
        shared.ChatCompletionEvent(data=shared.ChatCompletionEventData(content="b")),
    ]
    # bounded drain (the server never ends the body), then the connection is closed
    assert elapsed < DRAIN_TIMEOUT + 1.0
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


async def test_sentinel_then_end_of_body_keeps_connection_for_reuse(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    decoder = operations.CHAT_SKIP_SENTINEL.decoder()
    stream = await open_stream(session, HTTPRequest("GET", f"{url}/sentinel-end"), decoder)
    assert len([event async for event in stream]) == 1
    assert pool_state(session) == (0, 1)


# -- releasing --------------------------------------------------------------------------


async def test_break_without_async_with_closes_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    stream = await open_raw(session, f"{url}/endless")
    async for event in stream:
        if event.data == "3":
            break
    assert stream.closed
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


async def test_leaving_async_with_closes_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    async with await open_raw(session, f"{url}/endless") as stream:
        assert (await stream.__anext__()).data == "0"
        await wait_until(lambda: tracker["active"] == 1)
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


async def test_exception_in_consumer_closes_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    stream = await open_raw(session, f"{url}/endless")

    async def consume() -> None:
        async for event in stream:
            if event.data == "2":
                raise KeyError("consumer bug")

    with pytest.raises(KeyError):
        await consume()
    assert stream.closed
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


async def test_cancellation_closes_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    stream = await open_raw(session, f"{url}/endless")
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            got_one.set()

    task = asyncio.create_task(consume())
    await got_one.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


async def test_garbage_collection_closes_connection(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, tracker = server
    stream = await open_raw(session, f"{url}/endless")
    assert (await stream.__anext__()).data == "0"
    del stream
    gc.collect()
    assert pool_state(session) == (0, 0)
    await wait_until(lambda: tracker["active"] == 0)


# -- errors -----------------------------------------------------------------------------


async def test_error_status_raises_sdk_error_with_json_message(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    with pytest.raises(SDKError) as info:
        await open_raw(session, f"{url}/teapot")
    error = info.value
    assert error.status_code == 418
    assert error.body == '{"message": "I\'m a teapot"}'
    assert "I'm a teapot" in str(error) and "/teapot" in str(error)
    assert error.raw_response is not None and error.raw_response.status == 418
    assert pool_state(session) == (0, 1)  # body read: connection reusable


async def test_huge_error_body_is_bounded(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    with pytest.raises(SDKError) as info:
        await open_raw(session, f"{url}/huge-error")
    assert info.value.status_code == 500
    assert info.value.body.endswith("...[truncated]")
    assert len(info.value.body) < 100_000


async def test_wrong_content_type_names_it(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    with pytest.raises(UnexpectedContentType) as info:
        await open_raw(session, f"{url}/json")
    assert "application/json" in str(info.value)
    assert "text/event-stream" in str(info.value)
    assert info.value.status_code == 200
    assert info.value.body == '{"not": "a stream"}'


async def test_connection_refused_names_the_url(session: aiohttp.ClientSession) -> None:
    async with run_server(web.Application()) as url:
        pass  # the port is free again: nothing listens there now
    with pytest.raises(ConnectError) as info:
        await open_raw(session, f"{url}/eventstreams/json")
    assert info.value.url == f"{url}/eventstreams/json"
    assert f"{url}/eventstreams/json" in str(info.value)
    assert info.value.__cause__ is not None  # the aiohttp error, for debugging


async def test_idle_timeout_mid_stream(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    stream = await open_raw(session, f"{url}/silent", timeout=0.2)
    assert stream.request_id == "req-42"
    assert (await stream.__anext__()).data == "first"
    with pytest.raises(StreamTimeout) as info:
        await stream.__anext__()
    assert info.value.kind == "idle"
    assert info.value.seconds == 0.2
    assert f"{url}/silent" in str(info.value)
    assert stream.closed
    assert pool_state(session) == (0, 0)


async def test_timeout_waiting_for_headers(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    url, _ = server
    with pytest.raises(StreamTimeout) as info:
        await open_raw(session, f"{url}/slow-headers", timeout=0.2)
    assert f"{url}/slow-headers" in str(info.value)


async def test_connection_lost_mid_stream_is_connect_error(
    session: aiohttp.ClientSession,
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b"id: 7\ndata: one\n\n")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    app = web.Application()
    app.router.add_get("/drop", drop)
    async with run_server(app) as url:
        stream = await open_raw(session, f"{url}/drop")
        assert (await stream.__anext__()).data == "one"
        with pytest.raises(ConnectError) as info:
            await stream.__anext__()
    assert "lost" in str(info.value) and "'7'" in str(info.value)
    assert stream.closed


async def test_connect_timeout_of_a_callers_session_without_sock_connect(
    server: tuple[str, dict[str, int]],
) -> None:
    """A caller's session may bound connecting with ``connect=`` only (which also
    covers waiting for a free pooled connection): still a ConnectError naming it."""
    url, _ = server
    timeout = aiohttp.ClientTimeout(total=None, connect=0.2)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        held = await open_raw(session, f"{url}/endless")  # the only connection
        with pytest.raises(ConnectError) as info:
            await open_raw(session, f"{url}/script")
        await held.aclose()
    assert "timed out after 0.2 s while connecting" in str(info.value)
    assert info.value.url == f"{url}/script"


# -- proxies ------------------------------------------------------------------------------


async def test_trust_env_sends_through_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that cannot resolve (``.invalid``) is reachable only via the proxy."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.host} {request.path}")
        return await _script(request)

    app = web.Application()
    app.router.add_get("/stream", proxy)
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with run_server(app) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("http_proxy", proxy_url)
        async with (
            create_session(trust_env=True) as session,
            await open_raw(session, "http://sse.invalid/stream?n=2") as stream,
        ):
            assert [event.data async for event in stream] == ["0", "1"]
        assert seen == ["sse.invalid /stream"]
        async with create_session() as session:  # trust_env off: the proxy is ignored
            with pytest.raises(ConnectError, match="sse.invalid"):
                await open_raw(session, "http://sse.invalid/stream?n=2")
    assert len(seen) == 1


async def test_one_bad_event_raises_and_the_stream_goes_on(session: aiohttp.ClientSession) -> None:
    async def bad_middle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(
            b'data: {"content": "a"}\n\ndata: {"oops": 1}\n\ndata: {"content": "b"}\n\n'
        )
        return response

    app = web.Application()
    app.router.add_get("/bad", bad_middle)
    async with run_server(app) as url:
        decoder = operations.CHAT_SKIP_SENTINEL.decoder()
        stream = await open_stream(session, HTTPRequest("GET", f"{url}/bad"), decoder)
        async with stream:
            got = []
            with pytest.raises(ResponseValidationError) as info:
                while True:
                    got.append((await anext(stream)).data.content)
            assert got == ["a"]
            assert info.value.event.data == '{"oops": 1}'
            assert not stream.closed
            assert [event.data.content async for event in stream] == ["b"]
    assert pool_state(session) == (0, 1)


async def test_a_bad_first_event_is_the_first_event(session: aiohttp.ClientSession) -> None:
    """first_event_timeout bounds the wait for the first event, even one that fails
    validation: after it, the stream waits as without that bound (no event_timeout)."""

    async def bad_then_slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b'data: {"oops": 1}\n\n')
        await asyncio.sleep(0.5)
        await response.write(b'data: {"content": "b"}\n\n')
        return response

    app = web.Application()
    app.router.add_get("/bad", bad_then_slow)
    async with run_server(app) as url:
        response = await session.get(f"{url}/bad")
        decoder = operations.CHAT_SKIP_SENTINEL.decoder()
        async with EventStream(response, decoder, first_event_timeout=0.3) as stream:
            with pytest.raises(ResponseValidationError):
                await anext(stream)
            assert (await anext(stream)).data.content == "b"


@pytest.mark.parametrize("collect", [False, True], ids=["refcount", "cyclic-gc"])
async def test_a_new_loop_goes_on_after_a_bad_event(
    session: aiohttp.ClientSession, collect: bool
) -> None:
    # async for → ResponseValidationError → a new async for must see the rest, even
    # when the first loop's iterator is only collected (by the GC) during the second.
    async def bad_middle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b'data: {"content": "a"}\n\ndata: {"oops": 1}\n\n')
        await response.write(b'data: {"content": "b"}\n\ndata: {"content": "c"}\n\n')
        return response

    app = web.Application()
    app.router.add_get("/bad", bad_middle)
    async with run_server(app) as url:
        decoder = operations.CHAT_SKIP_SENTINEL.decoder()
        stream = await open_stream(session, HTTPRequest("GET", f"{url}/bad"), decoder)
        got: list[str] = []
        errors = 0
        async with stream:
            while not stream.closed:
                try:
                    async for event in stream:
                        got.append(event.data.content)
                        if collect:
                            gc.collect()
                except ResponseValidationError:  # noqa: PERF203 - the pattern under test
                    errors += 1
        assert got == ["a", "b", "c"]
        assert errors == 1


async def test_a_stream_made_from_a_bare_response_hides_url_credentials(
    server: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    """EventStream(response, decoder) with no url= shows the response's URL without
    user:password@ or query (a token there would otherwise reach logs via repr)."""
    url, _ = server
    secret_url = url.replace("http://", "http://alice:s3cret@") + "/script?n=1&token=t0k"
    response = await session.get(secret_url)
    stream = EventStream(response, SSEDecoder())
    async with stream:
        assert [event.data async for event in stream] == ["0"]
    shown = f"{stream!r} {stream.url}"
    assert "s3cret" not in shown and "alice" not in shown and "t0k" not in shown
    assert "/script" in stream.url
