"""Logging and ``stats`` of real streams against loopback servers (issue 15).

What a service sees: log records under ``"aiostreams"`` (never a credential, a
token or a query string in any of them) and ``stream.stats`` / ``merged.stats``
telling events, bytes, times to first byte/event, gaps and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

import aiostreams
from aiostreams import SDK, BackoffStrategy, RetryConfig, StreamStats, connect, merge
from aiostreams._log import redact_text, redact_url
from aiostreams._request import HTTPRequest, open_stream
from aiostreams.errors import (
    EventTooLarge,
    HTTPStatusError,
    ResponseValidationError,
    SDKError,
    StreamTimeout,
)
from aiostreams.models import operations
from aiostreams.server import run_server

SSE = {"Content-Type": "text/event-stream"}
SECRETS = ("q-SECRET", "pw-SECRET", "alice", "token=")


def _events(first: int, last: int) -> bytes:
    return b"".join(b"id: %d\ndata: e%d\n\n" % (i, i) for i in range(first, last + 1))


FIRST_BODY = b"retry: 0\n\n" + _events(1, 2)
THIRD_BODY = _events(1, 4)  # a server that replays from the start


async def _outage(request: web.Request) -> web.StreamResponse:
    """Request 1: events 1-2, then the connection is cut; 2: HTTP 503; 3: events 1-4
    again (1-2 replayed), then a clean end."""
    seen: list[str | None] = request.app[SEEN]
    seen.append(request.headers.get("Last-Event-ID"))
    if len(seen) == 2:
        return web.Response(status=503, text="overloaded", headers={"Retry-After": "0"})
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    if len(seen) == 1:
        await response.write(FIRST_BODY)
        await asyncio.sleep(0.01)  # let the bytes reach the client first
        assert request.transport is not None
        request.transport.abort()
        return response
    await response.write(THIRD_BODY)
    return response


SEEN = web.AppKey("seen", list)


@pytest.fixture
async def outage_url() -> AsyncIterator[str]:
    app = web.Application()
    app[SEEN] = []
    app.router.add_get("/events", _outage)
    async with run_server(app) as url:
        yield url.replace("http://", "http://alice:pw-SECRET@") + "/events?token=q-SECRET"


def _texts(records: list[logging.LogRecord]) -> list[str]:
    """Each record as a handler would write it, plus its raw arguments (a structured
    handler may dump those instead of the message)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [f"{formatter.format(record)} {record.args!r}" for record in records]


