"""Each library's SSE decoding driven on an in-memory list of chunks, the way the
library itself drives it on a response body — no network, no HTTP.

Every function here takes the chunks, decodes them with a fresh decoder, walks
the events with the same consumer loop (count them, keep the last), and returns
an :class:`Outcome`.  Where a library only exposes its decoder through a response
object, a minimal stand-in response hands it the chunks through the same method
the library calls on a real one (``iter_text``, ``content``), so the library's
own code — not a re-implementation — does the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from ._harness import Outcome

Chunks = Sequence[bytes]
#: One library's framing: chunks -> Outcome (last = the last event's data).
Framer = Callable[[Chunks], Outcome]
#: A library's event iterator over chunks (the typed suite decodes each event's data).
EventIter = Callable[[Chunks], Iterator[Any]]


# -- aiostreams ---------------------------------------------------------------------


def aiostreams_framing() -> Framer:
    from aiostreams import SSEDecoder

    def run(chunks: Chunks) -> Outcome:
        decoder = SSEDecoder()
        feed = decoder.feed
        n, last = 0, None
        for chunk in chunks:
            for event in feed(chunk):
                n += 1
                last = event
        decoder.close()
        return Outcome(n, None if last is None else last.data)

    return run


# -- httpx-sse ----------------------------------------------------------------------


class _TextResponse:
    """Stands in for ``httpx.Response`` where an SSE client only calls
    ``iter_text()`` and reads ``headers``: bytes become text with httpx's own
    incremental ``TextDecoder``, exactly as ``Response.iter_text`` does."""

    headers = {"content-type": "text/event-stream"}  # noqa: RUF012 - read-only stand-in
    request = None

    def __init__(self, chunks: Chunks, text_decoder: Any) -> None:
        self._chunks = chunks
        self._text_decoder = text_decoder

    def iter_text(self) -> Iterator[str]:
        decode = self._text_decoder.decode
        for chunk in self._chunks:
            text = decode(chunk)
            if text:  # httpx's TextChunker drops empty pieces
                yield text
        text = self._text_decoder.flush()
        if text:
            yield text


def httpx_sse_framing() -> Framer:
    """``httpx_sse.EventSource.iter_sse`` itself: its ``SSELineDecoder`` over
    ``iter_text()`` and its ``SSEDecoder`` per line."""
    from httpx._decoders import TextDecoder
    from httpx_sse import EventSource

    def run(chunks: Chunks) -> Outcome:
        source = EventSource(_TextResponse(chunks, TextDecoder("utf-8")))  # type: ignore[arg-type]
        n, last = 0, None
        for event in source.iter_sse():
            n += 1
            last = event
        return Outcome(n, None if last is None else last.data)

    return run


def httpx_sse_events() -> EventIter:
    """httpx-sse's events (for the typed suite, which adds its own data decoding)."""
    from httpx._decoders import TextDecoder
    from httpx_sse import EventSource

    def events(chunks: Chunks) -> Iterator[Any]:
        return EventSource(_TextResponse(chunks, TextDecoder("utf-8"))).iter_sse()  # type: ignore[arg-type]

    return events


# -- httpx2 -------------------------------------------------------------------------


def httpx2_framing() -> Framer:
    """``httpx2.EventSource.__iter__``: its ``_SSEParser`` (line decoder + event
    decoder, 16 MiB default event limit) over ``iter_text()``."""
    from httpx2._decoders import TextDecoder
    from httpx2._sse import EventSource

    def run(chunks: Chunks) -> Outcome:
        source = EventSource(_TextResponse(chunks, TextDecoder("utf-8")))  # type: ignore[arg-type]
        n, last = 0, None
        for event in source:
            n += 1
            last = event
        return Outcome(n, None if last is None else last.data)

    return run


# -- openai -------------------------------------------------------------------------


def openai_framing() -> Framer:
    """``openai._streaming.SSEDecoder().iter_bytes`` over the chunks, as ``Stream`` does."""
    from openai._streaming import SSEDecoder

    def run(chunks: Chunks) -> Outcome:
        n, last = 0, None
        for event in SSEDecoder().iter_bytes(iter(chunks)):
            n += 1
            last = event
        return Outcome(n, None if last is None else last.data)

    return run


def openai_events() -> EventIter:
    from openai._streaming import SSEDecoder

    def events(chunks: Chunks) -> Iterator[Any]:
        return SSEDecoder().iter_bytes(iter(chunks))

    return events


# -- sseclient-py -------------------------------------------------------------------


def sseclient_framing() -> Framer:
    """``sseclient.SSEClient(source).events()``: the source is what it iterates for
    chunks (a urllib3/requests response in real use; here the list itself)."""
    from sseclient import SSEClient

    def run(chunks: Chunks) -> Outcome:
        n, last = 0, None
        for event in SSEClient(iter(chunks)).events():
            n += 1
            last = event
        return Outcome(n, None if last is None else last.data)

    return run


# -- aiohttp-sse-client2 ------------------------------------------------------------


class _EndOfBody(Exception):
    """aiohttp-sse-client2 reached the end of the body and tried to reconnect."""


class _NoReconnect:
    """The ``session`` of the stand-in EventSource: a reconnect means the body ran out."""

    async def request(self, *args: object, **kwargs: object) -> None:
        raise _EndOfBody


class _ReaderProtocol:
    """What ``aiohttp.StreamReader`` calls on its protocol (no transport here)."""

    connected = True
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


class _ContentResponse:
    status = 200

    def __init__(self, content: Any) -> None:
        self.content = content

    def close(self) -> None:
        pass


class AiohttpSSEClient2Framing:
    """``aiohttp_sse_client2.client.EventSource.__anext__`` over a real
    ``aiohttp.StreamReader`` holding the chunks (its ``content``, which it reads
    line by line).  The reader's limit is aiohttp's default ``read_bufsize``, as
    a ``ClientSession`` sets it, so its line-length limit is the real one."""

    def __init__(self, expected_events: int) -> None:
        from aiohttp.helpers import DEFAULT_CHUNK_SIZE
        from aiohttp.streams import StreamReader
        from aiohttp_sse_client2.client import EventSource

        self.reader_limit: int = DEFAULT_CHUNK_SIZE
        self.stream_reader = StreamReader
        self.event_source = EventSource
        self.expected = expected_events
        self.loop = asyncio.new_event_loop()

    def __call__(self, chunks: Chunks) -> Outcome:
        return self.loop.run_until_complete(self._run(chunks))

    async def _run(self, chunks: Chunks) -> Outcome:
        reader = self.stream_reader(
            _ReaderProtocol(),  # type: ignore[arg-type]
            self.reader_limit,
            loop=self.loop,
        )
        for chunk in chunks:
            reader.feed_data(chunk)
        reader.feed_eof()
        source = self.event_source(
            "http://127.0.0.1/", session=_NoReconnect(), reconnection_time=timedelta(0)
        )
        source._response = _ContentResponse(reader)
        source._origin = "http://127.0.0.1"
        n, last = 0, None
        # It never stops by itself (a finished body means "reconnect"): take as many
        # events as the corpus has; running out early surfaces as _EndOfBody.
        try:
            while n < self.expected:
                event = await source.__anext__()
                n += 1
                last = event
        except _EndOfBody:
            pass
        if n == self.expected and not reader.at_eof():
            raise RuntimeError(
                f"aiohttp-sse-client2 left {reader._size} bytes unread after {n} events"
            )
        return Outcome(n, None if last is None else last.data)

    def close(self) -> None:
        self.loop.close()
