"""End to end on loopback (issue 4): a server in another process streams 200k chat
events as fast as TCP allows; each client consumes the same response.

* aiostreams — the SDK's path: ``create_session`` + ``open_stream`` with the
  chat-skip-sentinel schema, ``async for`` over typed ``ChatCompletionEvent``s;
* aiostreams (batches) — the same, one ``await`` per chunk (``stream.batches()``);
* aiostreams (raw) — the same with ``SSEDecoder`` (``ServerSentEvent``s);
* httpx + httpx-sse + ``json.loads`` — ``aconnect_sse(...).aiter_sse()``, what a
  user of httpx-sse writes;
* aiohttp raw read — ``content.iter_any()`` counting bytes: no parsing at all,
  the ceiling for any client on this machine.

The server (``aiostreams serve --pace 0`` via ``ServerProcess``) builds the body
once and caches it, so every run gets identical bytes at full speed.
"""

from __future__ import annotations

import asyncio
import atexit
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ._harness import AIOSTREAMS, Case, Outcome, Runner, Suite

EVENTS = 200_000
SENTINEL = "[DONE]"

_server: Any = None


def server_url() -> str:
    """Start the server process once per benchmark run (stopped at exit)."""
    global _server
    if _server is None:
        from aiostreams.server import ServerProcess

        _server = ServerProcess(pace=0.0)
        _server.__enter__()
        atexit.register(_server.__exit__, None, None, None)
    url: str = _server.url
    return url


class LoopRunner:
    """Runs one async client per repeat on its own event loop (closed by the harness)."""

    def __init__(self, client: Callable[[str], Awaitable[Outcome]], url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = client
        self.url = url

    def __call__(self) -> Outcome:
        return self.loop.run_until_complete(self.client(self.url))

    def close(self) -> None:
        self.loop.close()


async def aiostreams_typed(url: str) -> Outcome:
    from aiostreams._request import HTTPRequest, open_stream
    from aiostreams._session import create_session
    from aiostreams.models.operations import CHAT_SKIP_SENTINEL

    async with create_session() as session:
        stream = await open_stream(session, HTTPRequest("GET", url), CHAT_SKIP_SENTINEL.decoder())
        n, last = 0, None
        async with stream:
            async for event in stream:
                n += 1
                last = event
        return Outcome(n, None if last is None else last.data.content)


async def aiostreams_batches(url: str) -> Outcome:
    from aiostreams._request import HTTPRequest, open_stream
    from aiostreams._session import create_session
    from aiostreams.models.operations import CHAT_SKIP_SENTINEL

    async with create_session() as session:
        stream = await open_stream(session, HTTPRequest("GET", url), CHAT_SKIP_SENTINEL.decoder())
        n, last = 0, None
        async with stream:
            async for batch in stream.batches():
                n += len(batch)
                last = batch[-1]
        return Outcome(n, None if last is None else last.data.content)


async def aiostreams_raw(url: str) -> Outcome:
    from aiostreams import SSEDecoder
    from aiostreams._request import HTTPRequest, open_stream
    from aiostreams._session import create_session

    async with create_session() as session:
        stream = await open_stream(session, HTTPRequest("GET", url), SSEDecoder())
        n, last = 0, None
        async with stream:
            async for event in stream:
                if event.data == SENTINEL:
                    break
                n += 1
                last = event
        return Outcome(n, None if last is None else json.loads(last.data)["content"])


async def httpx_sse_json(url: str) -> Outcome:
    import httpx
    from httpx_sse import aconnect_sse

    loads = json.loads
    n, last = 0, None
    async with (
        httpx.AsyncClient(timeout=None) as client,
        aconnect_sse(client, "GET", url) as source,
    ):
        async for sse in source.aiter_sse():
            if sse.data == SENTINEL:
                break
            last = loads(sse.data)
            n += 1
    return Outcome(n, None if last is None else last["content"])


def raw_read(nbytes: int, events: int) -> Callable[[str], Awaitable[Outcome]]:
    async def client(url: str) -> Outcome:
        import aiohttp

        received = 0
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            async for chunk in response.content.iter_any():
                received += len(chunk)
        if received != nbytes:
            raise AssertionError(f"read {received} bytes, expected {nbytes}")
        return Outcome(events, f"tok{events}")  # counted in bytes, not parsed

    return client


LIBRARIES: dict[str, tuple[Callable[[str], Awaitable[Outcome]] | None, str]] = {
    AIOSTREAMS: (aiostreams_typed, "open_stream + CHAT_SKIP_SENTINEL schema → Structs"),
    "aiostreams (batches)": (aiostreams_batches, "the same, `async for batch in stream.batches()`"),
    "aiostreams (raw ServerSentEvent)": (aiostreams_raw, "open_stream + SSEDecoder"),
    "httpx + httpx-sse + json.loads": (httpx_sse_json, "aconnect_sse().aiter_sse()"),
    "aiohttp raw read (ceiling)": (None, "content.iter_any(), bytes counted, no parsing"),
}


def body_size(events: int) -> int:
    chat = sum(len(b'data: {"content": "tok%d"}\n\n' % i) for i in range(1, events + 1))
    return chat + len(b"data: [DONE]\n\n")


def build(quick: bool) -> list[Case]:
    events = EVENTS // (20 if quick else 1)
    nbytes = body_size(events)
    cases = []
    for library, (client, note) in LIBRARIES.items():

        def make(client: Callable[[str], Awaitable[Outcome]] | None = client) -> Runner:
            url = f"{server_url()}/load/chat?n={events}&chunk=16384&sentinel=1"
            runner = LoopRunner(client or raw_read(nbytes, events), url)
            runner()  # warm-up: the server builds and caches the body
            return runner

        cases.append(
            Case(
                case=f"chat-{events // 1000}k-loopback",
                library=library,
                make=make,
                events=events,
                nbytes=nbytes,
                last=f"tok{events}",
                note=note,
            )
        )
    return cases


SUITE = Suite(
    name="e2e",
    title="End to end: loopback HTTP → typed events",
    build=build,
    description=(
        "A server in a separate process (`aiostreams serve --pace 0`) streams 200k chat "
        "events + `[DONE]` in 16 KiB writes as fast as TCP allows; each client opens the "
        "same URL and consumes it. The raw aiohttp read does no parsing: it is the ceiling."
    ),
    notes=(
        (
            "The server shares the machine's 2 cores with the client, so all clients are "
            "bounded by the server's send rate as well as their own work."
        ),
    ),
)
