"""The embedded eventstreams server, checked on the wire.

The expected bytes below are copied from the reference service's description
(one entry per write), not imported from ``aiostreams.server``, so a typo there
fails here.  A raw HTTP/1.1 client reads the chunked body: aiohttp sends each
``write`` as one chunk, so the chunk list *is* the sequence of writes, whatever
the pace and however TCP coalesces them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import pytest

from aiostreams import ServerSentEvent, SSEDecoder
from aiostreams.server import REQUESTS_KEY, RequestRecord, create_app, run_server

JSON_OP = [
    b'data: {"content": "Hello"}\n\n',
    b'data: {"content": " "}\n\n',
    b'data: {"content": "world"}\n\n',
    b'data: {"content": "!"}\n\n',
]
REFERENCE: dict[str, list[bytes]] = {
    "json": JSON_OP,
    "text": [b"data: Hello\n\n", b"data:  \n\n", b"data: world\n\n", b"data: !\n\n"],
    "multiline": [b"data: YHOO\ndata: +2\ndata: 10\n\n"],
    "rich": [
        (
            b'id: job-1\nevent: completion\ndata: {"completion": "Hello", "stop_reason": null, '
            b'"model": "jeeves-1"}\n\n'
        ),
        b"event: heartbeat\ndata: ping\nretry: 3000\n\n",
        (
            b'id: job-1\nevent: completion\ndata: {"completion": "world!", "stop_reason": '
            b'"stop_sequence", "model": "jeeves-1"}\n\n'
        ),
    ],
    "chat": [*JSON_OP, b"data: [DONE]\n\n"],
    "chat-chunked": [
        b'data: {"content": ',
        b'"Hello"}\n\ndata: {"content": " "}\n\n',
        b'data: {"content": "world"}\n\n',
        b'data: {"content": "!"}\n\ndata: [DONE]\n',
        b'\ndata: {"content": "Post sentinel data"}\n\n',
    ],
    "differentdataschemas": [
        b'id: event-1\nevent: message\ndata: {"id": 123, "content": "Here is your url"}\n\n',
        b'id: event-2\nevent: url\ndata: {"url": "https://example.com"}\n\n',
        b'id: event-3\nevent: message\ndata: {"content": "Have a great day!"}\n\n',
        b"id: event-4\nevent: array\ndata: [1, 2, 3, 4]\n\n",
        b"id: event-5\nevent: primitive\ndata: true\n\n",
        b"id: event-6\nevent: primitive\ndata: 3.14159\n\n",
    ],
}
CHAT_BODY = b'{"prompt": "Hi"}'


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() per chunk
    complete: bool = False  # the chunked terminator arrived
    body: bytes = b""  # for a Content-Length response


async def raw_request(
    url: str,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    max_chunks: int | None = None,
) -> RawResponse:
    """One HTTP/1.1 request over a plain socket; the body is kept chunk by chunk."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        response = RawResponse(int(head[0].split()[1]), {})
        for line in filter(None, head[1:]):
            name, _, value = line.partition(":")
            response.headers[name.strip().lower()] = value.strip()
        if response.headers.get("transfer-encoding") != "chunked":
            response.body = await reader.read()
            return response
        while max_chunks is None or len(response.chunks) < max_chunks:
            size_line = await reader.readline()
            if not size_line:
                return response  # EOF without the terminator: an aborted stream
            size = int(size_line.strip(), 16)
            data = await reader.readexactly(size + 2)
            assert data.endswith(b"\r\n")
            if size == 0:
                response.complete = True
                return response
            response.chunks.append(data[:-2])
            response.arrivals.append(time.monotonic())
        return response
    finally:
        writer.close()
        await writer.wait_closed()


