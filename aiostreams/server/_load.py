"""Load endpoints for benchmarks and tests: ``/load/<shape>`` (GET or POST).

Speed matters more than elegance here: the server must not be the bottleneck
of a client benchmark.  So a stream of up to 64 MiB is built once per set of
parameters (and cached, four at most: a fan-in benchmark opens thousands of
identical streams), then sent as big ``memoryview`` slices; no per-event Python
work at full speed.  A larger stream is generated a page (~1 MiB) at a time, so
no request can make the server hold more than that per stream (plus one event).

=============  ==================================================================
shape          events
=============  ==================================================================
``chat``       ``data: {"content": "tokN"}``                        (N = 1..n)
``rich``       ``id: N`` / ``event: completion`` / ``data: {"completion": "tokN", ...}``
``large``      ``data: "xxx…"``, a JSON string of ``size`` bytes
``idle``       one comment ``: open``, then nothing for ``hold`` seconds (default 60)
``resumable``  ``id: N`` / ``data: {"content": "tokN"}``, resumes after ``Last-Event-ID``,
               ``drop_after=K`` aborts the TCP connection after K events
=============  ==================================================================

Query parameters (all optional): ``n`` events (default 1000; resumable 100),
``chunk`` bytes per write (default 16384; 0 = one write per event; resumable
default 0), ``rate`` events per second (0 = as fast as possible), ``size``
(large only, default 16384), ``sentinel=1`` (append ``data: [DONE]``; not for
resumable), ``hold`` seconds to keep the connection open after the last event,
``drop_after`` (resumable only).  An unknown parameter is a 400, not ignored.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from array import array
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from .._encoding import encode_event
from ._responses import RequestError, open_event_stream

__all__ = ["load_handler"]

#: The largest stream served (estimated bytes); past this, ask for fewer or smaller events.
MAX_PAYLOAD_BYTES: Final = 256 * 1024 * 1024
#: Streams up to this size are built whole and cached (a fan-in benchmark opens
#: thousands of identical ones); larger ones are generated a page at a time, so
#: each costs at most about ``_PAGE_BYTES`` of memory however long it is.
_CACHED_MAX_BYTES: Final = 64 * 1024 * 1024
_CACHED_STREAMS: Final = 4  # at most 256 MiB cached
_PAGE_BYTES: Final = 1024 * 1024
MAX_EVENTS: Final = 10_000_000
MAX_CHUNK: Final = 16 * 1024 * 1024
MAX_HOLD: Final = 3600.0

_CHAT_TEMPLATE: Final = encode_event('{"content": "tok%d"}')
_RICH_TEMPLATE: Final = encode_event(
    '{"completion": "tok%d", "stop_reason": null, "model": "jeeves-1"}',
    event="completion",
    id="%d",
)
_RESUMABLE_TEMPLATE: Final = encode_event('{"content": "tok%d"}', id="%d")
_RESUMABLE_FIRST_TEMPLATE: Final = encode_event('{"content": "tok%d"}', id="%d", retry=10)
_SENTINEL: Final = encode_event("[DONE]")
#: Per-event size estimates (upper bounds at n <= MAX_EVENTS) to refuse huge streams early.
_ESTIMATED_EVENT_BYTES: Final = {"chat": len(_CHAT_TEMPLATE) + 8, "rich": len(_RICH_TEMPLATE) + 16}

_COMMON: Final = frozenset({"n", "chunk", "rate", "hold"})
_ALLOWED_PARAMS: Final = {
    "chat": _COMMON | {"sentinel"},
    "rich": _COMMON | {"sentinel"},
    "large": _COMMON | {"sentinel", "size"},
    "idle": frozenset({"hold"}),
    "resumable": _COMMON | {"drop_after"},
}


@dataclass(frozen=True, slots=True)
class _Payload:
    """A whole stream: its bytes and where each event ends in them."""

    body: bytes
    ends: array[int]


async def load_handler(request: web.Request) -> web.StreamResponse:
    shape = request.match_info["shape"]
    handler = _HANDLERS.get(shape)
    if handler is None:
        raise RequestError(
            404, f"unknown load shape {shape!r}: use one of {', '.join(sorted(_HANDLERS))}"
        )
    unknown = set(request.query) - _ALLOWED_PARAMS[shape]
    if unknown:
        raise RequestError(
            400,
            f"unknown query parameter(s) {', '.join(sorted(unknown))} for /load/{shape}: "
            f"it takes {', '.join(sorted(_ALLOWED_PARAMS[shape]))}",
        )
    return await handler(request)


async def _shaped(request: web.Request) -> web.StreamResponse:
    shape = request.match_info["shape"]
    n = _int_param(request, "n", 1000, maximum=MAX_EVENTS)
    size = _int_param(request, "size", 16384, minimum=2, maximum=64 * 1024 * 1024)
    sentinel = _int_param(request, "sentinel", 0, maximum=1) == 1
    chunk = _int_param(request, "chunk", 16384, maximum=MAX_CHUNK)
    rate = _float_param(request, "rate", 0.0)
    hold = _float_param(request, "hold", 0.0, maximum=MAX_HOLD)
    estimate = n * (size + 10 if shape == "large" else _ESTIMATED_EVENT_BYTES[shape])
    if estimate > MAX_PAYLOAD_BYTES:
        raise RequestError(
            400,
            f"the stream would be about {estimate} bytes, over the {MAX_PAYLOAD_BYTES} cap "
            "of this server: ask for fewer or smaller events (n, size)",
        )
    pages = (
        iter([_build(shape, n, size, sentinel)])
        if estimate <= _CACHED_MAX_BYTES
        else _pages(shape, n, size, sentinel)
    )
    response = await open_event_stream(request)
    try:
        await _send(response, pages, chunk=chunk, rate=rate)
        await _hold(request, hold)
    except ConnectionError:
        pass  # the client left; that ends a stream, it is not a server error
    return response


async def _idle(request: web.Request) -> web.StreamResponse:
    hold = _float_param(request, "hold", 60.0, maximum=MAX_HOLD)
    response = await open_event_stream(request)
    try:
        await response.write(b": open\n\n")
        await _hold(request, hold)
    except ConnectionError:
        pass
    return response


async def _resumable(request: web.Request) -> web.StreamResponse:
    n = _int_param(request, "n", 100, maximum=MAX_EVENTS // 10)
    drop_after = _int_param(request, "drop_after", 0, maximum=MAX_EVENTS)
    chunk = _int_param(request, "chunk", 0, maximum=MAX_CHUNK)
    rate = _float_param(request, "rate", 0.0)
    hold = _float_param(request, "hold", 0.0, maximum=MAX_HOLD)
    last = request.headers.get("Last-Event-ID", "").strip()
    # ASCII digits only ("²".isdigit() is True) and a bounded length (int() of
    # thousands of digits raises): a bad header is the client's 400, never our 500.
    if last and not (last.isascii() and last.isdigit() and len(last) <= 18):
        shown = last if len(last) <= 40 else last[:40] + "..."
        raise RequestError(
            400, f"Last-Event-ID {shown!r} is not an id this endpoint sends (1..{n})"
        )
    first = int(last) + 1 if last else 1
    end = n + 1 if not drop_after else min(n + 1, first + drop_after)
    response = await open_event_stream(request)
    try:
        await _send(response, _resumable_pages(first, end), chunk=chunk, rate=rate)
        if end <= n:  # events remain: drop as a crashed server or a broken network would
            await _abort(request)
        else:
            await _hold(request, hold)
    except ConnectionError:
        pass
    return response


_HANDLERS: Final[dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = {
    "chat": _shaped,
    "rich": _shaped,
    "large": _shaped,
    "idle": _idle,
    "resumable": _resumable,
}


# -- building and sending ----------------------------------------------------------


@functools.lru_cache(maxsize=_CACHED_STREAMS)
def _build(shape: str, n: int, size: int, sentinel: bool) -> _Payload:
    if shape == "large":
        filler = (b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1))[: size - 2]
        event = encode_event('"' + filler.decode() + '"')
        body = event * n
        ends = array("q", range(len(event), len(body) + 1, len(event)))
    else:
        if shape == "chat":
            events = [_CHAT_TEMPLATE % i for i in range(1, n + 1)]
        else:
            events = [_RICH_TEMPLATE % (i, i) for i in range(1, n + 1)]
        body = b"".join(events)
        ends = array("q", itertools.accumulate(map(len, events)))
    if sentinel:
        body += _SENTINEL
        ends.append(len(body))
    return _Payload(body, ends)


def _paged(events: Iterator[bytes]) -> Iterator[_Payload]:
    """Join ``events`` into pages of about ``_PAGE_BYTES``, made as they are needed."""
    while True:
        page: list[bytes] = []
        size = 0
        for event in events:
            page.append(event)
            size += len(event)
            if size >= _PAGE_BYTES:
                break
        if not page:
            return
        yield _Payload(b"".join(page), array("q", itertools.accumulate(map(len, page))))


def _pages(shape: str, n: int, size: int, sentinel: bool) -> Iterator[_Payload]:
    """The stream of :func:`_build`, a page at a time (for streams too large to cache)."""
    events: Iterator[bytes]
    if shape == "large":
        filler = (b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1))[: size - 2]
        event = encode_event('"' + filler.decode() + '"')
        per_page = max(1, _PAGE_BYTES // len(event))
        page = _Payload(
            event * per_page, array("q", range(len(event), len(event) * per_page + 1, len(event)))
        )
        for _ in range(n // per_page):
            yield page  # the same bytes every time: no memory per page
        events = itertools.repeat(event, n % per_page)
    elif shape == "chat":
        events = (_CHAT_TEMPLATE % i for i in range(1, n + 1))
    else:
        events = (_RICH_TEMPLATE % (i, i) for i in range(1, n + 1))
    if sentinel:
        events = itertools.chain(events, [_SENTINEL])
    yield from _paged(events)


def _resumable_pages(first: int, end: int) -> Iterator[_Payload]:
    events = (
        (_RESUMABLE_FIRST_TEMPLATE if i == first else _RESUMABLE_TEMPLATE) % (i, i)
        for i in range(first, end)
    )
    return _paged(events)


async def _send(
    response: web.StreamResponse, pages: Iterator[_Payload], *, chunk: int, rate: float
) -> None:
    """Write the pages' events in ``chunk``-byte writes (0: one per event), ``rate`` events/s."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent_before = 0  # events of the earlier pages
    for payload in pages:
        await _send_page(response, payload, chunk, rate, started, sent_before)
        sent_before += len(payload.ends)


