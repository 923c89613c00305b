"""Retries of opening a stream, against real servers that fail on purpose
(aioresponses only for connection errors that a real server cannot produce on cue)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from aiostreams import SDK, BackoffStrategy, EventStream, RetryConfig
from aiostreams.errors import ConnectError, SDKError
from aiostreams.models import shared
from aiostreams.server import create_app, run_server

FAST = BackoffStrategy(initial_interval=1, max_interval=5, exponent=2.0, max_elapsed_time=5_000)
RETRY = RetryConfig(backoff=FAST)
JSON_EVENTS = [
    shared.JSONEvent(data=shared.JSONEventData(content=text))
    for text in ("Hello", " ", "world", "!")
]

Failure = Callable[[int], web.Response | None]


def failing_app(failure: Failure, counter: list[int]) -> web.Application:
    """The eventstreams app, but ``failure(attempt)`` may answer first (attempts from 1)."""
    app = create_app(pace=0)

    @web.middleware
    async def fail_first(
        request: web.Request,
        handler: Callable[[web.Request], object],
    ) -> web.StreamResponse:
        counter.append(1)
        answer = failure(len(counter))
        if answer is not None:
            return answer
        result = await handler(request)  # type: ignore[misc]
        assert isinstance(result, web.StreamResponse)
        return result

    app.middlewares.insert(0, fail_first)
    return app


@pytest.fixture
def attempts() -> list[int]:
    return []


async def read_json_op(url: str, **call: object) -> list[object]:
    async with SDK(server_url=url, retry_config=RETRY) as s:
        res = await s.eventstreams.json(**call)  # type: ignore[arg-type]
        assert isinstance(res, EventStream)
        async with res:
            return [event async for event in res]


def status(code: int, **headers: str) -> web.Response:
    return web.json_response({"message": f"status {code}"}, status=code, headers=headers)


async def test_503_twice_then_200(attempts: list[int]) -> None:
    def failure(n: int) -> web.Response | None:
        return status(503) if n <= 2 else None

    async with run_server(failing_app(failure, attempts)) as url:
        assert await read_json_op(url) == JSON_EVENTS
    assert len(attempts) == 3


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
async def test_every_retryable_status_is_retried(code: int, attempts: list[int]) -> None:
    async with run_server(failing_app(lambda n: status(code) if n == 1 else None, attempts)) as url:
        assert await read_json_op(url) == JSON_EVENTS
    assert len(attempts) == 2


@pytest.mark.parametrize("code", [400, 401, 404, 418, 501])
async def test_other_statuses_are_not_retried(code: int, attempts: list[int]) -> None:
    async with run_server(failing_app(lambda n: status(code), attempts)) as url:
        with pytest.raises(SDKError) as info:
            await read_json_op(url)
    assert info.value.status_code == code
    assert len(attempts) == 1


async def test_exhausted_budget_raises_the_last_error(attempts: list[int]) -> None:
    short = RetryConfig(backoff=BackoffStrategy(20, 20, 1.0, max_elapsed_time=150))
    async with run_server(failing_app(lambda n: status(503), attempts)) as url:
        with pytest.raises(SDKError) as info:
            await read_json_op(url, retries=short)
    assert info.value.status_code == 503
    # 150 ms budget, waits of 10-20 ms: several retries, then the 503 itself
    assert 3 <= len(attempts) <= 16
    assert f"after {len(attempts) - 1} retries" in str(info.value)
    assert "status 503" in str(info.value)


async def test_retry_after_seconds_is_honoured(attempts: list[int]) -> None:
    def failure(n: int) -> web.Response | None:
        return status(503, **{"Retry-After": "1"}) if n == 1 else None

    loop = asyncio.get_running_loop()
    async with run_server(failing_app(failure, attempts)) as url:
        started = loop.time()
        assert await read_json_op(url) == JSON_EVENTS
        waited = loop.time() - started
    assert len(attempts) == 2
    assert waited >= 1.0  # not the 1-5 ms backoff


async def test_retry_after_beyond_the_budget_gives_up_at_once(attempts: list[int]) -> None:
    def failure(n: int) -> web.Response | None:
        return status(429, **{"Retry-After": "3600"})

    async with run_server(failing_app(failure, attempts)) as url:
        with pytest.raises(SDKError) as info:
            await read_json_op(url)
    assert info.value.status_code == 429
    assert len(attempts) == 1


async def test_strategy_none_disables_retries_per_call(attempts: list[int]) -> None:
    async with run_server(failing_app(lambda n: status(503) if n == 1 else None, attempts)) as url:
        with pytest.raises(SDKError):
            await read_json_op(url, retries=RetryConfig("none"))
    assert len(attempts) == 1


async def test_no_retry_after_the_first_event_was_delivered() -> None:
    calls = 0

    async def drop_mid_stream(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"content": "Hello"}\n\n')
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    app = web.Application()
    app.router.add_post("/eventstreams/json", drop_mid_stream)
    retry_all = RetryConfig(backoff=FAST, retry_connection_errors=True)
    async with run_server(app) as url, SDK(server_url=url, retry_config=retry_all) as s:
        res = await s.eventstreams.json()
        async with res:
            assert await res.__anext__() == JSON_EVENTS[0]
            with pytest.raises(ConnectError, match="lost mid-stream"):
                await res.__anext__()
    assert calls == 1


# -- connection errors ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_connection_errors_are_retried_when_enabled() -> None:
    """Nothing listens at first; the server comes up while the client retries."""
    port = free_port()
    retry = RetryConfig(backoff=BackoffStrategy(20, 50, 1.5, 5_000), retry_connection_errors=True)
    async with SDK(server_url=f"http://127.0.0.1:{port}", retry_config=retry) as s:
        call = asyncio.ensure_future(s.eventstreams.json())
        await asyncio.sleep(0.15)
        assert not call.done()  # still retrying
        async with run_server(create_app(pace=0), port=port):
            res = await call
            assert isinstance(res, EventStream)
            async with res:
                assert [event async for event in res] == JSON_EVENTS


async def test_connection_errors_are_not_retried_by_default() -> None:
    url = "http://unreachable.test/eventstreams/json"
    with aioresponses() as mocked:
        mocked.post(url, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        async with SDK(server_url="http://unreachable.test", retry_config=RETRY) as s:
            with pytest.raises(ConnectError) as info:
                await s.eventstreams.json()
        sent = mocked.requests[("POST", URL(url))]
    assert len(sent) == 1
    assert url in str(info.value)


async def test_connection_errors_retried_until_the_budget_is_spent() -> None:
    url = "http://unreachable.test/eventstreams/json"
    retry = RetryConfig(backoff=BackoffStrategy(10, 10, 1.0, 100), retry_connection_errors=True)
    with aioresponses() as mocked:
        mocked.post(url, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        async with SDK(server_url="http://unreachable.test", retry_config=retry) as s:
            with pytest.raises(ConnectError) as info:
                await s.eventstreams.json()
        sent = mocked.requests[("POST", URL(url))]
    assert 3 <= len(sent) <= 21
    assert "ServerDisconnectedError" in str(info.value)
