"""Deterministic byte corpora, built once per process and shared by every library.

A corpus is the exact list of chunks each library is fed, plus what a correct
decoder must produce from it (the event count and the last event's data), so a
suite can tell a wrong answer from a slow one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = [
    "Corpus",
    "big_event",
    "chat_tokens",
    "chunked",
    "rich_events",
    "sized_events",
]


@dataclass(frozen=True)
class Corpus:
    """The chunks of one stream and the answer a correct decoder gives."""

    name: str
    chunks: tuple[bytes, ...]
    events: int  # events a conforming decoder dispatches
    last_data: str  # the data field of the last of them
    chunk_size: int

    @property
    def nbytes(self) -> int:
        return sum(len(c) for c in self.chunks)


def chunked(body: bytes, size: int) -> tuple[bytes, ...]:
    """Cut ``body`` into ``size``-byte pieces (the last may be shorter), ignoring events."""
    return tuple(body[i : i + size] for i in range(0, len(body), size))


@functools.cache
def chat_tokens(n: int, chunk_size: int = 16384, *, sentinel: bool = False) -> Corpus:
    """``n`` events ``data: {"content": "tokI"}`` (an LLM token stream), optionally
    followed by ``data: [DONE]`` (not counted in ``events``)."""
    body = b"".join(b'data: {"content": "tok%d"}\n\n' % i for i in range(n))
    if sentinel:
        body += b"data: [DONE]\n\n"
    name = f"chat-{_count(n)}" + ("+done" if sentinel else "")
    last = f'{{"content": "tok{n - 1}"}}'
    return Corpus(name, chunked(body, chunk_size), n, last, chunk_size)


@functools.cache
def rich_events(n: int, chunk_size: int = 16384) -> Corpus:
    """``n`` events with ``id:``, ``event:`` and a JSON ``data:`` line."""
    template = (
        b"id: %d\nevent: completion\n"
        b'data: {"completion": "tok%d", "stop_reason": null, "model": "jeeves-1"}\n\n'
    )
    body = b"".join(template % (i, i) for i in range(n))
    last = f'{{"completion": "tok{n - 1}", "stop_reason": null, "model": "jeeves-1"}}'
    return Corpus(f"rich-{_count(n)}", chunked(body, chunk_size), n, last, chunk_size)


@functools.cache
def big_event(data_size: int, chunk_size: int = 1536) -> Corpus:
    """One event whose single ``data:`` line is ``data_size`` bytes of JSON-ish text."""
    data = _jsonish(data_size)
    body = b"data: " + data.encode() + b"\n\n"
    return Corpus(f"one-{_size(data_size)}-event", chunked(body, chunk_size), 1, data, chunk_size)


@functools.cache
def sized_events(data_size: int, total_bytes: int, chunk_size: int) -> Corpus:
    """As many ``data: <data_size bytes>`` events as fit in about ``total_bytes``
    (at least one), cut into ``chunk_size``-byte chunks."""
    data = _jsonish(data_size)
    event = b"data: " + data.encode() + b"\n\n"
    n = max(1, total_bytes // len(event))
    name = f"data-{_size(data_size)}/chunk-{_size(chunk_size)}"
    return Corpus(name, chunked(event * n, chunk_size), n, data, chunk_size)


def _jsonish(size: int) -> str:
    """``size`` ASCII characters that look like a JSON array of records, one line."""
    unit = '{"k": 12345, "v": "lorem ipsum dolor"}, '
    text = ("[" + unit * (size // len(unit) + 1))[: size - 1] + "]"
    return text[:size]


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10}KiB"
    return f"{n}B"
