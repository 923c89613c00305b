"""``connect(resume=..., reconnect_on_error=...)``: resume beyond ``Last-Event-ID``,
against a real loopback server that resumes by a cursor in the query string and
sends an ``overloaded`` error event inside a 200 once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from aiohttp import web

import aiostreams
from aiostreams import EventSchema, Reconnect, ResumeRequest
from aiostreams.errors import StreamError
from aiostreams.server import run_server

TOTAL = 6
REQUESTS = web.AppKey("requests", list)


class Token(msgspec.Struct):
    seq: int


class TokenEvent(msgspec.Struct, tag_field="event", tag="token"):
    data: Token


class Overloaded(msgspec.Struct):
    message: str


async def _cursor_stream(request: web.Request) -> web.StreamResponse:
    """Events carry their position in ``data`` (no ``id:``): the client resumes with
    ``?starting_after=N``.  The first connection breaks off after event 3 with an
    ``overloaded`` error event, inside the 200."""
    seen: list[tuple[str | None, str | None]] = request.app[REQUESTS]
    seen.append((request.query.get("starting_after"), request.headers.get("Last-Event-ID")))
    after = int(request.query.get("starting_after", "0"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"retry: 0\n\n")
    for seq in range(after + 1, TOTAL + 1):
        await response.write(b'event: token\ndata: {"seq": %d}\n\n' % seq)
        if seq == 3 and len(seen) == 1:
            await response.write(b'event: error\ndata: {"message": "overloaded"}\n\n')
            await asyncio.sleep(3600)  # held: only the client's reconnect ends it
    return response


@pytest.fixture
async def cursor_server() -> AsyncIterator[tuple[str, list[tuple[str | None, str | None]]]]:
    app = web.Application()
    app[REQUESTS] = []
    app.router.add_get("/s", _cursor_stream)
    async with run_server(app) as url:
        yield f"{url}/s?model=m1", app[REQUESTS]


def _schema() -> EventSchema[TokenEvent]:
    return EventSchema(TokenEvent, errors={"error": Overloaded})


def _overloaded(error: StreamError) -> bool:
    return isinstance(error.payload, Overloaded) and error.payload.message == "overloaded"


async def test_resume_by_cursor_after_an_overloaded_error_event(
    cursor_server: tuple[str, list[tuple[str | None, str | None]]],
) -> None:
    url, requests = cursor_server
    reconnects: list[Reconnect] = []
    built: list[tuple[int, dict[str, str]]] = []

    def resume(last: TokenEvent, request: ResumeRequest) -> ResumeRequest:
        built.append((last.data.seq, dict(request.params)))
        return request.with_params(starting_after=str(last.data.seq))

    async with aiostreams.connect(
        url,
        decoder=_schema(),
        resume=resume,
        reconnect_on_error=_overloaded,
        on_reconnect=reconnects.append,
        reconnect_on_eof=False,
        max_reconnects=2,
    ) as events:
        seqs = [event.data.seq async for event in events]
    assert seqs == list(range(1, TOTAL + 1))  # each once, in order, across the reconnect
    assert requests == [(None, None), ("3", None)]  # the cursor, not Last-Event-ID
    assert built == [(3, {"model": "m1"})]  # the URL's own query is kept
    assert [(r.reason, type(r.error)) for r in reconnects] == [("error", StreamError)]
    assert events.stats.reconnects == 1


async def test_an_error_event_the_predicate_rejects_is_raised(
    cursor_server: tuple[str, list[tuple[str | None, str | None]]],
) -> None:
    url, requests = cursor_server
    async with aiostreams.connect(
        url, decoder=_schema(), reconnect_on_error=lambda error: False, max_reconnects=2
    ) as events:
        seqs: list[int] = []
        with pytest.raises(StreamError) as info:
            async for event in events:
                seqs.append(event.data.seq)  # noqa: PERF401 - the events before the error
    assert seqs == [1, 2, 3] and _overloaded(info.value)
    assert len(requests) == 1 and events.reconnects == 0


async def test_without_resume_the_reconnect_sends_the_original_request(
    cursor_server: tuple[str, list[tuple[str | None, str | None]]],
) -> None:
    url, requests = cursor_server
    async with aiostreams.connect(
        url,
        decoder=_schema(),
        reconnect_on_error=_overloaded,
        reconnect_on_eof=False,
        max_reconnects=2,
    ) as events:
        seqs = [event.data.seq async for event in events]
    # No id and no resume=: the server starts over (a duplicate, never a loss).
    assert seqs == [1, 2, 3, 1, 2, 3, 4, 5, 6]
    assert requests == [(None, None), (None, None)]


async def test_resume_must_return_a_resume_request(
    cursor_server: tuple[str, list[tuple[str | None, str | None]]],
) -> None:
    url, _ = cursor_server
    source = aiostreams.connect(
        url,
        decoder=_schema(),
        resume=lambda last, request: {"starting_after": "3"},  # type: ignore[arg-type, return-value]
        reconnect_on_error=_overloaded,
    )
    with pytest.raises(TypeError, match="must return a ResumeRequest, got dict"):
        async with source as events:
            async for _ in events:
                pass
    assert source.closed


def test_hooks_must_be_callables() -> None:
    with pytest.raises(TypeError, match="resume must be a callable"):
        aiostreams.connect("http://127.0.0.1:1/", resume="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="reconnect_on_error must be a callable"):
        aiostreams.connect("http://127.0.0.1:1/", reconnect_on_error=1)  # type: ignore[call-overload]
