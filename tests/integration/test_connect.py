"""``aiostreams.connect()`` against real loopback servers: resume, replay, ends, safety.

Each server counts the requests it received (and what they carried); each test
counts what the client received.  Servers send ``retry: 0`` (or ``/load/resumable``'s
10 ms) so reconnects are immediate; every test also caps ``max_reconnects``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web

import aiostreams
from aiostreams import EventSchema, Reconnect, ServerSentEvent, SSEDecoder, connect
from aiostreams._connect import EventSource, _ResumeFilter
from aiostreams._request import HTTPRequest
from aiostreams.errors import (
    ConnectError,
    HTTPStatusError,
    SDKError,
    StreamTimeout,
    UnexpectedContentType,
)
from aiostreams.models import shared
from aiostreams.sdk._operations import CHAT
from aiostreams.server import run_server

SSE = {"Content-Type": "text/event-stream"}
SECRET = "Bearer sk-very-secret-0123456789"


@dataclass
class Seen:
    """What a test server received."""

    last_event_ids: list[str | None] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.last_event_ids)


SEEN = web.AppKey("seen", Seen)


def _record(request: web.Request) -> Seen:
    seen = request.app[SEEN]
    seen.last_event_ids.append(request.headers.get("Last-Event-ID"))
    seen.authorization.append(request.headers.get("Authorization"))
    return seen


Handler = Callable[[web.Request], "asyncio.Future[web.StreamResponse] | object"]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    """``url, seen = await serve(handler)``: an app with one ``/s`` route."""
    stack: list[object] = []

    async def start(handler: Callable[[web.Request], object]) -> tuple[str, Seen]:
        app = web.Application()
        app[SEEN] = Seen()
        app.router.add_route("*", "/s", handler)  # type: ignore[arg-type]
        context = run_server(app)
        url = await context.__aenter__()
        stack.append(context)
        return f"{url}/s", app[SEEN]

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)  # type: ignore[attr-defined]


def _events(first: int, last: int) -> bytes:
    return b"".join(b"id: %d\ndata: e%d\n\n" % (i, i) for i in range(first, last + 1))


async def _one_event_then_hold(request: web.Request) -> web.StreamResponse:
    """Send event 1, then keep the connection open (until the client leaves)."""
    _record(request)
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    await response.write(_events(1, 1))
    await asyncio.sleep(3600)
    return response


async def _collect(source: EventSource[ServerSentEvent]) -> list[str]:
    async with source:
        return [event.data async for event in source]


# -- resume with Last-Event-ID ----------------------------------------------------------


@pytest.mark.parametrize("drop_after", [1, 7, 33, 99])
async def test_every_event_once_across_drops(
    eventstreams_server: str, drop_after: int, eventstreams_requests: object
) -> None:
    reconnects: list[Reconnect] = []
    source = connect(
        f"{eventstreams_server}/load/resumable?n=100&drop_after={drop_after}",
        on_reconnect=reconnects.append,
        max_reconnects=3,
        reconnect_on_eof=False,
    )
    async with source:
        ids = [int(event.id) async for event in source]
    assert ids == list(range(1, 101))  # all T, once, in order
    drops = -(-100 // drop_after) - 1  # connections that were cut
    assert source.connections == drops + 1
    assert [r.reason for r in reconnects] == ["dropped"] * drops
    # The server's ``retry: 10`` is the delay; each resume names the last id delivered.
    assert all(r.delay == 0.01 and r.attempt == 1 for r in reconnects)
    assert [r.last_event_id for r in reconnects] == [
        str(drop_after * k) for k in range(1, drops + 1)
    ]
    sent = [r.headers.get("Last-Event-ID") for r in eventstreams_requests]  # type: ignore[attr-defined]
    assert sent == [None] + [str(drop_after * k) for k in range(1, drops + 1)]
    assert source.replayed == 0 and source.closed


async def test_typed_events_resume_without_an_id_field(eventstreams_server: str) -> None:
    class Token(msgspec.Struct):
        data: dict[str, str]

    schema: EventSchema[Token] = EventSchema(Token)
    source = connect(
        f"{eventstreams_server}/load/resumable?n=30&drop_after=4",
        decoder=schema,
        max_reconnects=2,
        reconnect_on_eof=False,
    )
    async with source:
        tokens = [event.data["content"] async for event in source]
    assert tokens == [f"tok{i}" for i in range(1, 31)]
    assert source.reconnects == 7


async def test_clean_eof_reconnects_like_event_source(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        if seen.requests == 1:
            await response.write(b"retry: 0\n" + _events(1, 3))
        elif seen.requests == 2:
            await response.write(_events(4, 5))
        return response  # third request: an empty body

    url, seen = await serve(handler)  # type: ignore[misc]
    reasons: list[str] = []
    source = connect(url, max_reconnects=1, on_reconnect=lambda r: reasons.append(r.reason))
    assert await _collect(source) == ["e1", "e2", "e3", "e4", "e5"]
    # eof, eof, then the third (empty) connection is a failure in a row: gave up quietly.
    assert reasons == ["eof", "eof"]
    assert seen.last_event_ids == [None, "3", "5"]


async def test_reconnect_on_eof_false_ends_at_eof(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(_events(1, 2))
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    assert await _collect(connect(url, reconnect_on_eof=False)) == ["e1", "e2"]
    assert seen.requests == 1


# -- replays after a reconnect ----------------------------------------------------------


def _replaying_server(mode: str, total: int, cut: int) -> Callable[[web.Request], object]:
    """Drops every connection after ``cut`` new events; replays per ``mode``:
    ``"start"`` from event 1, ``"inclusive"`` from the Last-Event-ID itself."""

    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        last = int(request.headers.get("Last-Event-ID") or 0)
        first = 1 if mode == "start" else max(last, 1)
        end = min(total, last + cut)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b"retry: 0\n\n" + _events(first, end))
        if end < total:
            assert request.transport is not None
            await asyncio.sleep(0.01)
            request.transport.abort()
        return response

    return handler


@pytest.mark.parametrize("mode", ["start", "inclusive"])
async def test_replayed_events_are_skipped_once(serve: Callable[..., object], mode: str) -> None:
    url, seen = await serve(_replaying_server(mode, total=40, cut=9))  # type: ignore[misc]
    source = connect(url, max_reconnects=2, reconnect_on_eof=False)
    assert await _collect(source) == [f"e{i}" for i in range(1, 41)]
    assert seen.requests == 5
    # Replays skipped: from the start 9+18+27+36 events, inclusive one per reconnect.
    assert source.replayed == (9 + 18 + 27 + 36 if mode == "start" else 4)


async def test_retry_inside_a_skipped_replay_sets_the_reconnection_time(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        if seen.requests == 1:
            await response.write(b"retry: 50\n" + _events(1, 3))
        elif seen.requests == 2:  # replays from the start, and now asks for 7 ms
            await response.write(b"retry: 7\n" + _events(1, 2))
        else:
            await response.write(_events(1, 4))
            return response
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    infos: list[Reconnect] = []
    source = connect(url, on_reconnect=infos.append, max_reconnects=3, reconnect_on_eof=False)
    assert await asyncio.wait_for(_collect(source), 5) == ["e1", "e2", "e3", "e4"]
    assert infos[0].delay == 0.05
    # conn 2 delivered nothing (all replayed): backoff from its 7 ms, d = 14 ms
    assert 0.007 <= infos[1].delay <= 0.014
    assert seen.last_event_ids == [None, "3", "3"] and source.replayed == 2 + 3


async def test_no_deduplication_by_id_outside_a_reconnect(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        # Non-unique ids, and the same (id, data) twice: all are events.
        await response.write(b"id: a\ndata: x\n\nid: a\ndata: x\n\ndata: y\n\nid: a\ndata: z\n\n")
        return response

    url, _ = await serve(handler)  # type: ignore[misc]
    assert await _collect(connect(url, reconnect_on_eof=False)) == ["x", "x", "y", "z"]


async def test_compliant_resume_with_a_repeated_first_id_is_not_a_replay(
    serve: Callable[..., object],
) -> None:
    """The first event after a reconnect carries an id no earlier connection began
    with and that is not the Last-Event-ID: nothing is skipped."""

    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        if seen.requests == 1:
            await response.write(
                b"retry: 0\nid: b1\ndata: 1\n\nid: b1\ndata: 2\n\nid: b2\ndata: 3\n\n"
            )
        elif seen.requests == 2:
            await response.write(b"id: b3\ndata: 4\n\nid: b2\ndata: 5\n\n")
        return response  # then: an empty body

    url, _ = await serve(handler)  # type: ignore[misc]
    source = connect(url, max_reconnects=1)
    assert await _collect(source) == ["1", "2", "3", "4", "5"]
    assert source.replayed == 0


def _feed_filter(stream: bytes, cuts: list[int], resumed: str, delivered: bytes) -> list[str]:
    """Feed ``stream`` (cut at ``cuts``) through the replay check of a connection
    that follows one which delivered the bytes ``delivered``."""
    first: _ResumeFilter[ServerSentEvent] = _ResumeFilter(SSEDecoder(), {}, (1 << 20, None))
    first.feed(delivered)
    digests = dict.fromkeys(first.harvest())
    flt: _ResumeFilter[ServerSentEvent] = _ResumeFilter(
        SSEDecoder(last_event_id=resumed), digests, (1 << 20, None)
    )
    out: list[str] = []
    bounds = [0, *sorted(cuts), len(stream)]
    for a, b in itertools.pairwise(bounds):
        out += [e.data for e in flt.feed(stream[a:b])]
    flt.close()
    return out


def test_replay_check_is_independent_of_chunking() -> None:
    """Replay from the start with CRLF line endings, cut at every byte."""
    stream = b"retry: 0\r\n\r\n" + _events(1, 6).replace(b"\n", b"\r\n")
    expected = ["e5", "e6"]
    delivered = _events(1, 4)
    for cut in range(len(stream) + 1):
        assert _feed_filter(stream, [cut], "4", delivered) == expected, cut
    rng = random.Random(7)
    for _ in range(200):
        cuts = rng.sample(range(len(stream) + 1), 5)
        assert _feed_filter(stream, cuts, "4", delivered) == expected
    # Not a replay (same ids, other data: a restarted server): every event is delivered.
    other = _events(1, 4).replace(b"data: e", b"data: x")
    assert _feed_filter(stream, [3, 20], "4", other) == [f"e{i}" for i in range(1, 7)]


# -- what ends a stream for good --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (204, None),
        (400, HTTPStatusError),
        (401, HTTPStatusError),
        (404, HTTPStatusError),
        (501, HTTPStatusError),
    ],
)
async def test_status_that_ends_for_good(
    serve: Callable[..., object], status: int, error: type[Exception] | None
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        return web.Response(status=status, text="" if status == 204 else "no")

    url, seen = await serve(handler)  # type: ignore[misc]
    source = connect(url, max_reconnects=3)
    if error is None:
        assert await _collect(source) == []
    else:
        with pytest.raises(error) as info:
            await _collect(source)
        assert getattr(info.value, "status_code", None) == status
    assert seen.requests == 1 and source.closed and source.reconnects == 0


async def test_wrong_content_type_ends_for_good(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        return web.Response(text="<html>login</html>", content_type="text/html")

    url, seen = await serve(handler)  # type: ignore[misc]
    with pytest.raises(UnexpectedContentType) as info:
        await _collect(connect(url, max_reconnects=3))
    assert "text/html" in str(info.value)
    assert seen.requests == 1


async def test_retryable_statuses_back_off_then_succeed(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        if seen.requests == 1:
            return web.Response(status=500, text="boom")
        if seen.requests == 2:
            return web.Response(status=503, headers={"Retry-After": "0"}, text="later")
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(_events(1, 2))
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    infos: list[Reconnect] = []
    source = connect(
        url, retry_ms=20, max_retry_ms=50, on_reconnect=infos.append, reconnect_on_eof=False
    )
    assert await _collect(source) == ["e1", "e2"]
    assert seen.requests == 3
    assert [(r.reason, r.attempt) for r in infos] == [("status", 1), ("status", 2)]
    assert infos[0].delay == 0.02  # first failure: the reconnection time itself
    assert 0.02 <= infos[1].delay <= 0.04  # then jittered backoff: [d/2, d], d = 20 ms * 2
    assert isinstance(infos[1].error, HTTPStatusError) and infos[1].error.status_code == 503


async def test_backoff_is_capped_and_max_reconnects_raises_the_last_error() -> None:
    async with run_server(web.Application()) as url:
        pass  # nothing listens there any more
    infos: list[Reconnect] = []

    async def on_reconnect(info: Reconnect) -> None:  # an async callback is awaited
        infos.append(info)

    source = connect(
        f"{url}/s", retry_ms=4, max_retry_ms=10, max_reconnects=4, on_reconnect=on_reconnect
    )
    with pytest.raises(ConnectError) as info:
        await _collect(source)
    assert [r.attempt for r in infos] == [1, 2, 3, 4]
    assert all(r.reason == "connect" for r in infos)
    assert infos[0].delay == 0.004
    for r in infos[1:]:  # d = min(4 ms * 2**(n-1), 10 ms), jitter in [d/2, d]
        ceiling = min(0.004 * 2 ** (r.attempt - 1), 0.010)
        assert ceiling / 2 <= r.delay <= ceiling
    assert url in str(info.value) and source.closed


async def test_sentinel_and_until_end_without_reconnecting(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b'data: {"content": "a"}\n\ndata: [DONE]\n\ndata: never\n\n')
        await asyncio.sleep(3600)  # holds the connection, as a misbehaving proxy would
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    async with connect(url, decoder=CHAT.schema, max_reconnects=2) as source:
        events = [event async for event in source]
    assert events == [
        shared.ChatCompletionEvent(data=shared.ChatCompletionEventData(content="a")),
        shared.SentinelEvent(data="[DONE]"),  # CHAT yields its sentinel, then stops
    ]
    async with connect(url, until=lambda e: e.data.startswith("{"), max_reconnects=2) as raw:
        assert [e.data async for e in raw] == ['{"content": "a"}']
    assert seen.requests == 2 and source.closed and raw.closed


async def test_aclose_stops_reconnecting(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        return web.Response(status=503)

    url, seen = await serve(handler)  # type: ignore[misc]
    waiting = asyncio.Event()
    async with aiohttp.ClientSession() as session:  # iterated without `async with`: lazy
        source = connect(
            url, session=session, retry_ms=10_000, on_reconnect=lambda _: waiting.set()
        )
        task = asyncio.ensure_future(source.__anext__())
        await asyncio.wait_for(waiting.wait(), 5)  # the 503 came; 10 s of backoff begin
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await source.aclose()
        with pytest.raises(StopAsyncIteration):
            await source.__anext__()
    assert seen.requests == 1


async def test_aclose_from_another_task_ends_the_reader_without_a_reconnect(
    serve: Callable[..., object],
) -> None:
    url, seen = await serve(_one_event_then_hold)  # type: ignore[misc]
    infos: list[Reconnect] = []
    async with connect(url, retry_ms=10_000, on_reconnect=infos.append) as source:
        assert (await source.__anext__()).data == "e1"
        reader = asyncio.ensure_future(source.__anext__())
        await anyio.wait_all_tasks_blocked()  # the reader waits for bytes
        await source.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 2)  # not after the 10 s reconnection time
    assert infos == [] and source.reconnects == 0 and seen.requests == 1


async def test_aclose_from_another_task_ends_the_wait_before_a_reconnect(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        return web.Response(status=503, headers={"Retry-After": "3600"})

    url, seen = await serve(handler)  # type: ignore[misc]
    waiting = asyncio.Event()
    async with aiohttp.ClientSession() as session:  # iterated without `async with`: lazy
        source = connect(url, session=session, on_reconnect=lambda _: waiting.set())
        reader = asyncio.ensure_future(source.__anext__())
        await asyncio.wait_for(waiting.wait(), 5)  # an hour's wait begins
        await anyio.wait_all_tasks_blocked()  # the reader is inside it
        await source.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 2)
    assert seen.requests == 1


async def test_event_timeout_reconnects(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        if seen.requests == 1:
            await response.write(b"retry: 0\n" + _events(1, 1))
            for _ in range(200):  # heartbeats only: bytes, no event
                await response.write(b": ping\n\n")
                await asyncio.sleep(0.02)
        else:
            await response.write(_events(2, 3))
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    infos: list[Reconnect] = []
    source = connect(
        url, event_timeout=0.3, on_reconnect=infos.append, max_reconnects=1, reconnect_on_eof=False
    )
    assert await _collect(source) == ["e1", "e2", "e3"]
    assert [r.reason for r in infos] == ["timeout"]
    error = infos[0].error
    assert isinstance(error, StreamTimeout) and error.kind == "event"
    assert error.last_event_id == "1"
    assert seen.last_event_ids == [None, "1"]


async def test_first_event_timeout_covers_slow_headers(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        await asyncio.sleep(3600)
        return web.Response()

    url, seen = await serve(handler)  # type: ignore[misc]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StreamTimeout) as info:
        await _collect(connect(url, first_event_timeout=0.2, max_reconnects=1, retry_ms=0))
    assert info.value.kind == "first_event"
    assert loop.time() - started < 5  # two attempts of 0.2 s, never a hang
    assert seen.requests == 2


async def test_iterating_without_async_with_or_session_is_refused() -> None:
    source = connect("http://127.0.0.1:9/s")
    with pytest.raises(RuntimeError, match="async with"):
        await source.__anext__()


async def test_with_a_session_the_caller_owns(eventstreams_server: str) -> None:
    async with aiostreams.create_session() as session:
        source = connect(
            f"{eventstreams_server}/load/resumable?n=5", session=session, reconnect_on_eof=False
        )
        assert [e.id async for e in source] == ["1", "2", "3", "4", "5"]
        assert not session.closed


async def test_an_sdk_operation_through_connect(eventstreams_server: str) -> None:
    """How an SDK operation opts in: build its request, decode with its schema."""
    async with aiostreams.SDK(server_url=eventstreams_server) as sdk:
        request = sdk.build_request(CHAT, {"prompt": "Hi"})
        source = connect(
            request.url,
            method=request.method,
            headers=request.headers,
            params=request.params,
            body=request.body,
            decoder=CHAT.schema,
            session=sdk.session,
        )
        events = [event async for event in source]
    assert events[-1] == shared.SentinelEvent(data="[DONE]")
    assert source.reconnects == 0 and source.closed


# -- safety: credentials never shown ----------------------------------------------------


async def _error_of(source: EventSource[ServerSentEvent]) -> BaseException:
    with pytest.raises(Exception) as info:
        await _collect(source)
    return info.value


async def test_authorization_never_in_errors_or_reprs(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen = _record(request)
        kind = request.query.get("kind")
        if kind == "401":
            return web.json_response({"message": "bad key"}, status=401)
        if kind == "html":
            return web.Response(text="<html/>", content_type="text/html")
        if kind == "huge":
            response = web.StreamResponse(headers=SSE)
            await response.prepare(request)
            await response.write(b"data: " + b"x" * 5000)
            await asyncio.sleep(3600)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b"id: 1\ndata: one\n\n")
        await asyncio.sleep(3600 if kind == "stall" else 0)
        assert request.transport is not None and seen.requests
        request.transport.abort()
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    headers = {"Authorization": SECRET}
    errors: list[BaseException] = [
        await _error_of(connect(f"{url}?kind=401", headers=headers)),
        await _error_of(connect(f"{url}?kind=html", headers=headers)),
        await _error_of(connect(f"{url}?kind=huge", headers=headers, max_line_length=1000)),
        await _error_of(connect(f"{url}?kind=drop", headers=headers, max_reconnects=0)),
        await _error_of(
            connect(f"{url}?kind=stall", headers=headers, idle_timeout=0.2, max_reconnects=0)
        ),
        await _error_of(
            connect(f"{url}?kind=stall", headers=headers, event_timeout=0.2, max_reconnects=0)
        ),
    ]
    assert [type(e).__name__ for e in errors] == [
        "HTTPStatusError",  # connect(): not the SDK's name
        "UnexpectedContentType",
        "LineTooLong",
        "StreamInterrupted",  # a ConnectError: the server was reached, then dropped
        "StreamTimeout",
        "StreamTimeout",
    ]
    assert all(a == SECRET for a in seen.authorization)  # it was sent every time
    source = connect(url, headers=headers, params={"token": "q-secret"})
    async with source:
        await source.__anext__()
        shown = [repr(source), repr(source.stream), repr(source.request), str(source.request)]
    for text in shown + [s for e in errors for s in (str(e), repr(e), str(e.__cause__))]:
        assert "sk-very-secret" not in text and "q-secret" not in text, text


async def test_credentials_in_the_url_are_sent_but_never_shown(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        if request.query.get("kind") == "401":
            return web.Response(status=401, text="who are you?")
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(_events(1, 1))
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    with_user = url.replace("http://", "http://alice:pw%2Dsecret@")
    source = connect(with_user, reconnect_on_eof=False)
    async with source:
        assert (await source.__anext__()).data == "e1"
        shown = [repr(source), repr(source.stream), repr(source.request), source.request.target]
    error = await _error_of(connect(f"{with_user}?kind=401", max_reconnects=0))
    assert isinstance(error, HTTPStatusError) and error.status_code == 401
    assert seen.authorization == ["Basic " + base64.b64encode(b"alice:pw-secret").decode()] * 2
    for text in [*shown, str(error), repr(error)]:
        assert "pw-secret" not in text and "pw%2Dsecret" not in text and "alice" not in text, text
    with pytest.raises(ValueError, match="not both"):
        connect(with_user, headers={"authorization": SECRET})


async def test_sdk_api_key_never_in_errors_or_reprs(eventstreams_app: web.Application) -> None:
    async with (
        run_server(eventstreams_app) as url,
        aiostreams.SDK(server_url=url, security=shared.Security(api_key_auth=SECRET)) as sdk,
    ):
        stream = await sdk.eventstreams.json()
        shown = [repr(sdk), repr(stream), repr(sdk.eventstreams.json)]
        await stream.aclose()
        with pytest.raises(SDKError) as info:  # a 404 under a wrong server path
            await sdk.eventstreams.json(server_url=f"{url}/nope")
    with pytest.raises(ConnectError) as refused:
        async with aiostreams.SDK(server_url=url, security={"api_key_auth": SECRET}) as sdk:
            await sdk.eventstreams.json()
    for text in [*shown, str(info.value), repr(info.value), str(refused.value)]:
        assert "sk-very-secret" not in text, text


async def test_cross_origin_redirect_drops_authorization_same_origin_keeps_it() -> None:
    """aiohttp's rule: a redirect to another origin (scheme, host, port) drops the
    ``Authorization`` header; within the origin it is kept.  ``connect`` follows it."""
    seen: dict[str, list[str | None]] = {"a": [], "b": []}

    def app_for(name: str, target: Callable[[], str]) -> web.Application:
        async def redirect(request: web.Request) -> web.StreamResponse:
            seen[name].append(request.headers.get("Authorization"))
            raise web.HTTPFound(target())

        async def stream(request: web.Request) -> web.StreamResponse:
            seen[name].append(request.headers.get("Authorization"))
            response = web.StreamResponse(headers=SSE)
            await response.prepare(request)
            await response.write(b"data: here\n\n")
            return response

        app = web.Application()
        app.router.add_get("/away", redirect)
        app.router.add_get("/stream", stream)
        return app

    urls: dict[str, str] = {}
    async with (
        run_server(app_for("b", lambda: "")) as urls["b"],
        run_server(app_for("a", lambda: f"{urls['b']}/stream")) as urls["a"],
    ):
        assert urls["a"].rsplit(":", 1)[1] != urls["b"].rsplit(":", 1)[1]  # other port
        headers = {"Authorization": SECRET}
        away = connect(f"{urls['a']}/away", headers=headers, reconnect_on_eof=False)
        assert await _collect(away) == ["here"]
        assert seen == {"a": [SECRET], "b": [None]}  # dropped at the origin change
        # Same origin: B redirects to its own /stream, the header stays.
        seen["b"].clear()
        b_app_redirect = f"{urls['b']}/stream"
        same = connect(b_app_redirect, headers=headers, reconnect_on_eof=False)
        assert await _collect(same) == ["here"]
        assert seen["b"] == [SECRET]


async def test_query_token_not_in_a_redirect_loop_error(serve: Callable[..., object]) -> None:
    """aiohttp's TooManyRedirects names the URL it stopped at, query included."""

    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        raise web.HTTPFound("/s?token=q-secret")

    url, _ = await serve(handler)  # type: ignore[misc]
    error = await _error_of(connect(f"{url}?token=q-secret", max_reconnects=0))
    assert isinstance(error, ConnectError) and "TooManyRedirects" in str(error)
    assert f"{url}" in str(error)
    assert "q-secret" not in str(error) and "q-secret" not in repr(error)


