"""``EventStream``: one HTTP response driven through one ``FrameDecoder``.

The transport knows bytes and connections, nothing about event models: any
:class:`~aiostreams._protocol.FrameDecoder` (the raw ``SSEDecoder``, a typed
decoder) turns the chunks into events.

Hot path
--------
Bytes are read with aiohttp's chunk API (``content.readany()``: whatever is
buffered, joined once; never ``readline``, which aiohttp caps at 8 KiB) and handed
to ``decoder.feed`` as they are.  ``feed`` returns every event the chunk completed;
they are kept as a list plus an index, so ``__anext__`` hands them out without
suspending (no await, no per-event Future).  ``batches()`` hands out the lists
themselves, for consumers (fan-in) that want one wake-up per chunk.

Releasing the connection
------------------------
* exhausted (EOF): the body is complete, the connection goes back to the pool;
* the decoder saw a sentinel (``finished``): iteration stops at once; the rest of
  the body is drained for at most ``DRAIN_TIMEOUT``/``DRAIN_MAX_BYTES`` so the
  connection can be reused, else the connection is closed (a server that holds
  it open after ``[DONE]`` must not hang the caller);
* ``aclose()``, leaving ``async with``, an error while reading (including
  cancellation), leaving an ``async for`` early (``break``, an exception in the
  loop body: the loop drops its iterator, which closes the stream) or garbage
  collection: the connection is closed, since unread bytes may still be coming.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from ._log import redact_text, redact_url
from ._stats import StreamStats, new_stats
from ._timeouts import DeadlineExceeded, await_by
from .errors import ResponseValidationError, StreamError, StreamInterrupted, StreamTimeout

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from ._protocol import FrameDecoder

__all__ = ["DRAIN_MAX_BYTES", "DRAIN_TIMEOUT", "EventStream"]

T = TypeVar("T")

#: After a sentinel, how long to wait for the end of the body before closing the
#: connection instead of pooling it.  The end of a chunked body normally arrives
#: in the same packet as the sentinel or one round trip later; 100 ms covers a
#: slow network without making the caller wait noticeably.
DRAIN_TIMEOUT: Final = 0.1
#: ...and how many bytes after the sentinel are worth reading (and discarding) to
#: save a reconnect.  More than that is a server still streaming: close instead.
DRAIN_MAX_BYTES: Final = 64 * 1024

# Errors of the decoder that leave the stream usable (one bad event, the rest
# continue); any other error while reading or decoding ends the stream.
_RECOVERABLE: Final = (ResponseValidationError, StreamError)

_OPEN, _DONE, _CLOSED = 0, 1, 2


class _IdleExpired(Exception):
    """Internal: set on the response body by the idle timer; becomes StreamTimeout."""


class EventStream(Generic[T]):
    """The events of one streaming HTTP response, decoded as they arrive.

    Use it as an async iterator, ideally inside ``async with`` so the connection
    is released however the block is left::

        async with await sdk.eventstreams.json() as stream:
            async for event in stream:
                ...

    ``await anext(stream)`` takes one event and keeps the stream open; the
    iterator of an ``async for`` loop closes the stream when the loop is left
    early, so ``anext(aiter(stream))`` closes it too.

    Attributes:
        response: the ``aiohttp.ClientResponse`` (body being consumed).
        url: the request URL without its query string (for messages).
        stats: a :class:`~aiostreams.StreamStats`: events, bytes, time to first
            event, gaps (updated once per network read, not per event).

    Timeouts (two tiers):
        idle_timeout: no *bytes* for that long.  Enforced by our own clock around
            each read (and by aiohttp's ``sock_read``, set by the caller on the
            request): a stalled HTTP parser cannot outlast it.
            Raises ``StreamTimeout(kind="idle")``.
        event_timeout: no *event* for that long while the consumer waits for one.
            Comments and heartbeats (bytes that complete no event) do not reset it,
            so a heartbeating proxy in front of a dead upstream cannot hang the
            caller.  Raises ``StreamTimeout(kind="event")``.
        first_event_timeout: the first event must arrive within that long of
            ``started_at`` (an event-loop time; default: when the stream object
            was made, i.e. after the response headers).  Before the first event it
            replaces ``event_timeout``.  Raises ``StreamTimeout(kind="first_event")``.
        Each error carries the last event id (to resume) and closes the stream.
        The event timeouts cost one deadline per network read (per chunk), none
        per event, and nothing at all when neither is set.

    Raises (while iterating):
        StreamTimeout: no bytes / no event / no first event in time (see above).
        StreamInterrupted: (a ``ConnectError``) the connection was reset, the body
            ended inside an event, or its transport framing was broken.
        ResponseValidationError, StreamError: one bad event; iteration may go on.
        EventTooLarge: an event exceeded the decoder's ``max_event_size``.
    """

    __slots__ = (
        "__weakref__",
        "_decoder",
        "_event_timeout",
        "_events",
        "_first_deadline",
        "_first_event_timeout",
        "_idle_timeout",
        "_index",
        "_lost",
        "_read_since",
        "_state",
        "_watchdog",
        "response",
        "stats",
        "url",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        decoder: FrameDecoder[T],
        *,
        url: str | None = None,
        idle_timeout: float | None = None,
        event_timeout: float | None = None,
        first_event_timeout: float | None = None,
        started_at: float | None = None,
        stats: StreamStats | None = None,
    ) -> None:
        self.response = response
        self.url = url if url is not None else redact_url(str(response.url))
        self._decoder = decoder
        self._idle_timeout = idle_timeout
        for name, value in (
            ("event_timeout", event_timeout),
            ("first_event_timeout", first_event_timeout),
        ):
            if value is not None and not value > 0:  # also refuses nan
                raise ValueError(
                    f"{name} must be a positive number of seconds or None, got {value}"
                )
        self._event_timeout = event_timeout
        self._first_event_timeout = first_event_timeout
        # Absolute deadline of the first event; None once an event arrived (or unset).
        self._first_deadline: float | None = None
        if first_event_timeout is not None:
            if started_at is None:
                started_at = asyncio.get_running_loop().time()
            self._first_deadline = started_at + first_event_timeout
        if stats is None:  # made without a request in hand: the clock started at started_at
            stats = new_stats(response.method, self.url)
            if started_at is not None:  # an event-loop time: the same clock's age
                stats.started_at -= asyncio.get_running_loop().time() - started_at
        self.stats = stats
        stats._attach(decoder, response.status)
        self._events: list[T] = []
        self._index = 0
        self._state = _OPEN
        self._lost = _loss_of(response)
        self._read_since: float | None = None  # when the pending read began waiting
        self._watchdog: asyncio.TimerHandle | None = None  # the idle timer (see _bark)

    # -- metadata -------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.response.headers

    @property
    def request_id(self) -> str | None:
        """The server's request id (``Request-Id`` or ``X-Request-Id``), if it sent one."""
        headers = self.response.headers
        return headers.get("Request-Id") or headers.get("X-Request-Id")

    @property
    def last_event_id(self) -> str:
        """The last event id the decoder has seen (what a resume sends as
        ``Last-Event-ID``).  It is read per chunk: while events of one chunk are being
        handed out it may already be the id of a later event of that chunk; the
        events themselves (``ServerSentEvent.id``, an ``id`` field) carry their own."""
        return self._decoder.last_event_id

    @property
    def retry(self) -> int | None:
        """The server's reconnection delay in ms (last ``retry:`` field), if any."""
        return self._decoder.retry

    @property
    def closed(self) -> bool:
        """No more events will come (exhausted, stopped at a sentinel, or closed)."""
        return self._state != _OPEN and self._index >= len(self._events)

    def __repr__(self) -> str:
        state = ("open", "done", "closed")[self._state]
        return f"<EventStream {self.response.status} {self.response.method} {self.url} {state}>"

    # -- iteration ------------------------------------------------------------------

    def __aiter__(self) -> _EventIterator[T]:
        return _EventIterator(self)

    async def __anext__(self) -> T:
        index = self._index
        events = self._events
        if index < len(events):
            self._index = index + 1
            return events[index]
        if await self._refill():
            self._index = 1
            return self._events[0]
        raise StopAsyncIteration

    def batches(self) -> _BatchIterator[T]:
        """Iterate over the lists of events decoded from each chunk read (never empty).

        One await per chunk instead of one per event; shares the stream's position
        with ``async for event in stream`` (events already handed out are skipped).
        """
        return _BatchIterator(self)

    async def next_batch(self) -> list[T] | None:
        """The events not yet handed out from the current chunk, else from the next
        chunk(s) with at least one event; ``None`` once the stream is over."""
        index = self._index
        events = self._events
        if index < len(events):
            self._index = len(events)
            return events[index:] if index else events
        if await self._refill():
            self._index = len(self._events)
            return self._events
        return None

    async def _refill(self) -> bool:
        """Read and decode until some events are ready (True) or the stream ends (False)."""
        if self._state != _OPEN:
            return False
        decoder = self._decoder
        stats = self.stats
        read = self.response.content.readany
        # Event-level timeouts: one deadline for this whole call (a consumer's own
        # time between calls is not the server's fault); None = no clock at all.
        deadline: float | None = None
        kind, seconds = "event", self._event_timeout
        if self._first_deadline is not None:
            deadline, kind, seconds = self._first_deadline, "first_event", self._first_event_timeout
        elif seconds is not None:
            deadline = asyncio.get_running_loop().time() + seconds
        # The idle bound is enforced by our clock too: aiohttp's sock_read does not
        # fire when its parser stalls (a malformed chunk size).  One timer per stream
        # (see _bark), not one per read: a stamp per read costs ~0.1 us, a timeout
        # context around each read ~15 us.
        idle = self._idle_timeout
        clock = asyncio.get_running_loop().time
        failure: BaseException | None = None
        try:
            while not decoder.finished:
                if decoder.has_backlog:
                    events = decoder.feed(b"")
                    stats.read(0, len(events))
                else:
                    if idle is not None:  # our idle clock: a stamp per read, one timer
                        self._read_since = clock()
                        if self._watchdog is None:
                            self._arm_watchdog(idle)
                    if deadline is None:
                        chunk = await read()
                    else:
                        try:
                            chunk = await await_by(deadline, read)
                        except DeadlineExceeded:
                            raise StreamTimeout(
                                kind, seconds or 0.0, decoder.last_event_id, self.url
                            ) from None
                    self._read_since = None
                    if not chunk:
                        pending: int = getattr(decoder, "pending_bytes", 0)
                        if pending:  # EOF inside an event: a body cut short, not an end
                            failure = self._interrupted(
                                f"the body ended inside an event ({pending} bytes of it pending)"
                            )
                            break
                        reset = _reset_of(self._lost)
                        if reset:  # a close-delimited body ended by a reset, not a close
                            failure = self._interrupted(reset)
                            break
                        decoder.close()
                        self._finish_at_eof()
                        return False
                    events = decoder.feed(chunk)
                    stats.read(len(chunk), len(events))
                if events:
                    self._events = events
                    self._first_deadline = None  # from now on, event_timeout (if any)
                    return True
        except _RECOVERABLE as exc:
            self._events = []  # the events after the bad one are the decoder's backlog
            self._index = 0
            self._first_deadline = None  # a bad event is an event: the first one arrived
            stats._event_error(exc)
            raise
        except (aiohttp.ServerTimeoutError, _IdleExpired):
            failure = StreamTimeout("idle", idle or 0.0, decoder.last_event_id, self.url)
        except (aiohttp.ClientError, HttpProcessingError, OSError) as exc:
            # (aiohttp's pure-Python parser raises HttpProcessingError subclasses such
            # as TransferEncodingError, which are not ClientErrors)
            if self._state == _CLOSED:  # aclose() from another task: the end, not a drop
                return False
            # A reset, a truncated body, transport framing the parser rejected.  The
            # aiohttp error is not chained: its message may carry the URL's query.
            failure = self._interrupted(_describe(exc))
        except BaseException as exc:  # cancellation, EventTooLarge, an event timeout, a bug
            stats._connection_error(exc)
            self._close()
            raise
        if failure is not None:
            decoder.close()  # a complete retry: line of the cut event still counts
            stats._connection_error(failure)
            self._close()
            raise failure
        await self._finish_after_sentinel()
        return False

    def _arm_watchdog(self, idle: float) -> None:
        # A weak reference: a pending timer must not keep a dropped stream alive
        # (its __del__ closes the connection).
        self._watchdog = asyncio.get_running_loop().call_later(idle, _bark, weakref.ref(self), idle)

    def _bark(self, idle: float) -> None:
        """The idle timer fired: fail the pending read if it has waited ``idle``
        seconds for bytes, else wait again (no read pending: disarm until the next)."""
        self._watchdog = None
        since = self._read_since
        if since is None or self._state != _OPEN:
            return
        loop = asyncio.get_running_loop()
        remaining = since + idle - loop.time()
        if remaining > 0:
            self._watchdog = loop.call_later(remaining, _bark, weakref.ref(self), idle)
        else:  # wakes the read with it, whatever aiohttp's parser is doing
            self.response.content.set_exception(_IdleExpired())

    def _disarm(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()

    def _interrupted(self, reason: str) -> StreamInterrupted:
        return StreamInterrupted(self.url, reason, self._decoder.last_event_id)

    # -- releasing ------------------------------------------------------------------

    def _finish_at_eof(self) -> None:
        self._state = _DONE
        self._disarm()
        self._events = []
        self._index = 0
        self.response.release()  # the whole body was read: back to the pool
        self.stats._connection_closed("eof")

    async def _finish_after_sentinel(self) -> None:
        self._state = _DONE
        self._disarm()
        self._events = []
        self._index = 0
        self.stats._connection_closed("sentinel")
        content = self.response.content
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        drained = 0
        try:
            while not content.at_eof() and drained <= DRAIN_MAX_BYTES:
                data = content.read_nowait()  # what is already buffered: no wait
                if not data:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    data = await asyncio.wait_for(content.readany(), remaining)
                drained += len(data)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            pass  # not drained: closed below
        except BaseException:  # cancelled while draining
            self.response.close()
            raise
        if content.at_eof():
            self.response.release()
        else:
            self.response.close()

    def _close(self) -> None:
        self._state = _CLOSED
        self._disarm()
        self._events = []
        self._index = 0
        self.response.close()
        self.stats._connection_closed("closed")

    async def aclose(self) -> None:
        """Stop the stream and release its connection (idempotent).

        A stream that was not read to its end is closed (the server may still be
        sending); one that ended cleanly has already returned its connection.
        """
        if self._state == _OPEN:
            self._close()
        else:
            self._events = []
            self._index = 0

    async def __aenter__(self) -> EventStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Garbage collected while open: close synchronously (no await possible here).
        # ``ClientResponse.close`` is a no-op once the loop is closed.
        if getattr(self, "_state", _CLOSED) == _OPEN:
            self._state = _CLOSED
            self.response.close()
            self.stats._connection_closed("garbage collected")


class _EventIterator(Generic[T]):
    """What ``async for`` iterates.  It lives exactly as long as the loop does, so
    its ``__del__`` runs when the loop is left early (``break``, ``return``, an
    exception in the body) and closes the stream then and there.

    Except when the loop ended because *this iterator* raised a recoverable error
    (one bad event): the stream is meant to go on in a new loop, so it stays open —
    even if this iterator is collected later, by the cyclic GC, mid-way through the
    next loop (the exception's traceback can keep it alive until then)."""

    __slots__ = ("_resumable", "_stream")

    def __init__(self, stream: EventStream[T]) -> None:
        self._stream = stream
        self._resumable = False

    def __aiter__(self) -> _EventIterator[T]:
        return self

    async def __anext__(self) -> T:
        stream = self._stream
        index = stream._index
        events = stream._events
        if index < len(events):
            stream._index = index + 1
            return events[index]
        try:
            refilled = await stream._refill()
        except _RECOVERABLE:
            self._resumable = True
            raise
        if refilled:
            stream._index = 1
            return stream._events[0]
        raise StopAsyncIteration

    def __del__(self) -> None:
        stream = self._stream
        if stream._state == _OPEN and not self._resumable:
            stream._close()


class _BatchIterator(Generic[T]):
    """What ``stream.batches()`` returns; closes the stream when dropped early
    (unless it stopped on a recoverable error, as ``_EventIterator``)."""

    __slots__ = ("_resumable", "_stream")

    def __init__(self, stream: EventStream[T]) -> None:
        self._stream = stream
        self._resumable = False

    def __aiter__(self) -> _BatchIterator[T]:
        return self

    async def __anext__(self) -> list[T]:
        try:
            batch = await self._stream.next_batch()
        except _RECOVERABLE:
            self._resumable = True
            raise
        if batch is None:
            raise StopAsyncIteration
        return batch

    def __del__(self) -> None:
        stream = self._stream
        if stream._state == _OPEN and not self._resumable:
            stream._close()


def _describe(exc: BaseException) -> str:
    """An aiohttp/OS error in one line, without the query string or credentials of
    any URL it quotes."""
    return redact_text(f"{exc.__class__.__name__}: {exc}".rstrip(": "))


def _bark(stream: weakref.ref[EventStream[Any]], idle: float) -> None:
    alive = stream()
    if alive is not None:
        alive._bark(idle)


def _loss_of(response: aiohttp.ClientResponse) -> asyncio.Future[None] | None:
    """For a body delimited by the connection's close (no length, no chunking), the
    future aiohttp settles when that connection is lost: aiohttp reports a reset
    there as a plain EOF, which would end such a body "cleanly"."""
    headers = response.headers
    if "Content-Length" in headers or "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    lost: asyncio.Future[None] | None = getattr(protocol, "closed", None)
    if lost is not None:
        lost.add_done_callback(_retrieved)  # read or not, never "exception never retrieved"
    return lost


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _reset_of(lost: asyncio.Future[None] | None) -> str:
    """Why the connection under a close-delimited body was lost ("" if it closed cleanly)."""
    if lost is None or not lost.done() or lost.cancelled():
        return ""
    error = lost.exception()
    return "" if error is None else f"the connection was reset ({_describe(error)})"