async def decoded(url: str, method: str = "GET", **kwargs: object) -> list[ServerSentEvent]:
    """The events of a stream, through aiohttp ``iter_any()`` and SSEDecoder."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        assert r.status == 200, await r.text()
        async for chunk in r.content.iter_any():
            events += decoder.feed(chunk)
    return events


def body_for(operation: str) -> bytes:
    return CHAT_BODY if operation.startswith("chat") else b""


# -- the seven operations ------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(REFERENCE))
async def test_operation_sends_the_reference_writes(
    eventstreams_server: str, operation: str
) -> None:
    url = f"{eventstreams_server}/eventstreams/{operation}"
    response = await raw_request(url, body=body_for(operation))
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.chunks == REFERENCE[operation]
    assert response.complete


async def test_writes_are_paced_and_streamed() -> None:
    pace = 0.05
    async with run_server(pace=pace) as url:
        started = time.monotonic()
        response = await raw_request(f"{url}/eventstreams/rich")
    assert response.chunks == REFERENCE["rich"]
    gaps = [b - a for a, b in zip(response.arrivals, response.arrivals[1:], strict=False)]
    assert all(gap >= pace * 0.8 for gap in gaps), gaps
    # The first write arrives before the server has slept: it is flushed, not buffered.
    assert response.arrivals[0] - started < response.arrivals[-1] - started - pace


async def test_each_write_is_a_separate_read_at_a_visible_pace() -> None:
    async with (
        run_server(pace=0.05) as url,
        aiohttp.ClientSession() as session,
        session.post(f"{url}/eventstreams/chat-chunked", data=CHAT_BODY) as r,
    ):
        reads = [bytes(chunk) async for chunk in r.content.iter_any()]
    assert b"".join(reads) == b"".join(REFERENCE["chat-chunked"])
    assert reads[0] == b'data: {"content": '  # the seam inside an event reaches the client


async def test_operations_decode_to_the_documented_events(eventstreams_server: str) -> None:
    text = await decoded(f"{eventstreams_server}/eventstreams/text", "POST")
    assert [e.data for e in text] == ["Hello", " ", "world", "!"]
    multiline = await decoded(f"{eventstreams_server}/eventstreams/multiline", "POST")
    assert [e.data for e in multiline] == ["YHOO\n+2\n10"]
    rich = await decoded(f"{eventstreams_server}/eventstreams/rich", "POST")
    assert [(e.event, e.id, e.retry) for e in rich] == [
        ("completion", "job-1", None),
        ("heartbeat", "job-1", 3000),
        ("completion", "job-1", None),
    ]
    assert rich[2].json()["stop_reason"] == "stop_sequence"


async def test_chat_without_streaming_answers_json(eventstreams_server: str) -> None:
    response = await raw_request(
        f"{eventstreams_server}/eventstreams/chat", body=b'{"prompt": "Hi", "stream": false}'
    )
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.body == (
        b'[{"data":{"content":"Hello"}},{"data":{"content":" "}},'
        b'{"data":{"content":"world"}},{"data":{"content":"!"}}]'
    )


async def test_chat_with_stream_true_streams(eventstreams_server: str) -> None:
    response = await raw_request(
        f"{eventstreams_server}/eventstreams/chat", body=b'{"prompt": "Hi", "stream": true}'
    )
    assert response.chunks == REFERENCE["chat"]


async def test_text_teapot(eventstreams_server: str) -> None:
    response = await raw_request(
        f"{eventstreams_server}/eventstreams/text", headers={"x-teapot": "json"}
    )
    assert response.status == 418
    assert response.headers["content-type"] == "application/json"
    assert response.body == b'{"message":"I\'m a teapot"}'


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/eventstreams/chat", b'{"prompt": ', 400, "not valid JSON"),
        ("POST", "/eventstreams/chat", b"", 400, "body is empty"),
        ("POST", "/eventstreams/chat-chunked", b"{}", 422, "`prompt`"),
        ("POST", "/eventstreams/chat", b'{"prompt": 1}', 422, "$.prompt"),
        ("POST", "/eventstreams/chat", b'{"prompt": "x", "stream": "no"}', 422, "$.stream"),
        ("POST", "/eventstreams/nope", b"", 404, "no such endpoint"),
        ("GET", "/eventstreams/json", b"", 405, "use POST"),
        ("GET", "/load/bogus", b"", 404, "unknown load shape 'bogus'"),
        ("GET", "/load/chat?count=3", b"", 400, "unknown query parameter(s) count"),
        ("GET", "/load/chat?n=-1", b"", 400, "n='-1'"),
        ("GET", "/load/chat?rate=fast", b"", 400, "rate='fast'"),
        ("GET", "/load/large?n=100000&size=10000000", b"", 400, "cap"),
        ("GET", "/load/resumable", b"", 200, None),
    ],
)
async def test_bad_requests_get_a_json_message(
    eventstreams_server: str,
    method: str,
    path: str,
    body: bytes,
    status: int,
    words: str | None,
) -> None:
    response = await raw_request(f"{eventstreams_server}{path}", method, body=body)
    assert response.status == status
    if words is None:  # the control case: a valid request is not refused
        return
    assert response.headers["content-type"] == "application/json"
    message = json.loads(response.body)["message"]
    assert words in message
    if status == 405:
        assert response.headers["allow"] == "POST"


async def test_resumable_rejects_a_foreign_last_event_id(eventstreams_server: str) -> None:
    response = await raw_request(
        f"{eventstreams_server}/load/resumable", "GET", headers={"Last-Event-ID": "job-1"}
    )
    assert response.status == 400
    assert "Last-Event-ID 'job-1'" in json.loads(response.body)["message"]


@pytest.fixture
async def keyed_server() -> AsyncIterator[str]:
    async with run_server(pace=0, api_key="Token s3cret") as url:
        yield url


@pytest.mark.parametrize(
    ("headers", "words"),
    [({}, "missing Authorization"), ({"Authorization": "Token nope"}, "wrong Authorization")],
)
@pytest.mark.parametrize("path", ["/eventstreams/json", "/load/chat?n=1", "/elsewhere"])
async def test_api_key_is_required(
    keyed_server: str, headers: dict[str, str], words: str, path: str
) -> None:
    response = await raw_request(f"{keyed_server}{path}", headers=headers)
    assert response.status == 401
    assert response.headers["content-type"] == "application/json"
    assert words in json.loads(response.body)["message"]
    assert b"s3cret" not in response.body


async def test_api_key_lets_the_right_client_in(keyed_server: str) -> None:
    response = await raw_request(
        f"{keyed_server}/eventstreams/json", headers={"Authorization": "Token s3cret"}
    )
    assert response.status == 200
    assert response.chunks == REFERENCE["json"]


async def test_requests_are_recorded(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    await raw_request(
        f"{eventstreams_server}/eventstreams/chat?globalQueryParam=q&globalHiddenQueryParam=hello",
        headers={"globalHeaderParam": "true", "Authorization": "Token k"},
        body=CHAT_BODY,
    )
    await raw_request(f"{eventstreams_server}/nowhere", "GET")
    first, second = eventstreams_requests
    assert (first.method, first.path, first.body) == ("POST", "/eventstreams/chat", CHAT_BODY)
    assert first.query == {"globalQueryParam": "q", "globalHiddenQueryParam": "hello"}
    assert first.headers["globalheaderparam"] == "true"  # case-insensitive lookups
    assert first.headers["Authorization"] == "Token k"
    assert (second.method, second.path, second.query) == ("GET", "/nowhere", {})


def test_recorded_requests_are_bounded() -> None:
    # A benchmark sends millions of requests: the record must not grow with them.
    assert create_app()[REQUESTS_KEY].maxlen == 1000


def test_create_app_refuses_a_negative_pace() -> None:
    with pytest.raises(ValueError, match="pace must be >= 0"):
        create_app(pace=-1)


async def test_run_server_refuses_options_it_would_ignore() -> None:
    with pytest.raises(TypeError, match="create_app"):
        async with run_server(create_app(), pace=0):
            pass


# -- load endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_load_chat_events_and_sentinel(eventstreams_server: str, method: str) -> None:
    events = await decoded(f"{eventstreams_server}/load/chat?n=300&sentinel=1", method)
    assert len(events) == 301
    assert [e.json()["content"] for e in events[:-1]] == [f"tok{i}" for i in range(1, 301)]
    assert events[-1].data == "[DONE]"


async def test_load_rich_events(eventstreams_server: str) -> None:
    events = await decoded(f"{eventstreams_server}/load/rich?n=20")
    assert [e.id for e in events] == [str(i) for i in range(1, 21)]
    assert {e.event for e in events} == {"completion"}
    assert events[4].json() == {"completion": "tok5", "stop_reason": None, "model": "jeeves-1"}


async def test_load_large_events_have_the_requested_size(eventstreams_server: str) -> None:
    events = await decoded(f"{eventstreams_server}/load/large?n=7&size=100000&chunk=4096")
    assert len(events) == 7
    assert all(len(e.data.encode()) == 100_000 for e in events)
    assert isinstance(events[0].json(), str)


async def test_load_chunk_sizes(eventstreams_server: str) -> None:
    by_size = await raw_request(f"{eventstreams_server}/load/chat?n=100&chunk=100", "GET")
    body = b"".join(by_size.chunks)
    assert [len(c) for c in by_size.chunks[:-1]] == [100] * (len(by_size.chunks) - 1)
    assert 0 < len(by_size.chunks[-1]) <= 100
    per_event = await raw_request(f"{eventstreams_server}/load/chat?n=100&chunk=0", "GET")
    assert per_event.chunks == [b'data: {"content": "tok%d"}\n\n' % i for i in range(1, 101)]
    assert body == b"".join(per_event.chunks)
    default = await raw_request(f"{eventstreams_server}/load/chat?n=100", "GET")
    assert default.chunks == [body]  # well under the 16 KiB default: one write


async def test_load_rate_spreads_events_over_time(eventstreams_server: str) -> None:
    started = time.monotonic()
    response = await raw_request(f"{eventstreams_server}/load/chat?n=6&rate=50&chunk=0", "GET")
    assert len(response.chunks) == 6
    assert response.arrivals[-1] - started >= 5 / 50 * 0.8  # event 6 is due at 5/rate


async def test_load_hold_keeps_the_stream_open(eventstreams_server: str) -> None:
    started = time.monotonic()
    response = await raw_request(f"{eventstreams_server}/load/chat?n=2&hold=0.2", "GET")
    assert len(response.chunks) == 1 and response.complete
    assert time.monotonic() - started >= 0.15


async def test_load_idle_sends_one_comment_and_stays_open(eventstreams_server: str) -> None:
    response = await raw_request(f"{eventstreams_server}/load/idle?hold=0.1", "GET")
    assert response.chunks == [b": open\n\n"] and response.complete
    # Without a short hold the stream stays open: nothing more within 0.3 s.
    parts = urlsplit(eventstreams_server)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(b"GET /load/idle HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"200 OK" in head
    assert await reader.readuntil(b": open\n\n\r\n")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)
    writer.close()
    await writer.wait_closed()


async def test_load_resumable_full_and_resumed(eventstreams_server: str) -> None:
    url = f"{eventstreams_server}/load/resumable?n=5"
    events = await decoded(url)
    assert [(e.id, e.json()["content"], e.retry) for e in events] == [
        ("1", "tok1", 10), ("2", "tok2", None), ("3", "tok3", None),
        ("4", "tok4", None), ("5", "tok5", None),
    ]  # fmt: skip
    resumed = await decoded(url, headers={"Last-Event-ID": "3"})
    assert [(e.id, e.retry) for e in resumed] == [("4", 10), ("5", None)]


async def test_load_resumable_drops_the_connection(eventstreams_server: str) -> None:
    url = f"{eventstreams_server}/load/resumable?n=5&drop_after=2"
    response = await raw_request(url, "GET")
    assert response.chunks == [
        b'id: 1\nretry: 10\ndata: {"content": "tok1"}\n\n',
        b'id: 2\ndata: {"content": "tok2"}\n\n',
    ]
    assert not response.complete  # no chunked terminator: the connection was aborted
    # The last connection has nothing left to drop after: it ends cleanly.
    last = await raw_request(url, "GET", headers={"Last-Event-ID": "4"})
    assert len(last.chunks) == 1 and last.complete
    decoder = SSEDecoder()
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in r.content.iter_any():
                decoder.feed(chunk)
    assert decoder.last_event_id == "2"
