"""``async with aiostreams.connect(...)`` opens the connection on enter (as httpx-sse's
``aconnect_sse``): status, headers and the errors that end a stream are there at
``__aenter__``; real loopback servers count what they received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from aiostreams import connect
from aiostreams.errors import (
    ConnectError,
    HTTPStatusError,
    InvalidURL,
    SDKError,
    UnexpectedContentType,
)
from aiostreams.server import run_server

SSE = {"Content-Type": "text/event-stream", "X-Stream": "yes"}


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    """``url, hits = await serve(handler)``: ``hits`` grows by one per request."""
    contexts: list[object] = []

    async def start(handler: Callable[[web.Request, list[int]], object]) -> tuple[str, list[int]]:
        hits: list[int] = []

        async def route(request: web.Request) -> web.StreamResponse:
            hits.append(1)
            return await handler(request, hits)  # type: ignore[misc, no-any-return]

        app = web.Application()
        app.router.add_get("/s", route)
        context = run_server(app)
        url = await context.__aenter__()
        contexts.append(context)
        return f"{url}/s", hits

    yield start
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def _two_events(request: web.Request, hits: list[int]) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    await response.write(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n")
    return response


async def test_enter_sends_the_request_and_exposes_status_and_headers(
    serve: Callable[..., object],
) -> None:
    url, hits = await serve(_two_events)  # type: ignore[misc]
    source = connect(url, reconnect_on_eof=False)
    assert source.status is None and source.headers is None and hits == []
    async with source as events:
        assert len(hits) == 1  # sent at enter, before any event is awaited
        assert events.status == 200
        assert events.headers is not None and events.headers["X-Stream"] == "yes"
        assert [event.data async for event in events] == ["a", "b"]
    assert len(hits) == 1 and source.closed and source.status is None


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_4xx_raises_at_enter(serve: Callable[..., object], status: int) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        return web.Response(status=status, text="no")

    url, hits = await serve(handler)  # type: ignore[misc]
    source = connect(url, max_reconnects=3)
    with pytest.raises(HTTPStatusError) as info:
        async with source:
            pytest.fail("the body of `async with` must not run")
    assert info.value.status_code == status
    assert len(hits) == 1 and source.closed


async def test_wrong_content_type_raises_at_enter(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        return web.Response(text="<html>login</html>", content_type="text/html")

    url, _ = await serve(handler)  # type: ignore[misc]
    with pytest.raises(UnexpectedContentType):
        async with connect(url):
            pytest.fail("the body of `async with` must not run")


async def test_invalid_url_raises_at_connect() -> None:
    with pytest.raises(InvalidURL):
        connect("not a url")


async def test_retryable_status_retries_at_enter(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        if len(hits) < 3:
            return web.Response(status=503, headers={"Retry-After": "0"}, text="later")
        return await _two_events(request, hits)

    url, hits = await serve(handler)  # type: ignore[misc]
    async with connect(url, retry_ms=1, max_reconnects=5, reconnect_on_eof=False) as events:
        assert len(hits) == 3 and events.status == 200 and events.reconnects == 2
        assert [event.data async for event in events] == ["a", "b"]


async def test_connect_error_after_max_reconnects_raises_at_enter() -> None:
    async with run_server(web.Application()) as url:
        pass  # nothing listens there any more
    source = connect(f"{url}/s", retry_ms=1, max_reconnects=2)
    with pytest.raises(ConnectError):
        async with source:
            pytest.fail("the body of `async with` must not run")
    assert source.closed and source.reconnects == 2


async def test_204_enters_a_stream_that_is_already_over(serve: Callable[..., object]) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        return web.Response(status=204)

    url, hits = await serve(handler)  # type: ignore[misc]
    async with connect(url) as events:
        assert events.closed and [e async for e in events] == []
    assert len(hits) == 1


async def test_iterating_without_async_with_opens_lazily(serve: Callable[..., object]) -> None:
    url, hits = await serve(_two_events)  # type: ignore[misc]
    async with aiohttp.ClientSession() as session:
        source = connect(url, session=session, reconnect_on_eof=False)
        assert hits == []
        assert [event.data async for event in source] == ["a", "b"]
        assert len(hits) == 1
        await source.aclose()


async def test_aclose_from_another_task_ends_a_retrying_enter(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        return web.Response(status=503, headers={"Retry-After": "3600"})

    url, hits = await serve(handler)  # type: ignore[misc]
    waiting = asyncio.Event()
    source = connect(url, on_reconnect=lambda _: waiting.set())

    async def enter() -> bool:
        async with source as events:
            return events.closed

    entering = asyncio.ensure_future(enter())
    await asyncio.wait_for(waiting.wait(), 5)  # an hour's wait begins inside __aenter__
    await source.aclose()
    assert await asyncio.wait_for(entering, 2) is True  # entered a stream already over
    assert len(hits) == 1


async def test_connect_raises_http_status_error_not_the_sdks_name(
    serve: Callable[..., object],
) -> None:
    async def handler(request: web.Request, hits: list[int]) -> web.StreamResponse:
        return web.Response(status=403, text="forbidden here")

    url, _ = await serve(handler)  # type: ignore[misc]
    secret_url = url.replace("http://", "http://user:pa55word@") + "?token=sekret"
    with pytest.raises(HTTPStatusError) as info:
        async with connect(secret_url):
            pytest.fail("the body of `async with` must not run")
    error = info.value
    assert type(error) is HTTPStatusError and not isinstance(error, SDKError)
    assert error.status == error.status_code == 403 and error.body == "forbidden here"
    assert error.url == url  # no query string, no credentials
    assert "sekret" not in str(error) and "pa55word" not in str(error)
    assert "sekret" not in repr(error) and "pa55word" not in repr(error)


def test_sdk_error_is_an_http_status_error() -> None:
    assert issubclass(SDKError, HTTPStatusError)
    assert issubclass(UnexpectedContentType, HTTPStatusError)