async def _send_page(
    response: web.StreamResponse,
    payload: _Payload,
    chunk: int,
    rate: float,
    started: float,
    sent_before: int,
) -> None:
    view = memoryview(payload.body)
    ends = payload.ends

    async def write_events(first: int, stop: int) -> None:
        start = ends[first - 1] if first else 0
        if chunk == 0:
            for index in range(first, stop):
                await response.write(view[start : ends[index]])
                start = ends[index]
            return
        end = ends[stop - 1]
        for offset in range(start, end, chunk):
            await response.write(view[offset : min(offset + chunk, end)])

    total = len(ends)
    if rate <= 0:
        if total:
            await write_events(0, total)
        return
    # Event i (0-based, over the whole stream) is due at start + i / rate; send
    # whatever is due in one go, so high rates cost one write per loop turn.
    loop = asyncio.get_running_loop()
    sent = 0
    while sent < total:
        due = min(total, int((loop.time() - started) * rate) + 1 - sent_before)
        if due > sent:
            await write_events(sent, due)
            sent = due
        if sent < total:
            await asyncio.sleep(max(0.0, started + (sent_before + sent) / rate - loop.time()))


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _hold(request: web.Request, seconds: float) -> None:
    """Keep the connection open ``seconds`` or until the client leaves.

    The runners of this package cancel the handler when the client leaves; the
    polling covers runners that do not (aiohttp's default).  It is slow on purpose:
    10,000 held streams must not wake the server thousands of times a second.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not _gone(request):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 10.0))


async def _abort(request: web.Request) -> None:
    """Reset the TCP connection once what was written has left the process."""
    transport = request.transport
    if transport is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    # asyncio has no "write buffer empty" event to wait on, so poll briefly.
    while transport.get_write_buffer_size() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    transport.abort()


# -- query parameters --------------------------------------------------------------


def _int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        raise RequestError(
            400, f"query parameter {name}={raw!r} must be an integer from {minimum} to {maximum}"
        )
    return value


def _float_param(request: web.Request, name: str, default: float, *, maximum: float = 1e9) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= maximum:  # also rejects nan
        raise RequestError(
            400, f"query parameter {name}={raw!r} must be a number from 0 to {maximum:g}"
        )
    return value
