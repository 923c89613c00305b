"""Framing: bytes -> events, every library fed the same chunks in the same process.

Uniform corpora (issue 2 §7): 200k ``data: {"content": "tokN"}`` events in 16 KiB
chunks; 100k ``id:``/``event:``/``data:`` events in 16 KiB chunks; one 2 MiB
single-line event in 1536-byte chunks.

Realistic corpora (issue 12, built seeded in ``_corpora``): OpenAI chunks with
keep-alives and ``[DONE]`` (LF and CRLF), an Anthropic messages stream with pings,
chat tokens with heartbeat comments at three rates, Wikimedia-EventStreams-like
events, multi-line text events, event sizes mixed from 16 B to 1 MiB in 256 KiB
reads, a 2 MiB event followed by small ones in one read, and a stream that changes
shape every few events.  ``--quick`` divides the uniform counts by 200, the
realistic ones by 50 (sizes by 16).
"""

from __future__ import annotations

from collections.abc import Callable

from . import _peers
from ._corpora import (
    Corpus,
    anthropic_messages,
    big_event,
    big_then_small,
    chat_tokens,
    crlf_openai,
    heartbeat_chat,
    mixed_sizes,
    multiline_events,
    openai_chat,
    rich_events,
    shape_changing,
    wikimedia_events,
)
from ._harness import AIOSTREAMS, Case, Outcome, Runner, Suite

#: library -> factory of its framer (imports happen there, outside the timing)
LIBRARIES: dict[str, Callable[[], _peers.Framer] | None] = {
    AIOSTREAMS: _peers.aiostreams_framing,
    "httpx-sse": _peers.httpx_sse_framing,
    "httpx2": _peers.httpx2_framing,
    "openai": _peers.openai_framing,
    "sseclient-py": _peers.sseclient_framing,
    "aiohttp-sse-client2": None,  # needs an event loop: built per case below
}

NOTES: dict[str, str] = {
    "httpx-sse": "EventSource.iter_sse (httpx TextDecoder + SSELineDecoder + SSEDecoder)",
    "httpx2": "httpx2 EventSource iteration (_SSEParser over iter_text)",
    "openai": "SSEDecoder.iter_bytes",
    "sseclient-py": "SSEClient(iter(chunks)).events()",
    "aiohttp-sse-client2": "EventSource.__anext__ over an aiohttp StreamReader (readline)",
}


def corpora(quick: bool) -> list[Corpus]:
    """The uniform corpora (today's benchmark shapes)."""
    scale = 200 if quick else 1
    return [
        chat_tokens(200_000 // scale),
        rich_events(100_000 // scale),
        big_event((2 << 20) // (16 if quick else 1)),
    ]


def realistic_corpora(quick: bool) -> list[Corpus]:
    """The shapes real servers send (see the module doc).  Sized so that a repeat
    takes tens of milliseconds for the peers: the suite must fit its time budget."""
    q = 50 if quick else 1
    size = 16 if quick else 1
    return [
        openai_chat(12_500 // q, 100 if quick else 500),
        openai_chat(12_500 // q, 20),
        crlf_openai(12_500 // q),
        anthropic_messages(12_500 // q, 20),
        heartbeat_chat(50_000 // q, 100 if quick else 1000),
        heartbeat_chat(50_000 // q, 20),
        heartbeat_chat(50_000 // q, 1),
        wikimedia_events(2_500 // q),
        multiline_events(12_500 // q),
        mixed_sizes((8 << 20) // size),
        big_then_small((2 << 20) // size, 100),
        shape_changing(12_500 // q),
    ]


#: Libraries measured on the realistic corpora: the peers that decode them (the
#: others are measured on the uniform corpora, where they are slowest anyway).
REALISTIC_LIBRARIES = (AIOSTREAMS, "httpx-sse", "httpx2", "openai")


def case_for(corpus: Corpus, library: str, factory: Callable[[], _peers.Framer] | None) -> Case:
    chunks = corpus.chunks

    def make() -> Runner:
        if factory is not None:
            framer = factory()
            return lambda: framer(chunks)
        return _BoundAsync(_peers.AiohttpSSEClient2Framing(corpus.events), chunks)

    return Case(
        case=corpus.name,
        library=library,
        make=make,
        events=corpus.events,
        nbytes=corpus.nbytes,
        last=corpus.last_data,
        note=NOTES.get(library, ""),
        params={"chunk_size": corpus.chunk_size},
    )


class _BoundAsync:
    """A runner for an async peer: owns its event loop, closed by the harness."""

    def __init__(self, peer: _peers.AiohttpSSEClient2Framing, chunks: tuple[bytes, ...]) -> None:
        self.peer = peer
        self.chunks = chunks

    def __call__(self) -> Outcome:
        return self.peer(self.chunks)

    def close(self) -> None:
        self.peer.close()


def build(quick: bool) -> list[Case]:
    cases = [case_for(c, lib, fn) for c in corpora(quick) for lib, fn in LIBRARIES.items()]
    for c in realistic_corpora(quick):
        cases += [case_for(c, lib, LIBRARIES[lib]) for lib in REALISTIC_LIBRARIES]
    return cases


SUITE = Suite(
    name="framing",
    title="Framing: bytes → events (same chunks, same process)",
    build=build,
    description=(
        "Each library decodes the same in-memory chunks with its own SSE code, "
        "driven as its client drives it on a response body; every run is checked "
        "(event count and the last event's data). The first three cases are the "
        "uniform corpora (every event the same shape); the others are realistic "
        "(keep-alives, pings, ids, multi-line data, CRLF, mixed sizes, shape changes)."
    ),
    notes=(
        (
            "Realistic rows are measured for aiostreams, httpx-sse, httpx2 and openai; "
            "sseclient-py and aiohttp-sse-client2 only on the uniform rows (the suite "
            "must stay within its time budget)."
        ),
        (
            "httpx2 has an SSE decoder (httpx2._sse: `_SSELineDecoder` + `_SSEEventDecoder`, "
            "derived from httpx-sse), driven through its `EventSource` with its default "
            "`max_event_size` (1 MiB), which refuses the 2 MiB event."
        ),
        (
            "aiohttp-sse-client2 reads `response.content` line by line (aiohttp "
            "`StreamReader.readline`, limited to 2 x `read_bufsize` = 512 KiB by default): "
            "it is driven here through a real StreamReader holding the chunks, so a line "
            "longer than that fails as it would on a real connection."
        ),
    ),
)
