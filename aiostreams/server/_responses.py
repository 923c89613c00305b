"""Response helpers shared by the reference and load handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec
from aiohttp import web

__all__ = [
    "EVENT_STREAM_HEADERS",
    "RequestError",
    "json_error",
    "open_event_stream",
    "replay",
]

#: Set as a plain header (not ``content_type=``) so aiohttp sends it verbatim,
#: without appending ``; charset=utf-8``: the reference service sends exactly this.
EVENT_STREAM_HEADERS: Final[Mapping[str, str]] = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
}


class RequestError(Exception):
    """Raised by a handler to answer ``{"message": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A ``{"message": ...}`` JSON answer, the error shape of the eventstreams API."""
    return web.Response(
        status=status,
        body=msgspec.json.encode({"message": message}),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    """Send the status line and event-stream headers; the body follows with ``write``."""
    response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
    await response.prepare(request)
    return response


async def replay(request: web.Request, writes: Iterable[bytes], pace: float) -> web.StreamResponse:
    """Write each chunk of ``writes`` as its own write, ``pace`` seconds apart.

    Each ``write`` goes to the transport at once (one HTTP/1.1 chunk each), so a
    client sees the seams of the script.  A client that leaves early ends the
    replay quietly: that is normal for a stream, not a server error.
    """
    response = await open_event_stream(request)
    try:
        for index, chunk in enumerate(writes):
            if index and pace > 0:
                await asyncio.sleep(pace)
            await response.write(chunk)
    except ConnectionError:
        pass  # aiohttp then skips the chunked terminator and logs the access only
    return response