def test_request_repr_has_no_headers() -> None:
    request = HTTPRequest("GET", "http://h/s", {"Authorization": SECRET}, {"k": "q-secret"})
    assert "sk-very-secret" not in repr(request) and "q-secret" not in repr(request)


def test_connect_refuses_contradictory_options() -> None:
    with pytest.raises(TypeError, match="body= or json="):
        connect("http://h/s", body=b"x", json={"a": 1})
    with pytest.raises(ValueError, match="max_reconnects"):
        connect("http://h/s", max_reconnects=-1)
    with pytest.raises(ValueError, match="first_event_timeout"):
        connect("http://h/s", first_event_timeout=0)


async def test_a_bad_event_timeout_is_refused_before_any_request(
    serve: Callable[..., object],
) -> None:
    """Not at the first event, after a request (whose connection was then left open)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(_events(1, 1))
        return response

    url, seen = await serve(handler)  # type: ignore[misc]
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="event_timeout"):
            async with connect(url, event_timeout=bad) as source:
                await source.__anext__()
    assert seen.requests == 0


async def test_a_decoder_that_cannot_be_made_releases_the_connection(
    serve: Callable[..., object],
) -> None:
    def broken(last_event_id: str) -> SSEDecoder:
        raise RuntimeError("the caller's decoder factory failed")

    url, seen = await serve(_one_event_then_hold)  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_event_size"):
        connect(url, max_event_size=0)  # refused before any request
    async with aiostreams.create_session() as session:
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        source = connect(url, session=session, decoder=broken)
        with pytest.raises(RuntimeError, match="factory failed"):
            await source.__anext__()
        assert source.closed and not connector._acquired  # the response was closed
    assert seen.requests == 1


async def test_json_body_and_query_string(serve: Callable[..., object]) -> None:
    got: list[tuple[str, dict[str, str], bytes, str | None]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        got.append(
            (
                request.method,
                dict(request.query),
                await request.read(),
                request.headers.get("Content-Type"),
            )
        )
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b"data: ok\n\n")
        return response

    url, _ = await serve(handler)  # type: ignore[misc]
    source = connect(
        f"{url}?a=1", method="post", params={"b": "2"}, json={"x": 1}, reconnect_on_eof=False
    )
    assert await _collect(source) == ["ok"]
    assert got == [("POST", {"a": "1", "b": "2"}, b'{"x":1}', "application/json")]
    assert "?a=1" not in repr(source)


async def test_a_repeated_query_parameter_is_sent_as_given(serve: Callable[..., object]) -> None:
    got: list[list[tuple[str, str]]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        _record(request)
        got.append(list(request.query.items()))
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b"data: ok\n\n")
        return response

    url, _ = await serve(handler)  # type: ignore[misc]
    source = connect(f"{url}?topic=a&topic=b&x=1", params={"x": "2"}, reconnect_on_eof=False)
    assert await _collect(source) == ["ok"]
    assert got == [[("topic", "a"), ("topic", "b"), ("x", "2")]]  # params= still replaces


async def test_redirect_session_is_closed_by_aiohttp_session(
    eventstreams_server: str,
) -> None:
    # An owned session is closed at the end of ``async with`` (no "Unclosed" warning,
    # which filterwarnings=error would turn into a failure).
    source = connect(f"{eventstreams_server}/load/resumable?n=2", reconnect_on_eof=False)
    async with source:
        session = source._session
        assert isinstance(session, aiohttp.ClientSession)
        assert [e.id async for e in source] == ["1", "2"]
    assert session.closed
