"""Typed decoding (issue 3): bytes in 16 KiB chunks -> chat-token objects.

200k ``data: {"content": "tokN"}`` events then ``data: [DONE]``.  aiostreams
decodes them with the chat-skip-sentinel endpoint's schema into
``ChatCompletionEvent(data=ChatCompletionEventData(content=...))`` Structs; the
peers do what their users do: frame with httpx-sse or openai's decoder, stop at
``[DONE]``, then ``json.loads`` each event's data into a dict, or validate it with
a pydantic v2 model (``model_validate_json``).  Same chunks, same process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import _peers
from ._corpora import Corpus, chat_tokens
from ._harness import AIOSTREAMS, Case, Outcome, Runner, Suite

Decode = Callable[[_peers.Chunks], Outcome]

SENTINEL = "[DONE]"


def aiostreams_typed() -> Decode:
    from aiostreams.models.operations import CHAT_SKIP_SENTINEL

    def run(chunks: _peers.Chunks) -> Outcome:
        decoder = CHAT_SKIP_SENTINEL.decoder()
        n, last = 0, None
        for chunk in chunks:
            for event in decoder.feed(chunk):
                n += 1
                last = event
            if decoder.finished:
                break
        return Outcome(n, None if last is None else last.data.content)

    return run


def peer(
    events_factory: Callable[[], _peers.EventIter],
    make_decode: Callable[[], Callable[[str], Any]],
    content: Callable[[Any], str],
) -> Callable[[], Decode]:
    """A peer as its users write it: frame, stop at ``[DONE]``, decode each data."""

    def factory() -> Decode:
        events = events_factory()
        decode = make_decode()

        def run(chunks: _peers.Chunks) -> Outcome:
            n = 0
            last: Any = None
            for sse in events(chunks):
                if sse.data == SENTINEL:
                    break
                last = decode(sse.data)
                n += 1
            return Outcome(n, None if last is None else content(last))

        return run

    return factory


def json_loads() -> Callable[[str], Any]:
    return json.loads


def pydantic_model() -> Callable[[str], Any]:
    from pydantic import BaseModel

    class ChatCompletionEventData(BaseModel):
        content: str

    return ChatCompletionEventData.model_validate_json


def msgspec_struct() -> Callable[[str], Any]:
    """Not one of the issue's named peers: a user who already knows msgspec would
    write this, so it shows what aiostreams' framing adds on top."""
    import msgspec

    class ChatCompletionEventData(msgspec.Struct):
        content: str

    return msgspec.json.Decoder(ChatCompletionEventData).decode


def _key(obj: Any) -> str:
    return str(obj["content"])


def _attr(obj: Any) -> str:
    return str(obj.content)


LIBRARIES: dict[str, tuple[Callable[[], Decode], str]] = {
    AIOSTREAMS: (aiostreams_typed, "operations.CHAT_SKIP_SENTINEL.decoder().feed → Structs"),
    "httpx-sse + json.loads": (
        peer(_peers.httpx_sse_events, json_loads, _key),
        "dict per event",
    ),
    "httpx-sse + pydantic": (
        peer(_peers.httpx_sse_events, pydantic_model, _attr),
        "BaseModel.model_validate_json(sse.data)",
    ),
    "openai + json.loads": (
        peer(_peers.openai_events, json_loads, _key),
        "SSEDecoder.iter_bytes + json.loads(sse.data)",
    ),
    "httpx-sse + msgspec": (
        peer(_peers.httpx_sse_events, msgspec_struct, _attr),
        "not a named peer: msgspec.json.Decoder(Struct).decode(sse.data)",
    ),
}


def corpus(quick: bool) -> Corpus:
    return chat_tokens(200_000 // (50 if quick else 1), sentinel=True)


def build(quick: bool) -> list[Case]:
    c = corpus(quick)
    chunks = c.chunks
    cases = []
    for lib, (factory, note) in LIBRARIES.items():

        def make(factory: Callable[[], Decode] = factory) -> Runner:
            decode = factory()
            return lambda: decode(chunks)

        cases.append(
            Case(
                case=c.name,
                library=lib,
                make=make,
                events=c.events,
                nbytes=c.nbytes,
                last=f"tok{c.events - 1}",
                note=note,
            )
        )
    return cases


SUITE = Suite(
    name="typed",
    title="Typed decoding: bytes → chat-event objects",
    build=build,
    description=(
        "200k chat-token events + `[DONE]` in 16 KiB chunks; aiostreams yields msgspec "
        "`ChatCompletionEvent` Structs and stops at the sentinel; peers stop at `[DONE]` "
        "and decode each event's data (json.loads → dict, or a pydantic v2 model)."
    ),
)
