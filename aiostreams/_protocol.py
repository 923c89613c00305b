"""The one interface between the transport and whatever turns bytes into events.

``SSEDecoder`` (raw :class:`ServerSentEvent`) and the typed decoders of
``aiostreams._typed`` both satisfy it; ``EventStream`` and the reconnecting client
drive it and know nothing else about framing or models.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

T = TypeVar("T")

__all__ = ["FrameDecoder"]


class FrameDecoder(Protocol[T]):
    """A per-connection, sans-IO bytes→events decoder.

    Driving loop (what ``EventStream`` does)::

        while not decoder.finished:
            if decoder.has_backlog:          # a previous feed() raised mid-chunk
                events = decoder.feed(b"")   # continue after the bad event
            else:
                chunk = await read()
                if not chunk:
                    decoder.close()
                    break
                events = decoder.feed(chunk)
            yield from events
    """

    last_event_id: str
    retry: int | None

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[T]:
        """Events completed by ``chunk``, in order.  May raise a documented
        ``AiostreamsError`` for one bad event; the events after it stay queued
        (``has_backlog``) and the next ``feed`` returns them."""
        ...

    def close(self) -> None:
        """End of the connection's body: discard an incomplete final event."""
        ...

    @property
    def finished(self) -> bool:
        """A terminal event (sentinel) was seen: stop reading, decode nothing more."""
        ...

    @property
    def has_backlog(self) -> bool:
        """Complete events are queued behind a raised error: call ``feed(b"")``."""
        ...
