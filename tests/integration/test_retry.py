"""Retries of opening a stream, against the ``sse_server`` fixture failing on purpose
(aioresponses only for connection errors that a real server cannot produce on cue)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from aiostreams import SDK, BackoffStrategy, EventStream, RetryConfig
from aiostreams.errors import ConnectError, SDKError
from aiostreams.models import shared
from aiostreams.server import _reference as ref
from aiostreams.server import create_app, run_server
from aiostreams.testing import SSEServer

FAST = BackoffStrategy(initial_interval=1, max_interval=5, exponent=2.0, max_elapsed_time=5_000)
RETRY = RetryConfig(backoff=FAST)
JSON_EVENTS = [
    shared.JSONEvent(data=shared.JSONEventData(content=text))
    for text in ("Hello", " ", "world", "!")
]
JSON_OP = "/eventstreams/json"


def fail(
    server: SSEServer, code: int, *, times: int | None = 1, retry_after: str | None = None
) -> None:
    """The next ``times`` requests (``None``: all) get ``code`` and an API error body."""
    script = server.on(JSON_OP, times=times).status(code, retry_after=retry_after)
    script.json({"message": f"status {code}"})


def succeed(server: SSEServer) -> None:
    server.on(JSON_OP).send(*ref.JSON)


async def read_json_op(url: str, **call: object) -> list[object]:
    async with SDK(server_url=url, retry_config=RETRY) as s:
        res = await s.eventstreams.json(**call)  # type: ignore[arg-type]
        assert isinstance(res, EventStream)
        async with res:
            return [event async for event in res]


async def test_503_twice_then_200(sse_server: SSEServer) -> None:
    fail(sse_server, 503, times=2)
    succeed(sse_server)
    assert await read_json_op(sse_server.url) == JSON_EVENTS
    assert len(sse_server.requests) == 3


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
async def test_every_retryable_status_is_retried(code: int, sse_server: SSEServer) -> None:
    fail(sse_server, code)
    succeed(sse_server)
    assert await read_json_op(sse_server.url) == JSON_EVENTS
    assert len(sse_server.requests) == 2


@pytest.mark.parametrize("code", [400, 401, 404, 418, 501])
async def test_other_statuses_are_not_retried(code: int, sse_server: SSEServer) -> None:
    fail(sse_server, code, times=None)
    with pytest.raises(SDKError) as info:
        await read_json_op(sse_server.url)
    assert info.value.status_code == code
    assert len(sse_server.requests) == 1


async def test_exhausted_budget_raises_the_last_error(sse_server: SSEServer) -> None:
    short = RetryConfig(backoff=BackoffStrategy(20, 20, 1.0, max_elapsed_time=150))
    fail(sse_server, 503, times=None)
    with pytest.raises(SDKError) as info:
        await read_json_op(sse_server.url, retries=short)
    attempts = len(sse_server.requests)
    assert info.value.status_code == 503
    # 150 ms budget, waits of 10-20 ms: several retries, then the 503 itself
    assert 3 <= attempts <= 16
    assert f"after {attempts - 1} retries" in str(info.value)
    assert "status 503" in str(info.value)


async def test_retry_after_seconds_is_honoured(sse_server: SSEServer) -> None:
    fail(sse_server, 503, retry_after="1")
    succeed(sse_server)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await read_json_op(sse_server.url) == JSON_EVENTS
    assert loop.time() - started >= 1.0  # not the 1-5 ms backoff
    assert len(sse_server.requests) == 2


async def test_retry_after_beyond_the_budget_gives_up_at_once(sse_server: SSEServer) -> None:
    fail(sse_server, 429, times=None, retry_after="3600")
    with pytest.raises(SDKError) as info:
        await read_json_op(sse_server.url)
    assert info.value.status_code == 429
    assert len(sse_server.requests) == 1


async def test_strategy_none_disables_retries_per_call(sse_server: SSEServer) -> None:
    fail(sse_server, 503)
    succeed(sse_server)
    with pytest.raises(SDKError):
        await read_json_op(sse_server.url, retries=RetryConfig("none"))
    assert len(sse_server.requests) == 1


async def test_no_retry_after_the_first_event_was_delivered(sse_server: SSEServer) -> None:
    sse_server.on(JSON_OP, times=None).send(ref.JSON[0]).sleep(0.05).reset()
    retry_all = RetryConfig(backoff=FAST, retry_connection_errors=True)
    async with SDK(server_url=sse_server.url, retry_config=retry_all) as s:
        res = await s.eventstreams.json()
        async with res:
            assert await res.__anext__() == JSON_EVENTS[0]
            with pytest.raises(ConnectError, match="lost mid-stream"):
                await res.__anext__()
    assert len(sse_server.requests) == 1


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
    failures = 0
    retried = asyncio.Event()

    async def on_failure(*_: object) -> None:
        nonlocal failures
        failures += 1
        if failures >= 2:  # the first attempt and at least one retry were refused
            retried.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_exception.append(on_failure)
    async with SDK(
        server_url=f"http://127.0.0.1:{port}",
        retry_config=retry,
        session_factory=lambda: aiohttp.ClientSession(trace_configs=[trace]),
    ) as s:
        call = asyncio.ensure_future(s.eventstreams.json())
        await asyncio.wait_for(retried.wait(), 10)
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
