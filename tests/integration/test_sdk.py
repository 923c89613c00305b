"""The eventstreams SDK against the embedded server (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest
from aiohttp import web
from support import pool_state

from aiostreams import SDK, EventStream, RetryConfig, ServerSentEvent
from aiostreams.errors import ConnectError, SDKError, StreamTimeout, UnexpectedContentType
from aiostreams.models import shared
from aiostreams.server import RequestRecord, create_app, run_server
from aiostreams.server import _reference as ref
from aiostreams.testing import SSEServer

TOKEN = "Token s3cr3t-value"

CHAT_EVENTS = [
    shared.ChatCompletionEvent(data=shared.ChatCompletionEventData(content=text))
    for text in ("Hello", " ", "world", "!")
]

# What each operation must yield for the reference bytes (reference-streams.md).
EXPECTED: dict[str, list[Any]] = {
    "chat": [*CHAT_EVENTS, shared.SentinelEvent()],
    "chat_skip_sentinel": CHAT_EVENTS,
    "different_data_schemas": [
        shared.DifferentDataSchemas(
            id="event-1",
            event="message",
            data=shared.MessageEvent(content="Here is your url", id=123),
        ),
        shared.DifferentDataSchemas(
            id="event-2", event="url", data=shared.URLEvent(url="https://example.com")
        ),
        shared.DifferentDataSchemas(
            id="event-3", event="message", data=shared.MessageEvent(content="Have a great day!")
        ),
        shared.DifferentDataSchemas(id="event-4", event="array", data=[1, 2, 3, 4]),
        shared.DifferentDataSchemas(id="event-5", event="primitive", data=True),
        shared.DifferentDataSchemas(id="event-6", event="primitive", data=3.14159),
    ],
    "json": [
        shared.JSONEvent(data=shared.JSONEventData(content=text))
        for text in ("Hello", " ", "world", "!")
    ],
    "multiline": [shared.TextEvent(data="YHOO\n+2\n10")],
    "rich": [
        shared.RichCompletionEvent(
            id="job-1",
            data=shared.RichCompletionEventData(
                completion="Hello", stop_reason=None, model="jeeves-1"
            ),
        ),
        shared.HeartbeatEvent(data="ping", retry=3000),
        shared.RichCompletionEvent(
            id="job-1",
            data=shared.RichCompletionEventData(
                completion="world!", stop_reason="stop_sequence", model="jeeves-1"
            ),
        ),
    ],
    "text": [shared.TextEvent(data=text) for text in ("Hello", " ", "world", "!")],
}
WITH_REQUEST = {"chat", "chat_skip_sentinel"}


def make_sdk(url: str, **kw: Any) -> SDK:
    options: dict[str, Any] = {
        "security": shared.Security(api_key_auth=TOKEN),
        "global_header_param": True,
        "global_hidden_query_param": "hello",
        "global_path_param": 100,
        "global_query_param": "some example global query param",
        "server_url": url,
    }
    options.update(kw)
    return SDK(**options)


async def call(s: SDK, name: str, **kw: Any) -> Any:
    if name in WITH_REQUEST:
        kw.setdefault("request", {"prompt": "<value>"})
    return await getattr(s.eventstreams, name)(**kw)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_operation_yields_its_typed_events(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord], name: str
) -> None:
    async with make_sdk(eventstreams_server) as s:
        res = await call(s, name)
        assert isinstance(res, EventStream)
        assert res.status == 200
        async with res:
            events = [event async for event in res]
        assert events == EXPECTED[name]
        assert pool_state(s.session) == (0, 1)  # ended cleanly: connection pooled
    (record,) = eventstreams_requests
    assert record.method == "POST"
    assert record.path.startswith("/eventstreams/")


async def test_chat_without_streaming_returns_the_json_list(eventstreams_server: str) -> None:
    async with make_sdk(eventstreams_server) as s:
        res = await s.eventstreams.chat(request=shared.ChatRequest(prompt="hi", stream=False))
    assert res == CHAT_EVENTS


async def test_design_example_as_written(eventstreams_server: str) -> None:
    seen: list[Any] = []
    async with SDK(
        security=shared.Security(api_key_auth="Token YOUR_API_KEY"),
        global_header_param=True,
        global_hidden_query_param="hello",
        global_path_param=100,
        global_query_param="some example global query param",
        server_url=eventstreams_server,
    ) as s:
        res = await s.eventstreams.chat(request={"prompt": "<value>"})
        assert isinstance(res, EventStream)
        async with res:
            async for event in res:
                seen.append(event)  # noqa: PERF401  (the design's loop, as written)
    assert seen == EXPECTED["chat"]


async def test_request_carries_security_globals_and_body(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    async with make_sdk(eventstreams_server) as s:
        async with await s.eventstreams.chat_skip_sentinel(
            request={"prompt": "Why?", "stream": True}
        ) as res:
            assert len([e async for e in res]) == 4
        assert s.global_path_param == 100  # kept, though no path uses it
    (record,) = eventstreams_requests
    assert record.path == "/eventstreams/chat-chunked"
    assert record.headers["Authorization"] == TOKEN
    assert record.headers["globalHeaderParam"] == "true"
    assert record.headers["Content-Type"] == "application/json"
    assert "text/event-stream" in record.headers["Accept"]
    assert record.query == {
        "globalQueryParam": "some example global query param",
        "globalHiddenQueryParam": "hello",
    }
    assert record.body == b'{"prompt":"Why?","stream":true}'
    assert "100" not in record.path


async def test_optional_globals_and_false_header(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    async with (
        SDK(server_url=eventstreams_server, global_header_param=False) as s,
        await s.eventstreams.json() as res,
    ):
        assert len([e async for e in res]) == 4
    (record,) = eventstreams_requests
    assert record.headers["globalHeaderParam"] == "false"
    assert "Authorization" not in record.headers
    assert record.query == {}
    assert record.body == b""
    assert "Content-Type" not in record.headers  # no body, no content type


async def test_security_as_dict_or_callable(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    tokens = iter(["Token one", "Token two"])
    async with SDK(server_url=eventstreams_server, security={"api_key_auth": "Token d"}) as s:
        await (await s.eventstreams.json()).aclose()
    async with SDK(
        server_url=eventstreams_server,
        security=lambda: shared.Security(api_key_auth=next(tokens)),
    ) as s:
        await (await s.eventstreams.json()).aclose()
        await (await s.eventstreams.json()).aclose()
    assert [r.headers["Authorization"] for r in eventstreams_requests] == [
        "Token d",
        "Token one",
        "Token two",
    ]


async def test_server_enforcing_the_api_key() -> None:
    async with run_server(create_app(pace=0, api_key=TOKEN)) as url:
        async with make_sdk(url) as s, await s.eventstreams.text() as res:
            assert len([e async for e in res]) == 4
        async with make_sdk(url, security=shared.Security(api_key_auth="Token wrong")) as s:
            with pytest.raises(SDKError) as info:
                await s.eventstreams.text()
    assert info.value.status_code == 401
    assert "does not match" in str(info.value)
    texts = [str(info.value), repr(info.value), repr(s), repr(s.security)]
    assert not [t for t in texts if "Token wrong" in t or TOKEN in t]


# -- per-call overrides -------------------------------------------------------------------


async def test_per_call_server_url(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    async with (
        make_sdk("http://127.0.0.1:9/not-here") as s,
        await s.eventstreams.multiline(server_url=eventstreams_server + "/") as res,
    ):
        assert [e async for e in res] == EXPECTED["multiline"]
    assert eventstreams_requests[0].path == "/eventstreams/multiline"


async def test_per_call_http_headers_reach_the_server_and_teapot_is_sdk_error(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    async with make_sdk(eventstreams_server) as s:
        with pytest.raises(SDKError) as info:
            await s.eventstreams.text(http_headers={"x-teapot": "json", "X-Trace": "t-1"})
        assert pool_state(s.session) == (0, 1)  # error body read, connection reused
    error = info.value
    assert error.status_code == 418
    assert error.body == '{"message":"I\'m a teapot"}'
    assert "I'm a teapot" in error.message
    assert "/eventstreams/text" in error.message
    assert error.raw_response is not None
    assert error.headers is not None and error.headers["Content-Type"] == "application/json"
    assert eventstreams_requests[0].headers["X-Trace"] == "t-1"
    assert TOKEN not in str(error) and TOKEN not in repr(error)


async def test_per_call_timeout_ms_overrides_the_sdk() -> None:
    # Reference pacing: 300 ms between two writes of a stream.
    async with run_server(create_app(pace=0.3)) as url, make_sdk(url, timeout_ms=5000) as s:
        res = await s.eventstreams.json(timeout_ms=100)
        assert isinstance(res, EventStream)
        async with res:
            first = await res.__anext__()
            assert first == EXPECTED["json"][0]
            with pytest.raises(StreamTimeout) as info:
                await res.__anext__()
        assert info.value.seconds == pytest.approx(0.1)
        assert "/eventstreams/json" in str(info.value)
        # The SDK's own 5 s is plenty for the same stream.
        async with await s.eventstreams.json() as res:
            assert [e async for e in res] == EXPECTED["json"]


async def test_per_call_retries_override(sse_server: SSEServer) -> None:
    """SDK without retries; one call with retries gets through two 503s."""
    sse_server.on("/eventstreams/json", times=2).status(503).json({"message": "busy"})
    sse_server.on("/eventstreams/json").send(*ref.JSON)
    fast = RetryConfig("backoff", retry_connection_errors=False)
    fast = RetryConfig(backoff=type(fast.backoff)(1, 5, 2.0, 5_000))
    async with make_sdk(sse_server.url) as s:
        with pytest.raises(SDKError) as info:
            await s.eventstreams.json()
        assert info.value.status_code == 503 and len(sse_server.requests) == 1
        res = await s.eventstreams.json(retries=fast)
        async with res:
            assert [e async for e in res] == EXPECTED["json"]
    assert len(sse_server.requests) == 3


# -- errors and connection handling -------------------------------------------------------


async def test_connection_refused_is_connect_error_naming_the_url() -> None:
    async with run_server(web.Application()) as url:
        pass
    async with make_sdk(url) as s:
        with pytest.raises(ConnectError) as info:
            await s.eventstreams.rich()
    assert f"{url}/eventstreams/rich" in str(info.value)
    assert TOKEN not in str(info.value)


async def test_unexpected_content_type(sse_server: SSEServer) -> None:
    sse_server.on("/eventstreams/json").content_type("text/html").send("<html>login</html>")
    async with make_sdk(sse_server.url) as s:
        with pytest.raises(UnexpectedContentType) as info:
            await s.eventstreams.json()
    assert "text/html" in str(info.value)
    assert info.value.status_code == 200
    assert info.value.body == "<html>login</html>"


async def test_invalid_request_is_a_clear_value_error(eventstreams_server: str) -> None:
    async with make_sdk(eventstreams_server) as s:
        with pytest.raises(ValueError, match="ChatRequest"):
            await s.eventstreams.chat(request={"promt": "typo"})


async def test_break_releases_the_connection(eventstreams_server: str) -> None:
    async with run_server(create_app(pace=0.05)) as url, make_sdk(url) as s:
        res = await s.eventstreams.text()
        assert isinstance(res, EventStream)
        async for _ in res:
            break
        assert res.closed
        assert pool_state(s.session) == (0, 0)


async def test_a_thousand_concurrent_streams_over_one_sdk(eventstreams_server: str) -> None:
    async with make_sdk(eventstreams_server) as s:

        async def one() -> int:
            res = await s.eventstreams.json()
            assert isinstance(res, EventStream)
            async with res:
                return len([event async for event in res])

        counts = await asyncio.gather(*(one() for _ in range(1000)))
        assert counts == [4] * 1000
        acquired, _ = pool_state(s.session)
        assert acquired == 0


# -- opting in to resume --------------------------------------------------------------


async def test_an_operation_opted_in_to_resume_survives_a_dropped_connection(
    sse_server: SSEServer,
) -> None:
    # A json endpoint that gives ids, resets the TCP connection after two events,
    # and resumes after Last-Event-ID on the next one.
    words = ["Hello", " ", "world", "!"]
    history = [
        ServerSentEvent(data=f'{{"content": "{word}"}}', id=str(n))
        for n, word in enumerate(words, start=1)
    ]
    sse_server.on("/eventstreams/json", times=None).resume(history, per_connection=2)
    reconnects: list[Any] = []
    async with (
        SDK(server_url=sse_server.url, security=shared.Security(api_key_auth="Token k")) as sdk,
        sdk.eventstreams.json.connect(on_reconnect=reconnects.append, retry_ms=0) as events,
    ):
        got = [event.data.content async for event in events]
    assert got == words  # every event once, in order
    assert [r.last_event_id for r in sse_server.requests] == [None, "2"]
    assert [r.headers["Authorization"] for r in sse_server.requests] == ["Token k", "Token k"]
    assert [r.reason for r in reconnects] == ["dropped"]


async def test_a_request_operation_opted_in_to_resume_ends_at_its_sentinel(
    eventstreams_server: str,
) -> None:
    async with SDK(server_url=eventstreams_server) as sdk:
        events = sdk.eventstreams.chat_skip_sentinel.connect(request={"prompt": "hi"})
        async with events:
            got = [event.data.content async for event in events]
        assert got == ["Hello", " ", "world", "!"]
        assert events.reconnects == 0


async def test_an_operation_opted_in_to_resume_raises_sdk_error_at_enter(
    eventstreams_server: str,
) -> None:
    async with SDK(server_url=eventstreams_server) as sdk:
        source = sdk.eventstreams.json.connect(server_url=f"{eventstreams_server}/nope")
        with pytest.raises(SDKError) as info:
            async with source:
                pytest.fail("the body of `async with` must not run")
        assert info.value.status_code == 404 and source.closed
