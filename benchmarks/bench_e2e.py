"""End to end on loopback (issues 4 and 12): a server in another process streams
a corpus as fast as TCP allows, in 16 KiB writes; each client consumes the same
response through its public API, into typed events.

Corpora (``_corpus_server``): OpenAI chat.completion.chunk with a keep-alive every
500 events and ``[DONE]``; an Anthropic messages stream with a ping every 20
events; chat tokens with a heartbeat comment every 1,000; the uniform chat-token
stream (today's shape) for the SDK row.

* aiostreams ``connect()`` — ``connect(url, decoder=EventSchema(user Structs))``,
  ``async for`` over typed events (public API, the user's own schema);
* aiostreams SDK — ``SDK(server_url=...).eventstreams.chat_skip_sentinel(...)``,
  the generated SDK unchanged (uniform chat corpus only: it is the SDK's shape);
* httpx + httpx-sse + ``json.loads`` — one ``AsyncClient(timeout=None)``,
  ``aconnect_sse(...).aiter_sse()``, stop at ``[DONE]``, ``json.loads`` each data;
* aiohttp raw read (ceiling) — ``content.iter_any()`` counting bytes and blank
  lines: no parsing at all, the ceiling for any client on this machine.

Every client runs in its own event loop per repeat, in the same process, against
the same server process; the body is built once by the server and cached.
"""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Awaitable, Callable

from ._corpora import Corpus
from ._corpus_server import CORPORA, CorpusServer
from ._harness import AIOSTREAMS, Case, Outcome, Runner, Suite
from ._schemas import TYPED, TypedCorpus

SENTINEL = "[DONE]"
#: (corpus served, schema family, events at full size)
CASES = (
    ("openai", "openai", 20_000),
    ("anthropic", "anthropic", 20_000),
    ("chat-heartbeat-1000", "chat", 100_000),
    ("chat", "chat", 100_000),
)
SDK_CASE = "chat"

_server: CorpusServer | None = None


def server_url() -> str:
    """Start the corpus server once per benchmark run (stopped at exit)."""
    global _server
    if _server is None:
        _server = CorpusServer().__enter__()
        atexit.register(_server.__exit__, None, None, None)
    return _server.url


Client = Callable[[str], Awaitable[Outcome]]


class LoopRunner:
    """Runs one async client per repeat on its own event loop (closed by the harness)."""

    def __init__(self, client: Client, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = client
        self.url = url

    def __call__(self) -> Outcome:
        return self.loop.run_until_complete(self.client(self.url))

    def close(self) -> None:
        self.loop.close()


def aiostreams_connect(spec: TypedCorpus) -> Client:
    async def client(url: str) -> Outcome:
        from aiostreams import connect

        n, last = 0, None
        async with connect(url, decoder=spec.schema, reconnect_on_eof=False) as events:
            async for event in events:
                n += 1
                last = event
        return Outcome(n, None if last is None else spec.ours(last))

    return client


def aiostreams_sdk(events: int) -> Client:
    async def client(url: str) -> Outcome:
        from aiostreams import SDK

        n, last = 0, None
        async with SDK(server_url=url) as sdk:
            stream = await sdk.eventstreams.chat_skip_sentinel(
                request={"prompt": "bench"}, http_headers={"X-Events": str(events)}
            )
            assert not isinstance(stream, list)
            async with stream:
                async for event in stream:
                    n += 1
                    last = event
        return Outcome(n, None if last is None else last.data.content)

    return client


def httpx_sse_json(spec: TypedCorpus) -> Client:
    async def client(url: str) -> Outcome:
        import httpx
        from httpx_sse import aconnect_sse

        theirs = spec.theirs
        n, last = 0, None
        async with (
            httpx.AsyncClient(timeout=None) as http,
            aconnect_sse(http, "GET", url) as source,
        ):
            async for sse in source.aiter_sse():
                if sse.data == SENTINEL:
                    break
                last = theirs(sse.event, sse.data)
                n += 1
        return Outcome(n, None if last is None else spec.value(last))

    return client


def raw_read(corpus: Corpus, events: int, last: str) -> Client:
    async def client(url: str) -> Outcome:
        from aiostreams import create_session  # aiohttp tuned as for aiostreams

        received = blank = 0
        async with create_session() as session, session.get(url) as response:
            async for chunk in response.content.iter_any():
                received += len(chunk)
                blank += chunk.count(b"\n\n")
        if received != corpus.nbytes or blank == 0:
            raise AssertionError(f"read {received} bytes, expected {corpus.nbytes}")
        return Outcome(events, last)  # counted in bytes, not parsed

    return client


def _expected(family: str, corpus: Corpus) -> tuple[int, str]:
    spec = TYPED[family]
    if corpus.last_data == SENTINEL:  # the sentinel is not an event of the typed stream
        if family == "openai":
            return corpus.events - 1, "stop"
        return corpus.events, f"tok{corpus.events - 1}"
    return corpus.events, spec.value(spec.theirs("", corpus.last_data))


def build(quick: bool) -> list[Case]:
    cases = []
    for name, family, full in CASES:
        n = full // (20 if quick else 1)
        corpus = CORPORA[name](n)
        spec = TYPED[family]
        events, last = _expected(family, corpus)
        url = f"/corpus/{name}?n={n}"
        if name == SDK_CASE:  # the uniform row measures the generated SDK
            ours: tuple[str, Client, str, str] = (
                AIOSTREAMS, aiostreams_sdk(n), "SDK().eventstreams.chat_skip_sentinel", ""
            )  # fmt: skip
        else:
            ours = (AIOSTREAMS, aiostreams_connect(spec), "connect(url, decoder=schema)", url)
        clients = [
            ours,
            ("httpx + httpx-sse + json.loads", httpx_sse_json(spec), "aconnect_sse", url),
            ("aiohttp raw read (ceiling)", raw_read(corpus, events, last), "no parsing", url),
        ]
        label = f"{corpus.name}-loopback" + (" (uniform, SDK)" if name == SDK_CASE else "")
        for library, client, note, path in clients:

            def make(client: Client = client, path: str = path) -> Runner:
                runner = LoopRunner(client, server_url() + path)
                runner()  # warm-up: the server builds and caches the body
                return runner

            cases.append(
                Case(
                    case=label,
                    library=library,
                    make=make,
                    events=events,
                    nbytes=corpus.nbytes,
                    last=last,
                    note=note,
                )
            )
    return cases


SUITE = Suite(
    name="e2e",
    title="End to end: loopback HTTP → typed events",
    build=build,
    description=(
        "A server in a separate process streams each corpus in 16 KiB writes as fast as "
        "TCP allows; each client opens the same URL through its public API and turns every "
        "event into a typed value (aiostreams: the user's msgspec Structs; httpx-sse: "
        "json.loads). The raw aiohttp read does no parsing: it is the ceiling."
    ),
    notes=(
        (
            "The server shares the machine's 2 cores with the client, so all clients are "
            "bounded by the server's send rate as well as their own work."
        ),
        (
            "The SDK row points the generated SDK at the corpus server (`server_url`), "
            "whose `/eventstreams/chat-chunked` answers the uniform chat corpus."
        ),
    ),
)
