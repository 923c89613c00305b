"""Fault injection: hostile or broken servers, byte-exact, on loopback.

``RawServer`` is ``asyncio.start_server`` speaking just enough HTTP/1.1 (chunked
bodies) for each fault to be exactly the bytes written, cut exactly where the test
says.  It counts connections, the ``Last-Event-ID`` of each request, the complete
events and the bytes it sent; each test counts what the client received and checks
the documented outcome, a memory bound where data is unbounded, and (through
pytest-timeout and bounded loops) that nothing hangs.
"""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from aiostreams import ServerSentEvent, SSEDecoder, connect, create_session
from aiostreams._connect import EventSource
from aiostreams._request import HTTPRequest, send
from aiostreams._stream import EventStream
from aiostreams.errors import (
    ConnectError,
    EventTooLarge,
    HTTPStatusError,
    LineTooLong,
    StreamInterrupted,
    StreamTimeout,
    UnexpectedContentType,
)

MiB = 1024 * 1024
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (the framing of a chunked body)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


@dataclass
class RawServer:
    """``script(server, writer, last_event_id, connection_number)`` writes each response."""

    script: Callable[[RawServer, asyncio.StreamWriter, str, int], Awaitable[None]]
    connections: int = 0
    last_event_ids: list[str | None] = field(default_factory=list)
    events_sent: int = 0
    bytes_sent: int = 0
    url: str = ""
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)  # stalls last until this

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)  # stalling scripts are cancelled at teardown
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            self.connections += 1
            self.last_event_ids.append(headers.get("Last-Event-ID"))
            await self.script(self, writer, headers.get("Last-Event-ID", ""), self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left: that ends a fault, it is not a server error
        finally:
            writer.close()

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.bytes_sent += len(data)
        await writer.drain()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[tuple[asyncio.Server, RawServer]] = []

    async def start(script: Callable[..., Awaitable[None]]) -> RawServer:
        raw = RawServer(script)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append((server, raw))
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
        return raw

    yield start
    for server, raw in servers:
        server.close()
        raw.stopped.set()
        await asyncio.wait_for(asyncio.gather(*raw.handlers, return_exceptions=True), 10)
        await server.wait_closed()


async def abort_after_flush(writer: asyncio.StreamWriter) -> None:
    """Reset the TCP connection once what was written has left the process."""
    transport = writer.transport
    for _ in range(1000):  # bounded: at most ~5 s
        if not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.005)
    transport.abort()


def sse_event(i: int) -> bytes:
    return b"id: %d\ndata: e%d\n\n" % (i, i)


# -- the server kills the TCP connection after K of T events ----------------------------

T = 60

#: One cut per connection before the last: (complete events, extra bytes of the next event).
#: Extra bytes > 0 cut inside an event; len(event) - 1 cuts between its two newlines.
CUT_PLANS = {
    "after K events": [(1, 0), (10, 0), (25, 0)],
    "inside an event": [(3, 4), (7, 9), (1, 1)],
    "between the two newlines": [(5, -1), (2, -1), (20, -1)],
    "inside the chunk framing": [(4, 0), (6, 0)],
}


def _body(first: int) -> tuple[bytes, list[int]]:
    events = [sse_event(i) for i in range(first, T + 1)]
    ends, total = [], 0
    for event in events:
        total += len(event)
        ends.append(total)
    return b"".join(events), ends


@pytest.mark.parametrize("plan", list(CUT_PLANS))
async def test_killed_connection_every_event_once_in_order(
    raw_server: Callable[..., Awaitable[RawServer]], plan: str
) -> None:
    cuts = CUT_PLANS[plan]

    async def script(server: RawServer, writer: asyncio.StreamWriter, lid: str, n: int) -> None:
        first = int(lid or 0) + 1
        body, ends = _body(first)
        await server.write(writer, SSE_HEAD + chunk(b"retry: 0\n\n"))
        if n > len(cuts):  # the last connection: the rest, then a clean end
            await server.write(writer, chunk(body) + LAST_CHUNK)
            server.events_sent += len(ends)
            return
        events, extra = cuts[n - 1]
        offset = ends[events - 1] if events else 0
        if extra < 0:  # between the two newlines of the next event
            offset = ends[events] - 1
        else:
            offset += extra
        if plan == "inside the chunk framing":
            # The chunk header promises more than is sent: the cut is inside HTTP framing.
            await server.write(writer, b"%x\r\n" % (offset + 100) + body[:offset])
        else:
            await server.write(writer, chunk(body[:offset]))
        server.events_sent += events
        await abort_after_flush(writer)

    server = await raw_server(script)
    async with connect(server.url, max_reconnects=2, reconnect_on_eof=False) as source:
        received = [event.id async for event in source]
    assert received == [str(i) for i in range(1, T + 1)]  # all T, once, in order
    assert server.connections == len(cuts) + 1
    assert server.events_sent == T  # a cut event was not counted as sent: it is resent
    expected_ids = [None] + [str(sum(c[0] for c in cuts[: k + 1])) for k in range(len(cuts))]
    assert server.last_event_ids == expected_ids
    assert source.reconnects == len(cuts) and source.replayed == 0


