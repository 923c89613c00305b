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


def json_loads(events_factory: Callable[[], _peers.EventIter]) -> Callable[[], Decode]:
    def factory() -> Decode:
        events = events_factory()
        loads = json.loads

        def run(chunks: _peers.Chunks) -> Outcome:
            n, last = 0, None
            for sse in events(chunks):
                if sse.data == SENTINEL:
                    break
                last = loads(sse.data)
                n += 1
            return Outcome(n, None if last is None else last["content"])

        return run

    return factory


def msgspec_struct(events_factory: Callable[[], _peers.EventIter]) -> Callable[[], Decode]:
    """Not one of the issue's named peers: a user who already knows msgspec would
    write this, so it shows what aiostreams' framing adds on top."""

    def factory() -> Decode:
        import msgspec

        class ChatCompletionEventData(msgspec.Struct):
            content: str

        events = events_factory()
        decode = msgspec.json.Decoder(ChatCompletionEventData).decode

        def run(chunks: _peers.Chunks) -> Outcome:
            n = 0
            last: Any = None
            for sse in events(chunks):
                if sse.data == SENTINEL:
                    break
                last = decode(sse.data)
                n += 1
            return Outcome(n, None if last is None else last.content)

        return run

    return factory


def pydantic_model(events_factory: Callable[[], _peers.EventIter]) -> Callable[[], Decode]:
    def factory() -> Decode:
        from pydantic import BaseModel

        class ChatCompletionEventData(BaseModel):
            content: str

        events = events_factory()
        validate = ChatCompletionEventData.model_validate_json

        def run(chunks: _peers.Chunks) -> Outcome:
            n = 0
            last: Any = None
            for sse in events(chunks):
                if sse.data == SENTINEL:
                    break
                last = validate(sse.data)
                n += 1
            return Outcome(n, None if last is None else last.content)

        return run

    return factory


LIBRARIES: dict[str, tuple[Callable[[], Decode], str]] = {
    AIOSTREAMS: (aiostreams_typed, "operations.CHAT_SKIP_SENTINEL.decoder().feed → Structs"),
    "httpx-sse + json.loads": (json_loads(_peers.httpx_sse_events), "dict per event"),
    "httpx-sse + pydantic": (
        pydantic_model(_peers.httpx_sse_events),
        "BaseModel.model_validate_json(sse.data)",
    ),
    "openai + json.loads": (json_loads(_peers.openai_events), "SSEDecoder.iter_bytes + sse.json()"),
    "httpx-sse + msgspec": (
        msgspec_struct(_peers.httpx_sse_events),
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
