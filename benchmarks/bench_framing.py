"""Framing: bytes -> events, every library fed the same chunks in the same process.

Corpora (issue 2 §7): 200k ``data: {"content": "tokN"}`` events in 16 KiB
chunks; 100k ``id:``/``event:``/``data:`` events in 16 KiB chunks; one 2 MiB
single-line event in 1536-byte chunks.  ``--quick`` divides them by 200 (the big
event becomes 128 KiB).
"""

from __future__ import annotations

from collections.abc import Callable

from . import _peers
from ._corpora import Corpus, big_event, chat_tokens, rich_events
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
    scale = 200 if quick else 1
    return [
        chat_tokens(200_000 // scale),
        rich_events(100_000 // scale),
        big_event((2 << 20) // (16 if quick else 1)),
    ]


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
    return [case_for(c, lib, fn) for c in corpora(quick) for lib, fn in LIBRARIES.items()]


SUITE = Suite(
    name="framing",
    title="Framing: bytes → events (same chunks, same process)",
    build=build,
    description=(
        "Each library decodes the same in-memory chunks with its own SSE code, "
        "driven as its client drives it on a response body; every run is checked "
        "(event count and the last event's data)."
    ),
    notes=(
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
