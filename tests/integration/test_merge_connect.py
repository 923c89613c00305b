"""``merge(*[aiostreams.connect(u) for u in urls])`` works as written: the merge lends
its own session to the sources that have none, and closes it on exit."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
from aiohttp import web

import aiostreams
from aiostreams.server import run_server

SOURCES = 100
OPEN = web.AppKey("open", list)


async def _one_event_then_hold(request: web.Request) -> web.StreamResponse:
    opened: list[int] = request.app[OPEN]
    opened.append(1)
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"id: 1\ndata: %s\n\n" % request.match_info["n"].encode())
        await asyncio.sleep(3600)  # held until the client leaves
        return response
    finally:
        opened.pop()


async def _wait_until(condition: object, what: str) -> None:
    for _ in range(500):  # server-side state has no event to wait on: a bounded poll
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_merge_of_connect_sources_without_a_session() -> None:
    app = web.Application()
    app[OPEN] = []
    app.router.add_get("/s/{n}", _one_event_then_hold)
    async with run_server(app) as url:
        sources = [aiostreams.connect(f"{url}/s/{n}") for n in range(SOURCES)]
        assert all(source.wants_session for source in sources)
        seen: set[str] = set()
        async with aiostreams.merge(*sources) as merged:
            async for _, event in merged:
                seen.add(event.data)
                if len(seen) == SOURCES:
                    break
            assert len(app[OPEN]) == SOURCES
            sessions = {id(source._session) for source in sources}
            assert len(sessions) == 1  # one shared session, one connection pool
            shared = merged._session
            assert isinstance(shared, aiohttp.ClientSession) and not shared.closed
        assert seen == {str(n) for n in range(SOURCES)}
        assert shared.closed and merged._session is None
        assert all(source.closed for source in sources)
        await _wait_until(lambda: not app[OPEN], "the server still holds connections")
    gc.collect()  # an unclosed session would warn here (filterwarnings=error)


async def test_a_source_with_its_own_session_keeps_it() -> None:
    app = web.Application()
    app[OPEN] = []
    app.router.add_get("/s/{n}", _one_event_then_hold)
    async with run_server(app) as url, aiohttp.ClientSession() as mine:
        own = aiostreams.connect(f"{url}/s/0", session=mine)
        lent = aiostreams.connect(f"{url}/s/1")
        async with aiostreams.merge(own, lent) as merged:
            seen = set()
            async for _, event in merged:
                seen.add(event.data)
                if len(seen) == 2:
                    break
            assert own._session is mine and lent._session is merged._session
            assert lent._session is not mine
        assert not mine.closed  # the caller's session: the merge never closes it
        await _wait_until(lambda: not app[OPEN], "the server still holds connections")


async def test_merge_of_sources_with_sessions_makes_none() -> None:
    app = web.Application()
    app[OPEN] = []
    app.router.add_get("/s/{n}", _one_event_then_hold)
    async with run_server(app) as url, aiohttp.ClientSession() as mine:
        merged = aiostreams.merge(aiostreams.connect(f"{url}/s/0", session=mine))
        async with merged:
            async for _, event in merged:
                assert event.data == "0"
                break
            assert merged._session is None
