"""What one scripted response does: status, headers, then writes, pauses and faults.

A :class:`Script` is built in the test (plain method calls, no I/O) and played by
the server thread, once per connection it serves.  Every step is a small
coroutine over a :class:`_Connection`; a step that ends the connection (reset,
disconnect, malformed chunk) stops the script there.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Final

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from .._encoding import encode_event, encode_sse
from .._events import ServerSentEvent

__all__ = ["Script"]

Chunk = bytes | str | ServerSentEvent
Step = Callable[["_Connection"], Awaitable[None]]

#: An endless line stops after this many bytes if the client never gives up: far
#: beyond any sane event limit (aiostreams' default is 16 MiB), yet bounded.
DEFAULT_ENDLESS_LIMIT: Final = 256 * 1024 * 1024
_ENDLESS_BLOCK: Final = 64 * 1024

#: Bytes that no HTTP/1.1 chunked decoder accepts as a chunk-size line.
MALFORMED_CHUNK: Final = b"zz; not a chunk size\r\nthis is not chunked encoding\r\n"


class _ConnectionEnded(Exception):
    """A step closed the connection on purpose: skip the rest of the script."""


class _Connection:
    """One request being answered; prepares the response on the first write."""

    def __init__(self, request: web.Request, script: Script) -> None:
        self.request = request
        self.script = script
        self.response: web.StreamResponse | None = None

    async def prepare(self) -> web.StreamResponse:
        if self.response is None:
            self.response = self.script._make_response()
            await self.response.prepare(self.request)
        return self.response

    async def write(self, data: bytes) -> None:
        response = await self.prepare()
        if data:
            await response.write(data)

    async def raw(self, data: bytes) -> None:
        """Bytes straight to the socket, around the HTTP framing (chunk sizes)."""
        await self.prepare()
        self._transport().write(data)

    async def flushed(self) -> asyncio.Transport:
        await self.prepare()
        transport = self._transport()
        # No event tells when the kernel took the bytes; on loopback it is at once.
        while transport.get_write_buffer_size():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        return transport

    def _transport(self) -> asyncio.Transport:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        assert isinstance(transport, asyncio.Transport)
        return transport


class Script:
    """The response to one connection (or ``times`` connections), built step by step.

    Every method returns the script, so a test chains them::

        sse_server.on("/events").event("one", id="1").event("two", id="2").reset()

    Steps run in order when a request arrives.  Without steps the response is
    ``200 text/event-stream`` with an empty body; a status >= 400 without steps
    sends ``"<status> <reason>"`` as text.
    """

    def __init__(self, *, path: str | None, method: str | None, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 (or None for every request), got {times}")
        self.path = path
        self.method = method.upper() if method is not None else None
        self.remaining = times
        self._status = 200
        self._reason: str | None = None
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._content_length: int | None = None
        self._defaults = True  # headers and error body; a replay sends only what was recorded
        self._steps: list[Step] = []

    def __repr__(self) -> str:
        where = f"{self.method or '*'} {self.path or '*'}"
        return f"<Script {where}: {self._status}, {len(self._steps)} steps>"

    # -- status and headers ----------------------------------------------------------

    def status(
        self, code: int, *, retry_after: float | str | None = None, reason: str | None = None
    ) -> Script:
        """Answer with status ``code`` (and a ``Retry-After`` header if given)."""
        if not 200 <= code <= 599:  # 1xx are not final answers
            raise ValueError(f"status must be an HTTP status 200-599, got {code}")
        self._status = code
        self._reason = reason
        if retry_after is not None:
            value = f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)
            self._headers["Retry-After"] = value
        return self

    def header(self, name: str, value: str) -> Script:
        """Add a response header (repeatable); ``Content-Type`` replaces the default."""
        if name.lower() == "content-type":
            self._headers.popall("Content-Type", None)
        self._headers.add(name, value)
        return self

    def headers(self, headers: Mapping[str, str]) -> Script:
        """Add several response headers."""
        for name, value in headers.items():
            self.header(name, value)
        return self

    def content_type(self, value: str) -> Script:
        """Replace ``text/event-stream`` (e.g. ``"text/html"`` to test the check)."""
        return self.header("Content-Type", value)

    # -- what to send -----------------------------------------------------------------

    def event(
        self,
        data: str | None = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> Script:
        """Send one event in one write (see :func:`aiostreams.encode_event`)."""
        return self.send(encode_event(data, event=event, id=id, retry=retry, comment=comment))

    def events(self, *data: str) -> Script:
        """Send one ``data:`` event per string, one write each."""
        for item in data:
            self.event(item)
        return self

    def send(self, *chunks: Chunk) -> Script:
        """Send each chunk in its own write (one HTTP chunk each: the client sees the seams).

        A ``str`` is sent as UTF-8, a :class:`~aiostreams.ServerSentEvent` encoded,
        ``bytes`` exactly as given (half an event, a lone ``\\r``, invalid UTF-8...).
        """
        for chunk in chunks:
            data = _to_bytes(chunk)
            self._steps.append(_write(data))
        return self

    def json(self, value: object) -> Script:
        """Send ``value`` as a JSON body (``Content-Type: application/json``)."""
        self.content_type("application/json")
        return self.send(msgspec.json.encode(value))

    def sleep(self, seconds: float) -> Script:
        """Pause between two writes."""
        if not seconds >= 0:
            raise ValueError(f"sleep needs seconds >= 0, got {seconds}")
        self._steps.append(_sleep(seconds))
        return self

    def resume(
        self, history: Sequence[ServerSentEvent], *, per_connection: int | None = None
    ) -> Script:
        """Serve ``history`` from after the request's ``Last-Event-ID``.

        No header, or an id that is not in ``history``: from the start.  With
        ``per_connection=K`` at most K events go out per connection; if more are
        left the connection is reset there (the rest of the script is skipped), so
        a client must reconnect with the right ``Last-Event-ID`` to get them all.
        """
        if per_connection is not None and per_connection < 1:
            raise ValueError(f"per_connection must be >= 1, got {per_connection}")
        ids = [event.id for event in history]
        encoded = [encode_sse(event) for event in history]

        async def step(conn: _Connection) -> None:
            last = conn.request.headers.get("Last-Event-ID")
            start = ids.index(last) + 1 if last is not None and last in ids else 0
            left = encoded[start:]
            batch = left if per_connection is None else left[:per_connection]
            for chunk in batch:
                await conn.write(chunk)
            if len(batch) < len(left):
                await _reset(conn)

        self._steps.append(step)
        return self

    # -- faults -----------------------------------------------------------------------

    def reset(self) -> Script:
        """Drop the connection with a TCP reset (RST) once what was sent is delivered.

        The body is left unfinished: a client sees a connection reset or an
        incomplete payload.  Put it after ``send(b"data: hal")`` to cut an event.
        """
        self._steps.append(_reset)
        return self

    def disconnect(self) -> Script:
        """Close the connection (FIN) without ending the chunked body."""
        self._steps.append(_disconnect)
        return self

    def stall(self) -> Script:
        """Send nothing more and keep the connection open until the client leaves
        (or the test ends): for read timeouts and cancellation."""
        self._steps.append(_stall)
        return self

    def malformed_chunk(self, raw: bytes = MALFORMED_CHUNK) -> Script:
        """Write bytes that break HTTP/1.1 chunked framing, then close.

        ``raw`` goes to the socket as is, around aiohttp's chunk encoder."""

        async def step(conn: _Connection) -> None:
            await conn.raw(raw)
            await _disconnect(conn)

        self._steps.append(step)
        return self

    def endless_line(self, *, limit: int = DEFAULT_ENDLESS_LIMIT) -> Script:
        """Start a ``data:`` line and never end it: writes until the client gives up
        (or ``limit`` bytes, then closes).  Writes wait for the client to read."""

        if limit < 1:
            raise ValueError(f"limit must be a positive number of bytes, got {limit}")

        async def step(conn: _Connection) -> None:
            await conn.write(b"data: ")
            block = b"x" * _ENDLESS_BLOCK
            sent = 0
            while sent < limit:
                await conn.write(block[: limit - sent])
                sent += len(block)
            await _disconnect(conn)

        self._steps.append(step)
        return self

    # -- playing ------------------------------------------------------------------------

    def _make_response(self) -> web.StreamResponse:
        headers: CIMultiDict[str] = CIMultiDict()
        if self._defaults and 200 <= self._status < 300:
            headers.update({"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        elif self._defaults:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        for name in self._headers:
            headers.popall(name, None)
        headers.extend(self._headers)
        response = web.StreamResponse(status=self._status, reason=self._reason, headers=headers)
        if self._content_length is not None:
            response.content_length = self._content_length
        return response

    async def _play(self, conn: _Connection) -> web.StreamResponse:
        steps = self._steps
        if not steps and self._status >= 400 and self._defaults:
            text = f"{self._status} {self._reason or _phrase(self._status)}\n"
            steps = [_write(text.encode())]
        try:
            for step in steps:
                await step(conn)
        except _ConnectionEnded:
            pass
        return await conn.prepare()

    def _matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path == path
        )


def _to_bytes(chunk: Chunk) -> bytes:
    if isinstance(chunk, ServerSentEvent):
        return encode_sse(chunk)
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"send() takes bytes, str or ServerSentEvent, got {type(chunk).__name__}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _write(data: bytes) -> Step:
    async def step(conn: _Connection) -> None:
        await conn.write(data)

    return step


def _sleep(seconds: float) -> Step:
    async def step(conn: _Connection) -> None:
        await asyncio.sleep(seconds)

    return step


async def _reset(conn: _Connection) -> None:
    transport = await conn.flushed()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    raise _ConnectionEnded


async def _disconnect(conn: _Connection) -> None:
    transport = await conn.flushed()
    transport.close()
    raise _ConnectionEnded


async def _stall(conn: _Connection) -> None:
    await conn.prepare()
    await asyncio.Event().wait()  # until cancelled: the client left or the server stops


def steps_from(chunks: Iterable[tuple[float, bytes]], pace: float) -> list[Step]:
    """Writes at recorded offsets (seconds from the response), scaled by ``pace``."""
    steps: list[Step] = []
    previous = 0.0
    for offset, data in chunks:
        gap = (offset - previous) * pace
        previous = offset
        if gap > 0:
            steps.append(_sleep(gap))
        steps.append(_write(data))
    return steps
