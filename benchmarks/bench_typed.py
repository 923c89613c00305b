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
from ._corpora import (
    Corpus,
    anthropic_messages,
    chat_tokens,
    heartbeat_chat,
    multiline_events,
    openai_chat,
    wikimedia_events,
)
from ._harness import AIOSTREAMS, Case, Outcome, Runner, Suite
from ._schemas import TYPED

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


def realistic(quick: bool) -> list[tuple[str, Corpus]]:
    """(schema family, corpus) of the realistic rows; ``--quick`` divides by 50."""
    q = 50 if quick else 1
    return [
        ("openai", openai_chat(12_500 // q, 100 if quick else 500)),
        ("openai", openai_chat(12_500 // q, 20)),
        ("anthropic", anthropic_messages(12_500 // q)),
        ("chat", heartbeat_chat(50_000 // q, 20)),
        ("wikimedia", wikimedia_events(2_500 // q)),
        ("multiline", multiline_events(12_500 // q)),
    ]


def ours_realistic(family: str) -> Callable[[], Decode]:
    spec = TYPED[family]

    def factory() -> Decode:
        def run(chunks: _peers.Chunks) -> Outcome:
            decoder = spec.schema.decoder()
            n, last = 0, None
            for chunk in chunks:
                for event in decoder.feed(chunk):
                    n += 1
                    last = event
                if decoder.finished:
                    break
            return Outcome(n, None if last is None else spec.ours(last))

        return run

    return factory


def peer_realistic(
    events_factory: Callable[[], _peers.EventIter], family: str
) -> Callable[[], Decode]:
    spec = TYPED[family]

    def factory() -> Decode:
        events = events_factory()
        theirs, sentinel = spec.theirs, spec.sentinel

        def run(chunks: _peers.Chunks) -> Outcome:
            n, last = 0, None
            for sse in events(chunks):
                if sse.data == sentinel:
                    break
                last = theirs(sse.event, sse.data)
                n += 1
            return Outcome(n, None if last is None else spec.value(last))

        return run

    return factory


def expected(family: str, c: Corpus) -> tuple[int, str]:
    """Events a correct typed decode yields (the sentinel is not one) and its last value."""
    spec = TYPED[family]
    if spec.sentinel is not None:
        return c.events - 1, "stop"  # the last chunk before [DONE] carries finish_reason
    return c.events, spec.value(spec.theirs("", c.last_data))


REALISTIC_PEERS: dict[str, tuple[Callable[[], _peers.EventIter], str]] = {
    "httpx-sse + json.loads": (_peers.httpx_sse_events, "dict per event"),
    "openai + json.loads": (_peers.openai_events, "SSEDecoder.iter_bytes + json.loads"),
}


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
                case=f"{c.name} (uniform)",
                library=lib,
                make=make,
                events=c.events,
                nbytes=c.nbytes,
                last=f"tok{c.events - 1}",
                note=note,
            )
        )
    for family, rc in realistic(quick):
        events, last = expected(family, rc)
        sides = [(AIOSTREAMS, ours_realistic(family), "EventSchema(user Structs).decoder().feed")]
        sides += [
            (lib, peer_realistic(events_factory, family), note)
            for lib, (events_factory, note) in REALISTIC_PEERS.items()
        ]
        for lib, factory, note in sides:

            def make_r(factory: Callable[[], Decode] = factory, chunks: Any = rc.chunks) -> Runner:
                decode = factory()
                return lambda: decode(chunks)

            cases.append(
                Case(
                    case=rc.name,
                    library=lib,
                    make=make_r,
                    events=events,
                    nbytes=rc.nbytes,
                    last=last,
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
