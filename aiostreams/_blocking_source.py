"""``aiostreams.blocking.connect``: any SSE endpoint from synchronous code.

The asynchronous :func:`aiostreams.connect` does the work (reconnects, resume with
``Last-Event-ID``, timeouts, typed decoding) in an event loop of its own, run by
an anyio blocking portal in a daemon thread; the calling thread fetches one
network read's worth of events per thread hop (``EventSource.next_batch``), not
one event per hop.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _connect
from ._events import ServerSentEvent

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

    from ._connect import DecoderFactory
    from ._typed import EventSchema

__all__ = ["EventSource", "connect"]

T = TypeVar("T")


@overload
def connect(url: str, *, decoder: None = None, **options: Any) -> EventSource[ServerSentEvent]: ...


@overload
def connect(
    url: str, *, decoder: EventSchema[T] | DecoderFactory[T], **options: Any
) -> EventSource[T]: ...


def connect(
    url: str, *, decoder: EventSchema[Any] | DecoderFactory[Any] | None = None, **options: Any
) -> EventSource[Any]:
    """:func:`aiostreams.connect` for synchronous code::

        with aiostreams.blocking.connect("https://example.com/events") as events:
            for event in events:  # ServerSentEvent, across reconnects
                print(event.data)

    Takes the arguments of :func:`aiostreams.connect` except ``session`` (a session
    belongs to one event loop: this one makes its own, in its own thread).  Bad
    arguments raise here, before any thread starts; nothing is sent before the
    first event is asked for.  Errors are those of :func:`aiostreams.connect`,
    raised in the calling thread.

    Resources: the connection, the session and the loop thread end when the
    stream ends, when ``close()`` is called or the ``with`` block is left, when a
    ``for`` loop over it is left early and the object is dropped, or at exit.
    """
    if "session" in options:
        raise TypeError(
            "aiostreams.blocking.connect() makes its own session in its own event loop; "
            "session= is only for aiostreams.connect()"
        )
    source = _connect.connect(url, decoder=decoder, **options)  # validates the arguments
    return EventSource(source)


class EventSource(Generic[T]):
    """The events of :func:`connect`, for ``for`` loops (an iterator and a context manager).

    Attributes mirror :class:`aiostreams.EventSource`: ``last_event_id``,
    ``reconnects``, ``connections``, ``replayed``, ``closed``.
    """

    def __init__(self, source: _connect.EventSource[T]) -> None:
        portal_cm = start_blocking_portal("asyncio")
        portal = portal_cm.__enter__()
        try:
            portal.call(source._enter_lazily)  # its session is made in the portal's loop
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        self._source = source
        self._portal = portal
        self._batch: list[T] = []
        self._index = 0
        # The finalizer must not reference self, or self would never be collected.
        self._closer = weakref.finalize(self, shutdown_portal, portal_cm, portal, source.aclose)

    # -- state (read from the loop's objects: plain attribute reads, no thread hop) --

    @property
    def last_event_id(self) -> str:
        return self._source.last_event_id

    @property
    def reconnects(self) -> int:
        return self._source.reconnects

    @property
    def connections(self) -> int:
        return self._source.connections

    @property
    def replayed(self) -> int:
        return self._source.replayed

    @property
    def closed(self) -> bool:
        """Over for good: ended, failed or closed (the loop thread has stopped)."""
        return not self._closer.alive

    def __repr__(self) -> str:
        return f"<aiostreams.blocking.EventSource {self._source!r}>"

    # -- iteration ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._index >= len(self._batch):
            if self.closed:
                raise StopIteration
            try:
                batch = self._portal.call(self._source.next_batch)
            except Exception:
                if self._source.closed:  # the error ended the stream: stop the thread now
                    self.close()
                raise
            except BaseException:  # Ctrl-C while waiting: nobody will read further
                self.close()
                raise
            if batch is None:
                self.close()
                raise StopIteration
            self._batch, self._index = batch, 0
        event = self._batch[self._index]
        self._index += 1
        return event

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and the session, stop the loop thread (idempotent)."""
        self._batch, self._index = [], 0
        self._closer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def shutdown_portal(
    portal_cm: Any, portal: BlockingPortal, aclose: Callable[[], Awaitable[None]]
) -> None:
    """Run ``aclose`` in the portal's loop, then stop the loop thread (a
    ``weakref.finalize`` callback of the blocking SDK and the blocking EventSource)."""
    try:
        portal.call(aclose)
    finally:
        portal_cm.__exit__(None, None, None)
