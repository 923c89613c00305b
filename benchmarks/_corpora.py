"""Deterministic byte corpora, built once per process and shared by every library.

A corpus is the exact list of chunks each library is fed, plus what a correct
decoder must produce from it (the event count and the last event's data), so a
suite can tell a wrong answer from a slow one.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass

__all__ = [
    "Corpus",
    "anthropic_messages",
    "big_event",
    "big_then_small",
    "chat_tokens",
    "chunked",
    "crlf_openai",
    "heartbeat_chat",
    "mixed_sizes",
    "multiline_events",
    "openai_chat",
    "rich_events",
    "shape_changing",
    "sized_events",
    "wikimedia_events",
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


# -- realistic corpora (issue 12): the shapes real servers send ---------------------------
#
# Each is built from a seeded ``random.Random`` so every run and every library sees the
# same bytes.  ``_assemble`` takes (wire bytes, data or None) pieces: ``None`` marks bytes
# that dispatch nothing (a comment, a keep-alive), so the expected answer comes from the
# generator itself, not from any decoder.

_Piece = tuple[bytes, "str | None"]


def _assemble(name: str, pieces: list[_Piece], chunk_size: int, *, crlf: bool = False) -> Corpus:
    body = b"".join(p for p, _ in pieces)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    datas = [d for _, d in pieces if d is not None]
    return Corpus(name, chunked(body, chunk_size), len(datas), datas[-1], chunk_size)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(n))


_VOCABULARY = (
    "the", "stream", "of", "tokens", "server", "event", "a", "model", "is", "to", "and",
    "response", "délai", "über", "naïve", "日本", "json", "client", "reads", "fast", " ", "\\n",
)  # fmt: skip


def _openai_chunk(rng: random.Random, i: int, content: str | None, finish: str | None) -> bytes:
    delta = {} if content is None else {"content": content}
    if i == 0:
        delta = {"role": "assistant", "content": ""}
    doc = {
        "id": "chatcmpl-AbC123xyz",
        "object": "chat.completion.chunk",
        "created": 1732000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return _dumps(doc)


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@functools.cache
def openai_chat(n: int, keepalive_every: int = 500, chunk_size: int = 16384) -> Corpus:
    """OpenAI ``chat.completion.chunk`` stream: a role delta, ``n`` content deltas, a
    ``finish_reason: stop`` chunk, a ``: keep-alive`` comment every ``keepalive_every``
    events, and ``data: [DONE]`` (counted: a framer dispatches it)."""
    rng = random.Random(1201)
    pieces: list[_Piece] = []
    for i in range(n + 2):
        if i and i % keepalive_every == 0:
            pieces.append((b": keep-alive\n\n", None))
        finish = "stop" if i == n + 1 else None
        content = None if finish else _words(rng, rng.randint(1, 2))
        data = _openai_chunk(rng, i, content, finish)
        pieces.append((b"data: " + data + b"\n\n", data.decode()))
    pieces.append((b"data: [DONE]\n\n", "[DONE]"))
    return _assemble(f"openai-{_count(n)}/keepalive-{keepalive_every}", pieces, chunk_size)


@functools.cache
def anthropic_messages(n: int, ping_every: int = 20, chunk_size: int = 16384) -> Corpus:
    """Anthropic messages stream: ``message_start``, ``content_block_start``, ``n``
    ``content_block_delta`` events with an ``event: ping`` every ``ping_every``, then
    ``content_block_stop``, ``message_delta`` and ``message_stop``."""
    rng = random.Random(1202)
    pieces: list[_Piece] = []

    def event(name: str, doc: object) -> None:
        data = _dumps(doc)
        pieces.append((b"event: " + name.encode() + b"\ndata: " + data + b"\n\n", data.decode()))

    usage = {"input_tokens": 25, "output_tokens": 1}
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "content": [], "model": "claude-sonnet-4-5", "stop_reason": None,
        "stop_sequence": None, "usage": usage,
    }  # fmt: skip
    event("message_start", {"type": "message_start", "message": message})
    event("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}})  # fmt: skip
    event("ping", {"type": "ping"})
    for i in range(n):
        if i and i % ping_every == 0:
            event("ping", {"type": "ping"})
        delta = {"type": "text_delta", "text": _words(rng, rng.randint(1, 3))}
        event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    event("content_block_stop", {"type": "content_block_stop", "index": 0})
    event("message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": n}})  # fmt: skip
    event("message_stop", {"type": "message_stop"})
    return _assemble(f"anthropic-{_count(n)}/ping-{ping_every}", pieces, chunk_size)


@functools.cache
def heartbeat_chat(n: int, every: int, chunk_size: int = 16384) -> Corpus:
    """Uniform chat tokens with a ``: heartbeat`` comment every ``every`` events
    (sse-starlette and most proxies send one on a timer)."""
    pieces: list[_Piece] = []
    for i in range(n):
        if i and i % every == 0:
            pieces.append((b": heartbeat\n\n", None))
        data = f'{{"content": "tok{i}"}}'
        pieces.append((b"data: " + data.encode() + b"\n\n", data))
    return _assemble(f"chat-{_count(n)}/heartbeat-{every}", pieces, chunk_size)


@functools.cache
def wikimedia_events(n: int, chunk_size: int = 16384) -> Corpus:
    """Wikimedia-EventStreams-like: ``:ok`` first, then ``event: message``, a JSON
    array ``id:`` and ~1-2 KiB of JSON ``data:`` per event."""
    rng = random.Random(1203)
    pieces: list[_Piece] = [(b":ok\n\n", None)]
    for i in range(n):
        offset = 5_000_000_000 + i
        ident = [{"topic": "eqiad.mediawiki.recentchange", "partition": 0, "offset": offset}]
        doc = {
            "$schema": "/mediawiki/recentchange/1.0.0",
            "meta": {"uri": f"https://en.wikipedia.org/wiki/Page_{rng.randrange(10**7)}",
                     "request_id": f"{rng.getrandbits(64):016x}", "id": f"{rng.getrandbits(128):032x}",
                     "dt": "2026-11-30T06:00:00Z", "domain": "en.wikipedia.org",
                     "stream": "mediawiki.recentchange", "topic": "eqiad.mediawiki.recentchange",
                     "partition": 0, "offset": offset},
            "id": 1_700_000_000 + i, "type": "edit", "namespace": 0,
            "title": _words(rng, rng.randint(2, 6)), "comment": _words(rng, rng.randint(5, 60)),
            "timestamp": 1764482400 + i, "user": f"User{rng.randrange(10**5)}", "bot": False,
            "minor": rng.random() < 0.3, "length": {"old": rng.randrange(10**5), "new": rng.randrange(10**5)},
            "revision": {"old": rng.randrange(10**9), "new": rng.randrange(10**9)},
            "server_url": "https://en.wikipedia.org", "server_name": "en.wikipedia.org",
            "server_script_path": "/w", "wiki": "enwiki",
            "parsedcomment": _words(rng, rng.randint(20, 120)),
        }  # fmt: skip
        data = _dumps(doc)
        pieces.append((b"event: message\nid: " + _dumps(ident) + b"\ndata: " + data + b"\n\n",
                       data.decode()))  # fmt: skip
    return _assemble(f"wikimedia-{_count(n)}", pieces, chunk_size)


@functools.cache
def multiline_events(n: int, chunk_size: int = 16384) -> Corpus:
    """Text events of 2-6 ``data:`` lines each (joined with LF by the standard)."""
    rng = random.Random(1204)
    pieces: list[_Piece] = []
    for _ in range(n):
        lines = [_words(rng, rng.randint(1, 8)) for _ in range(rng.randint(2, 6))]
        body = b"".join(b"data: " + line.encode() + b"\n" for line in lines)
        pieces.append((body + b"\n", "\n".join(lines)))
    return _assemble(f"multiline-{_count(n)}", pieces, chunk_size)


@functools.cache
def crlf_openai(n: int, chunk_size: int = 16384) -> Corpus:
    """The OpenAI-shaped stream with CRLF line ends (as .NET and some proxies send)."""
    base = openai_chat(n)
    body = b"".join(base.chunks).replace(b"\n", b"\r\n")
    return Corpus(f"openai-{_count(n)}/crlf", chunked(body, chunk_size), base.events,
                  base.last_data, chunk_size)  # fmt: skip


@functools.cache
def mixed_sizes(total_bytes: int, chunk_size: int = 256 << 10) -> Corpus:
    """``data:`` events whose sizes are drawn log-uniformly from 16 B to 1 MiB, in
    aiohttp-sized reads (256 KiB), so large events sit among small ones in one read."""
    rng = random.Random(1205)
    pieces: list[_Piece] = []
    size = 0
    while size < total_bytes:
        n = int(2 ** rng.uniform(4, 20))
        data = _jsonish(n)
        pieces.append((b"data: " + data.encode() + b"\n\n", data))
        size += n + 8
    return _assemble(f"mixed-16B..1MiB/{_size(total_bytes)}", pieces, chunk_size)


@functools.cache
def big_then_small(big: int, small: int, chunk_size: int = 4 << 20) -> Corpus:
    """One ``big``-byte event then ``small`` small events, all in one read."""
    data = _jsonish(big)
    pieces: list[_Piece] = [(b"data: " + data.encode() + b"\n\n", data)]
    for i in range(small):
        text = f'{{"content": "tok{i}"}}'
        pieces.append((b"data: " + text.encode() + b"\n\n", text))
    return _assemble(f"{_size(big)}-event+{small}-small/one-read", pieces, chunk_size)


@functools.cache
def shape_changing(n: int, chunk_size: int = 16384) -> Corpus:
    """A stream that changes shape every 1-8 events: data-only, event+data,
    id+event+data, multi-line data, comments, ``retry:``, CRLF-free."""
    rng = random.Random(1206)
    pieces: list[_Piece] = []
    i = 0
    while i < n:
        shape = rng.randrange(6)
        for _ in range(rng.randint(1, 8)):
            data = f'{{"n": {i}, "text": "{_words(rng, rng.randint(1, 4))}"}}'
            wire = b"data: " + data.encode() + b"\n"
            if shape == 1:
                wire = b"event: update\n" + wire
            elif shape == 2:
                wire = b"id: %d\nevent: update\n" % i + wire
            elif shape == 3:
                wire += b"data: second line\n"
                data += "\nsecond line"
            elif shape == 4:  # a comment line inside the block (a comment-only block
                wire = b": note\n" + wire  # would make httpx-sse dispatch an empty event)
            elif shape == 5:
                wire = b"retry: 3000\n" + wire
            pieces.append((wire + b"\n", data))
            i += 1
    return _assemble(f"shape-changing-{_count(n)}", pieces, chunk_size)