# -- the server stalls ------------------------------------------------------------------


async def _open(
    session: aiohttp.ClientSession, url: str, *, timeout: float | None = None, **kwargs: float
) -> EventStream[ServerSentEvent]:
    response = await send(session, HTTPRequest("GET", url), timeout=timeout)
    return EventStream(response, SSEDecoder(), url=url, idle_timeout=timeout, **kwargs)


async def _stall_mid_event(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
    await server.write(writer, SSE_HEAD + chunk(b"id: 1\ndata: one\n\nid: 2\ndata: tw"))
    await server.stopped.wait()  # a stall, until the test ends


async def _heartbeats(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
    await server.write(writer, SSE_HEAD + chunk(b"id: 1\ndata: one\n\n"))
    for _beat in range(2000):  # bounded: 100 s of heartbeats, far beyond any test
        await server.write(writer, chunk(b": keep-alive\n\n"))
        if server.stopped.is_set():
            return
        await asyncio.sleep(0.05)


async def _measure(stream: EventStream[ServerSentEvent]) -> tuple[StreamTimeout, float]:
    loop = asyncio.get_running_loop()
    assert (await stream.__anext__()).data == "one"
    started = loop.time()
    with pytest.raises(StreamTimeout) as info:
        await stream.__anext__()
    return info.value, loop.time() - started


async def test_stall_mid_event_idle_timeout_fires_within_bound(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    server = await raw_server(_stall_mid_event)
    async with create_session() as session:
        stream = await _open(session, server.url, timeout=0.3)
        error, elapsed = await _measure(stream)
    assert error.kind == "idle" and error.seconds == 0.3 and error.last_event_id == "1"
    assert 0.3 <= elapsed < 3.0  # fired at its bound (generous slack for a busy machine)
    assert stream.closed


async def test_heartbeats_do_not_reset_the_event_timeout(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    server = await raw_server(_heartbeats)
    async with create_session() as session:
        stream = await _open(session, server.url, timeout=0.2, event_timeout=0.6)
        error, elapsed = await _measure(stream)
    # Bytes kept coming every 50 ms, so the 0.2 s idle timeout never fired...
    assert error.kind == "event" and error.seconds == 0.6 and error.last_event_id == "1"
    assert 0.6 <= elapsed < 3.5
    assert server.bytes_sent > len(SSE_HEAD) + 10 * len(chunk(b": keep-alive\n\n"))
    assert stream.closed


async def test_first_event_timeout_with_heartbeats_only(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    async def only_heartbeats(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, SSE_HEAD)
        for _beat in range(2000):
            await server.write(writer, chunk(b":\n\n"))
            if server.stopped.is_set():
                return
            await asyncio.sleep(0.05)

    server = await raw_server(only_heartbeats)
    loop = asyncio.get_running_loop()
    async with create_session() as session:
        stream = await _open(session, server.url, first_event_timeout=0.4)
        started = loop.time()
        with pytest.raises(StreamTimeout) as info:
            await stream.__anext__()
    assert info.value.kind == "first_event" and info.value.last_event_id == ""
    assert loop.time() - started < 3.0


async def test_stall_in_connect_reconnects_and_resumes(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    async def stall_once(server: RawServer, writer: asyncio.StreamWriter, lid: str, n: int) -> None:
        if n == 1:
            stalled = b"retry: 0\nid: 1\ndata: one\n\nid: 2\ndata: tw"
            await server.write(writer, SSE_HEAD + chunk(stalled))
            await server.stopped.wait()  # a stall, until the test ends
        await server.write(writer, SSE_HEAD + chunk(sse_event(2) + sse_event(3)) + LAST_CHUNK)

    server = await raw_server(stall_once)
    async with connect(
        server.url, idle_timeout=0.3, max_reconnects=1, reconnect_on_eof=False
    ) as source:
        received = [event.data async for event in source]
    assert received == ["one", "e2", "e3"]  # the half-sent event 2 arrives whole, once
    assert server.last_event_ids == [None, "1"]


# -- unbounded data: endless line, endless event, a million comments --------------------


class _Recording(SSEDecoder):
    """An SSEDecoder that remembers the most bytes it ever buffered."""

    __slots__ = ("peak",)

    def __init__(self, **kwargs: int | None | str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.peak = 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        try:
            return super().feed(chunk)
        finally:
            self.peak = max(self.peak, self.pending_bytes)


def _endless(prefix: bytes, unit: bytes) -> Callable[..., Awaitable[None]]:
    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, SSE_HEAD + chunk(prefix))
        block = chunk(unit * (64 * 1024 // len(unit)))
        for _block in range(1024):  # bounded: 64 MiB, far more than any limit tested
            await server.write(writer, block)

    return script


async def _run_to_error(
    server: RawServer, decoders: list[_Recording], **limits: int | None
) -> tuple[EventTooLarge, int]:
    def factory(lid: str) -> _Recording:
        decoder = _Recording(last_event_id=lid, **limits)
        decoders.append(decoder)
        return decoder

    tracemalloc.start()
    try:
        async with connect(server.url, decoder=factory, max_reconnects=3) as source:
            with pytest.raises(EventTooLarge) as info:
                async for _ in source:
                    pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return info.value, peak


@pytest.mark.parametrize(
    ("name", "prefix", "unit", "limits", "error"),
    [
        ("endless line", b"data: ", b"x", {"max_line_length": MiB}, LineTooLong),
        ("endless event", b"", b"data: x\n", {"max_event_size": MiB}, EventTooLarge),
        ("endless line, event limit only", b"data: ", b"x", {"max_event_size": MiB}, EventTooLarge),
    ],
)
async def test_unbounded_input_ends_in_a_limit_error_with_bounded_memory(
    raw_server: Callable[..., Awaitable[RawServer]],
    name: str,
    prefix: bytes,
    unit: bytes,
    limits: dict[str, int],
    error: type[Exception],
) -> None:
    limit = next(iter(limits.values()))
    assert limit is not None
    # After a first event (the replay check has handed over: the user's decoder
    # buffers), and before any (the replay check buffers, under the same limits).
    for first in (b"data: first\n\n", b""):
        server = await raw_server(_endless(first + prefix, unit))
        decoders: list[_Recording] = []
        exc, peak = await _run_to_error(server, decoders, **limits)
        assert type(exc) is error, name
        assert exc.limit == limit
        assert server.connections == 1  # the server would send it again: no reconnect
        assert server.bytes_sent > limit  # the client really was offered more than that
        if first:
            # What the framer held (sampled after each read, a read is <= 512 KiB).
            assert limit // 2 <= decoders[0].peak <= limit
        assert peak < 4 * limit, f"{name}: traced peak {peak} bytes"  # the whole process


async def test_a_million_comment_lines(raw_server: Callable[..., Awaitable[RawServer]]) -> None:
    """Comment *lines* without a blank line belong to one pending event: they count
    toward ``max_event_size`` (bounded memory), and with room the event arrives."""
    comments = b": c\n" * 1_000_000

    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, SSE_HEAD + chunk(b"data: first\n\n"))
        for start in range(0, len(comments), 256 * 1024):
            await server.write(writer, chunk(comments[start : start + 256 * 1024]))
        await server.write(writer, chunk(b"data: end\n\n") + LAST_CHUNK)

    server = await raw_server(script)
    decoders: list[_Recording] = []

    def factory(lid: str) -> _Recording:
        decoders.append(_Recording(last_event_id=lid, max_event_size=8 * MiB))
        return decoders[-1]

    async with connect(server.url, decoder=factory, reconnect_on_eof=False) as source:
        assert [e.data async for e in source] == ["first", "end"]
    assert len(comments) - MiB <= decoders[0].peak <= 8 * MiB  # sampled after each read
    # With a smaller limit the same stream is refused, not buffered.
    exc, _ = await _run_to_error(server, [], max_event_size=MiB)
    assert exc.limit == MiB


async def test_a_million_heartbeat_blocks_keep_memory_flat(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    beats = b":\n\n" * 1_000_000

    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, SSE_HEAD + chunk(b"data: first\n\n"))
        for start in range(0, len(beats), 256 * 1024):
            await server.write(writer, chunk(beats[start : start + 256 * 1024]))
        await server.write(writer, chunk(b"data: end\n\n") + LAST_CHUNK)

    server = await raw_server(script)
    decoders: list[_Recording] = []

    def factory(lid: str) -> _Recording:
        decoders.append(_Recording(last_event_id=lid))
        return decoders[-1]

    async with connect(server.url, decoder=factory, reconnect_on_eof=False) as source:
        assert [e.data async for e in source] == ["first", "end"]
    assert server.bytes_sent > 3 * 1_000_000
    assert decoders[0].peak < 4  # never more than a partial heartbeat is kept


# -- garbage bodies ---------------------------------------------------------------------


def _body_script(body: bytes, head: bytes = SSE_HEAD) -> Callable[..., Awaitable[None]]:
    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, head)
        for start in range(0, len(body), 4096):
            await server.write(writer, chunk(body[start : start + 4096]))
        await server.write(writer, LAST_CHUNK)

    return script


def _offline(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(body)
    decoder.close()
    return events


async def _collect(source: EventSource[ServerSentEvent]) -> list[ServerSentEvent]:
    async with source:
        return [event async for event in source]


async def test_random_bytes(raw_server: Callable[..., Awaitable[RawServer]]) -> None:
    rng = random.Random(1234)
    # Random bytes, with extra line breaks and a few "data:" so some events do form.
    pieces = [rng.randbytes(rng.randrange(0, 64)) for _ in range(4000)]
    glue = [b"\n", b"\r\n", b"\n\n", b"data:", b"id:", b"\r"]
    body = b"".join(p + rng.choice(glue) for p in pieces)
    server = await raw_server(_body_script(body))
    events: list[ServerSentEvent] = []
    source = connect(server.url, reconnect_on_eof=False, max_reconnects=0)
    # The body ends inside an event (its last bytes are random): a cut body, a drop.
    with pytest.raises(StreamInterrupted, match="ended inside an event"):
        async with source:
            async for event in source:
                events.append(event)  # noqa: PERF401 - kept when the loop raises
    assert events == _offline(body)  # exactly what the framer makes of it
    assert events and server.connections == 1


async def test_invalid_utf8_is_replaced_not_fatal(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    body = b"data: caf\xc3\n\nid: \xff1\ndata: \xff\xfe ok\n\ndata: \xe2\x82\n\ndata: fine\n\n"
    server = await raw_server(_body_script(body))
    events = await _collect(connect(server.url, reconnect_on_eof=False))
    assert [(e.data, e.id) for e in events] == [
        ("caf\ufffd", ""),
        ("\ufffd\ufffd ok", "\ufffd1"),
        ("\ufffd", "\ufffd1"),
        ("fine", "\ufffd1"),
    ]


async def test_wrong_content_type_is_final(raw_server: Callable[..., Awaitable[RawServer]]) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    server = await raw_server(_body_script(b"<html>captive portal</html>", head))
    with pytest.raises(UnexpectedContentType) as info:
        await _collect(connect(server.url, max_reconnects=3))
    assert "text/html" in str(info.value) and "captive portal" in info.value.body
    assert server.connections == 1


@pytest.mark.parametrize("statuses", [[500], [503], [500, 503], [503, 503, 503]])
async def test_5xx_then_success(
    raw_server: Callable[..., Awaitable[RawServer]], statuses: list[int]
) -> None:
    async def script(server: RawServer, writer: asyncio.StreamWriter, lid: str, n: int) -> None:
        if n <= len(statuses):
            body = b'{"message": "try later"}'
            await server.write(
                writer,
                b"HTTP/1.1 %d Oops\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (statuses[n - 1], len(body), body),
            )
            return
        await server.write(writer, SSE_HEAD + chunk(sse_event(1) + sse_event(2)) + LAST_CHUNK)

    server = await raw_server(script)
    reasons: list[str] = []
    source = connect(
        server.url,
        retry_ms=1,
        max_reconnects=len(statuses),
        reconnect_on_eof=False,
        on_reconnect=lambda r: reasons.append(r.reason),
    )
    assert [e.data for e in await _collect(source)] == ["e1", "e2"]
    assert server.connections == len(statuses) + 1
    assert reasons == ["status"] * len(statuses)


async def test_5xx_forever_gives_up_with_the_status(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(
            writer, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    server = await raw_server(script)
    with pytest.raises(HTTPStatusError) as info:
        await _collect(connect(server.url, retry_ms=1, max_retry_ms=5, max_reconnects=3))
    assert info.value.status_code == 503 and server.connections == 4


async def test_not_http_at_all(raw_server: Callable[..., Awaitable[RawServer]]) -> None:
    async def script(server: RawServer, writer: asyncio.StreamWriter, *_: object) -> None:
        await server.write(writer, random.Random(5).randbytes(2000))

    server = await raw_server(script)
    with pytest.raises(ConnectError) as info:
        await _collect(connect(server.url, retry_ms=1, max_reconnects=2))
    assert server.url.rsplit("/", 1)[0] in str(info.value)
    assert server.connections == 3


async def test_empty_bodies_back_off_then_end_quietly(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    server = await raw_server(_body_script(b""))
    delays: list[float] = []
    source = connect(
        server.url,
        retry_ms=2,
        max_retry_ms=8,
        max_reconnects=4,
        on_reconnect=lambda r: delays.append(r.delay),
    )
    assert await _collect(source) == []
    assert server.connections == 5 and len(delays) == 4
    assert delays[0] == 0.002 and all(0.001 <= d <= 0.008 for d in delays)