async def test_an_outage_is_logged_without_secrets_and_counted(
    outage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiostreams")
    async with connect(outage_url, reconnect_on_eof=False, max_reconnects=3) as source:
        data = [event.data async for event in source]
    assert data == ["e1", "e2", "e3", "e4"]

    stats = source.stats
    assert (stats.events, stats.replayed, stats.connections) == (4, 2, 2)
    assert stats.reconnects_by_reason == {"dropped": 1, "status": 1}
    assert stats.reconnects == 2 == source.reconnects
    assert stats.bytes == len(FIRST_BODY) + len(THIRD_BODY)
    assert stats.last_event_id == "4" and stats.status == 200 and stats.closed
    assert stats.error is None
    ttfe, ttfb, headers = stats.time_to_first_event, stats.time_to_first_byte, stats.time_to_headers
    assert ttfe is not None and ttfb is not None and headers is not None
    assert 0 <= headers <= ttfb <= ttfe <= stats.duration
    assert stats.max_gap > 0  # the outage sits between event 2 and event 3

    texts = _texts(caplog.records)
    assert all(record.exc_info is None for record in caplog.records)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text
    reconnects = [
        r.getMessage()
        for r in caplog.records
        if r.name == "aiostreams.connect" and r.levelno == logging.INFO
    ]
    assert len(reconnects) == 2, texts
    assert "reason dropped" in reconnects[0] and "Last-Event-ID '2'" in reconnects[0]
    assert "was lost" in reconnects[0]  # the error that cut the connection
    assert "reason status" in reconnects[1] and "HTTP 503" in reconnects[1]
    host_path = redact_url(outage_url)
    assert host_path.startswith("http://127.0.0.1:") and host_path.endswith("/events")
    assert all(host_path in message for message in reconnects)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("connecting (Last-Event-ID '2')" in m for m in debug), debug
    assert any("HTTP 200, stream open" in m for m in debug), debug
    assert any("ended (closed) after 4 events" in m for m in debug), debug
    # No record for any single event: 4 events, and far fewer records than events per
    # connection would give if anything logged per event... checked by count:
    assert len(caplog.records) == len(texts) <= 12


async def test_disabled_logging_formats_nothing(
    outage_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiostreams")
    calls: list[object] = []

    def spy(value: object) -> str:
        calls.append(value)
        return "x"

    import aiostreams._request
    import aiostreams._stats

    monkeypatch.setattr(aiostreams._stats, "describe_error", spy)
    monkeypatch.setattr(aiostreams._request, "redact_url", spy)
    async with connect(outage_url, reconnect_on_eof=False, max_reconnects=3) as source:
        assert len([event async for event in source]) == 4
    assert source.stats.reconnects == 2
    assert calls == [] and caplog.records == []


async def test_sdk_stream_stats_and_a_failed_call_logged(
    eventstreams_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiostreams")
    async with SDK(server_url=eventstreams_server, global_hidden_query_param="q-SECRET") as sdk:
        stream = await sdk.eventstreams.json()
        async with stream:
            events = [event async for event in stream]
        stats = stream.stats
        assert isinstance(stats, StreamStats)
        assert stats.events == len(events) > 0 and stats.bytes > 0
        assert stats.status == 200 and stats.closed and stats.connections == 1
        assert stats.time_to_first_event is not None and stats.time_to_first_event > 0
        assert stats.as_dict()["events"] == len(events)
        assert f"events               {len(events)}" in stats.summary()
        assert "q-SECRET" not in repr(stats) + stats.summary() + str(stats.as_dict())

        with pytest.raises(SDKError):
            await sdk.eventstreams.text(http_headers={"x-teapot": "json"})
    (failed,) = [r.getMessage() for r in caplog.records]
    assert failed.startswith(f"POST {eventstreams_server}/eventstreams/text: failed after 0 events")
    assert "SDKError" in failed and "418" in failed and "q-SECRET" not in failed


async def test_a_timeout_ends_a_plain_stream_logged_with_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def hold(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(_events(1, 1))
        await asyncio.sleep(3600)
        return response

    caplog.set_level(logging.INFO, logger="aiostreams")
    app = web.Application()
    app.router.add_get("/hold", hold)
    async with run_server(app) as url, aiohttp.ClientSession() as session:
        request = HTTPRequest("GET", f"{url}/hold", {}, {"token": "q-SECRET"})
        stream = await open_stream(session, request, aiostreams.SSEDecoder(), timeout=0.05)
        with pytest.raises(StreamTimeout):
            async with stream:
                async for _ in stream:
                    pass
    stats = stream.stats
    assert stats.events == 1 and isinstance(stats.error, StreamTimeout) and stats.closed
    (record,) = [r for r in caplog.records if r.name == "aiostreams.stream"]
    assert record.levelno == logging.INFO
    assert "failed after 1 events" in record.getMessage()
    assert "StreamTimeout" in record.getMessage() and "q-SECRET" not in record.getMessage()


async def test_merge_stats_aggregate_and_rank(eventstreams_server: str) -> None:
    sizes = [3, 5, 8, 13]
    async with aiohttp.ClientSession() as session:
        sources = [
            connect(
                f"{eventstreams_server}/load/chat?n={n}", session=session, reconnect_on_eof=False
            )
            for n in sizes
        ]
        async with merge(*sources) as merged:
            count = 0
            async for _key, _event in merged:
                count += 1
            stats = merged.stats
    assert count == sum(sizes)
    assert sorted(stats) == [0, 1, 2, 3] and len(stats) == 4
    assert stats.events == sum(sizes) and [stats[k].events for k in range(4)] == sizes
    assert stats.bytes == sum(s.bytes for s in stats.values()) > 0
    assert stats.open == 0 and stats.reconnects == 0 and stats.stalled(0.0) == []
    slowest = stats.slowest(2)
    assert len(slowest) == 2
    first, second = (s.time_to_first_event for _, s in slowest)
    assert first is not None and second is not None and first >= second
    assert all(
        (s.time_to_first_event or 0) <= (first or 0) for s in stats.values()
    )  # nothing slower left out


def test_redaction() -> None:
    assert redact_url("https://u:p@h.example:8443/a/b?token=t#frag") == "https://h.example:8443/a/b"
    assert redact_url("http://[::1/x?token=t") == "http://[::1/x"  # invalid: still cut
    assert redact_url("http://u:p@h/users/@me?t=1") == "http://h/users/@me"
    assert redact_url("u:p@h/x") == "h/x" and redact_url("http://h/x") == "http://h/x"
    text = "GET http://u:p@h/x?k=v failed; see https://h/y?z=1 and 'http://a@b/c'"
    assert redact_text(text) == "GET http://h/x failed; see https://h/y and 'http://b/c'"
    assert redact_text("no url here ?a=b") == "no url here ?a=b"


# -- the command line ---------------------------------------------------------------------


async def _run(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_stream_stats(eventstreams_server: str) -> None:
    code, stdout, stderr = await _run(
        "stream", "--stats", "-X", "POST", f"{eventstreams_server}/eventstreams/json?token=q-SECRET"
    )
    assert code == 0 and stdout.count("\n") == 4, stderr
    lines = stderr.splitlines()
    assert lines[0] == "stream ended after 4 events"
    assert lines[1] == f"stream               POST {eventstreams_server}/eventstreams/json"
    assert "events               4" in lines and "status               200" in lines
    assert any(line.startswith("time to first event  ") and "ms" in line for line in lines)
    assert "q-SECRET" not in stderr
    code, _, stderr = await _run("stream", f"{eventstreams_server}/load/chat?n=2")
    assert code == 0 and stderr.strip() == "stream ended after 2 events"  # no --stats: as before


async def test_cli_stream_stats_on_ctrl_c(eventstreams_server: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "stream", "--stats",
        f"{eventstreams_server}/load/chat?n=1&hold=30",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), 20)  # the first event is out
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    lines = stderr.decode().splitlines()
    assert process.returncode == 130 and lines[0] == "interrupted after 1 event"
    assert "events               1" in lines


@pytest.mark.parametrize("quiet", [False, True])
async def test_cli_serve_logs_one_line_per_request(quiet: bool) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "serve", "--port", "0", "--pace", "0",
        *(["--quiet"] if quiet else []),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        url = line.rsplit(" ", 1)[1].strip()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/eventstreams/json?key=q-SECRET") as response:
                await response.read()
            async with session.get(f"{url}/nowhere") as response:
                await response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    logged = [line for line in stderr.decode().splitlines() if " aiostreams.server " in line]
    if quiet:
        assert logged == [] and "aiostreams server stopped" in stderr.decode()
        return
    assert len(logged) == 2, stderr
    assert (
        logged[0].endswith(" s") and " POST /eventstreams/json 200 text/event-stream " in logged[0]
    )
    assert " GET /nowhere 404 " in logged[1]
    assert "q-SECRET" not in stderr.decode()


async def test_events_after_a_bad_one_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    async def bad_middle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(
            b'data: {"content": "a"}\n\ndata: {"oops": 1}\n\ndata: {"content": "b"}\n\n'
        )
        return response

    caplog.set_level(logging.INFO, logger="aiostreams")
    app = web.Application()
    app.router.add_get("/bad", bad_middle)
    async with run_server(app) as url, aiohttp.ClientSession() as session:
        decoder = operations.CHAT_SKIP_SENTINEL.decoder()
        stream = await open_stream(session, HTTPRequest("GET", f"{url}/bad"), decoder)
        async with stream:
            with pytest.raises(ResponseValidationError):
                async for _ in stream:
                    pass
            assert [event.data.content async for event in stream] == ["b"]
    assert stream.stats.events == 2 and stream.stats.error is None  # the bad one is not counted
    (record,) = caplog.records
    assert "bad event after 1 events (the stream goes on)" in record.getMessage()


@pytest.mark.parametrize("batches", [False, True])
async def test_until_counts_only_delivered_events(eventstreams_server: str, batches: bool) -> None:
    url = f"{eventstreams_server}/load/chat?n=50"  # one read brings many events
    async with connect(url, until=lambda e: e.data == '{"content": "tok3"}') as source:
        if batches:
            got = [e for batch in [b async for b in _batches(source)] for e in batch]
        else:
            got = [event async for event in source]
    assert len(got) == 3 and source.stats.events == 3


async def _batches(
    source: aiostreams.EventSource[aiostreams.ServerSentEvent],
) -> AsyncIterator[list[aiostreams.ServerSentEvent]]:
    while (batch := await source.next_batch()) is not None:
        yield batch


async def test_a_size_limit_is_logged(
    eventstreams_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiostreams")
    url = f"{eventstreams_server}/load/large?n=2&size=4096"
    with pytest.raises(EventTooLarge):
        async with connect(url, max_event_size=1024) as source:
            async for _ in source:
                pass
    assert isinstance(source.stats.error, EventTooLarge)
    (record,) = caplog.records
    assert record.name == "aiostreams.connect" and record.levelno == logging.INFO
    assert "hit a size limit after 0 events" in record.getMessage()


async def test_an_error_is_recorded_on_the_stream_it_came_from_only(
    eventstreams_server: str,
) -> None:
    async with aiohttp.ClientSession() as session:
        healthy = connect(f"{eventstreams_server}/load/chat?n=3", session=session)
        failing = connect(f"{eventstreams_server}/nowhere", session=session)
        await healthy.__anext__()
        try:
            await failing.__anext__()
        except HTTPStatusError:
            await healthy.aclose()  # closed while another stream's error is handled
        with pytest.raises(StreamTimeout):
            async with connect(f"{eventstreams_server}/load/chat?n=3", session=session) as third:
                await third.__anext__()
                raise StreamTimeout("event", 1.0, "", "elsewhere")  # not this stream's
    assert isinstance(failing.stats.error, HTTPStatusError) and failing.stats.status is None
    assert healthy.stats.error is None and healthy.stats.closed
    assert third.stats.error is None and third.stats.closed and third.stats.events == 3


async def test_sdk_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def json_op(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        await response.write(b'data: {"content": "ok"}\n\n')
        return response

    caplog.set_level(logging.DEBUG, logger="aiostreams")
    app = web.Application()
    app.router.add_post("/eventstreams/json", json_op)
    retries = RetryConfig("backoff", BackoffStrategy(1, 1, 1.0, 10_000), False)
    async with run_server(app) as url, SDK(server_url=url, global_query_param="q-SECRET") as sdk:
        stream = await sdk.eventstreams.json(retries=retries)
        async with stream:
            assert [e.data.content async for e in stream] == ["ok"]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and infos[0].startswith(
        f"POST {url}/eventstreams/json: HTTP 503, retry 1"
    )
    connecting = [r for r in caplog.records if "connecting" in r.getMessage()]
    assert len(connecting) == 2 and all(r.name == "aiostreams.request" for r in connecting)
    assert not any("q-SECRET" in text for text in _texts(caplog.records))
    assert stream.stats.events == 1 and stream.stats.status == 200


async def test_a_stream_made_from_a_response_counts_from_started_at(
    eventstreams_server: str,
) -> None:
    async with aiohttp.ClientSession() as session:
        started = asyncio.get_running_loop().time() - 5.0  # as if sent 5 s ago
        response = await session.get(f"{eventstreams_server}/load/chat?n=2")
        async with aiostreams.EventStream(
            response, aiostreams.SSEDecoder(), started_at=started
        ) as stream:
            assert len([event async for event in stream]) == 2
    headers, ttfe = stream.stats.time_to_headers, stream.stats.time_to_first_event
    assert headers is not None and ttfe is not None and 5.0 <= headers <= ttfe < 60
