"""``aiostreams.connect()``: one logical stream across dropped connections.

The semantics are the WHATWG ``EventSource`` ("reestablish the connection",
https://html.spec.whatwg.org/multipage/server-sent-events.html), plus what a
library can do better than a browser:

============================================  =====================================
what happens                                   outcome
============================================  =====================================
connection lost / reset / cut mid-event        reconnect (reason ``"dropped"``)
body ends cleanly (EOF) without a sentinel     GET: reconnect (``"eof"``), as
                                               EventSource; POST: ends (opt in with
                                               ``reconnect_on_eof=True``)
idle / event / first-event timeout             reconnect (``"timeout"``)
429, 500, 502, 503, 504 or cannot connect      reconnect with backoff (``"status"``,
                                               ``"connect"``), ``Retry-After`` honoured
204 No Content                                 ends quietly, for good
other 4xx/5xx                                  raises ``HTTPStatusError``, for good
2xx that is not ``text/event-stream``          raises ``UnexpectedContentType``
sentinel (``decoder.finished``) / ``until``    ends quietly, for good
event or line over the size limits             raises ``EventTooLarge``/``LineTooLong``
bad event (``ResponseValidationError``...)     raised; iteration may go on
``aclose()`` / leaving ``async with``          ends, connection closed
more than ``max_reconnects`` in a row          the last error is raised (``"eof"``:
                                               ends quietly)
============================================  =====================================

Delays: a connection that delivered events reconnects after the server's
``retry:`` (``retry_ms`` until the server sends one).  Reconnects in a row with
no event in between back off: ``retry * 2**(n-1)``, capped at ``max_retry_ms``,
with equal jitter (a random delay in ``[d/2, d]``) so that clients dropped
together do not come back together.  Every reconnect calls ``on_reconnect``.

Replays: each request carries ``Last-Event-ID``.  A compliant server resumes
after it; some replay instead (from the start, or from that id inclusive).  An
event is skipped only when it is provably a copy of one already delivered: the
same id, event type and data bytes (a blake2b digest of each delivered event is
kept, for the last ``_REMEMBERED_EVENTS`` events of at most ``replay_window``
bytes per connection).  Right after a reconnect, events are checked until the
first that is not a copy; it and everything after it are delivered.  So ids
that restart with new data, or per-connection ids, are all delivered; an event
without id is never skipped; a replay reaching past the window is delivered
again (a duplicate, never a loss).  The check works on bytes, before decoding,
so a replayed event is never decoded (nor validated) twice.
``EventSource.replayed`` counts the skipped events.

Drops and ends: a reset, a body ending inside an event, or broken transport
framing is a drop (``StreamInterrupted``): reconnect.  A clean end re-sends only
an idempotent request (GET...) unless ``reconnect_on_eof=True``.  Waits the server
dictates are clamped to ``max_server_wait_ms``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import random
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

import aiohttp
import msgspec

from ._events import ServerSentEvent
from ._framing import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from ._request import (
    DEFAULT_SENSITIVE_HEADERS,
    HTTPRequest,
    is_event_stream,
    send,
    split_url,
    unexpected_content_type,
)
from ._retry import DEFAULT_MAX_SERVER_WAIT, RETRYABLE_STATUSES, parse_retry_after
from ._session import create_session
from ._stats import StreamStats, new_stats, raised_through
from ._stream import EventStream
from ._timeouts import DeadlineExceeded, await_by
from ._typed import EventSchema, TypedDecoder
from .errors import (
    AiostreamsError,
    ConnectError,
    HTTPStatusError,
    ResponseValidationError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
)

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from ._protocol import FrameDecoder

__all__ = [
    "DEFAULT_MAX_RETRY_MS",
    "DEFAULT_MAX_SERVER_WAIT_MS",
    "DEFAULT_RETRY_MS",
    "EventSource",
    "Reconnect",
    "Resume",
    "ResumeRequest",
    "connect",
]

T = TypeVar("T")

#: The reconnection time until the server sends ``retry:`` (browsers use 3 s too).
DEFAULT_RETRY_MS: Final = 3000
#: The ceiling of the backoff between reconnects that deliver nothing.
DEFAULT_MAX_RETRY_MS: Final = 30_000
#: Events whose (id, bytes) digest is remembered to recognise a replay.
_REMEMBERED_EVENTS: Final = 1024
#: Bytes of each connection's delivered body kept (as received) to compute those
#: digests when it drops; a replay reaching further back is delivered again.
DEFAULT_REPLAY_WINDOW: Final = 64 * 1024

#: The longest wait a server can impose with ``retry:`` or ``Retry-After`` (ms).
DEFAULT_MAX_SERVER_WAIT_MS: Final = int(DEFAULT_MAX_SERVER_WAIT * 1000)
#: The floor of the backoff between failing reconnects (s): a server that says
#: ``retry: 0`` and then fails must not make the client spin.
MIN_BACKOFF: Final = 0.001
#: Methods whose clean end may re-send the request (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: The jitter of reconnect delays when the caller gives no ``rng``: one generator for
#: all streams (a ``random.Random`` is 2.5 KiB: a sixth of an idle stream's memory).
_JITTER: Final = random.Random()
#: ``DEFAULT_SENSITIVE_HEADERS`` lower-cased, built once for every ``connect()``.
_DEFAULT_SENSITIVE: Final = frozenset(name.lower() for name in DEFAULT_SENSITIVE_HEADERS)

DecoderFactory = Callable[[str], "FrameDecoder[T]"]


@dataclass(frozen=True)
class Reconnect:
    """What ``on_reconnect`` receives, before the client waits and reconnects.

    Attributes:
        attempt: 1 for the first reconnect since an event was delivered, 2, 3, ...
            for reconnects in a row that delivered nothing in between.
        delay: seconds the client waits before sending the request.
        last_event_id: what the request will send as ``Last-Event-ID`` (``""``: none).
        reason: ``"dropped"`` (connection lost mid-body), ``"eof"`` (body ended
            without a sentinel), ``"timeout"`` (idle/event/first-event timeout),
            ``"status"`` (a retryable HTTP status), ``"connect"`` (the server
            could not be reached or sent no headers in time) or ``"error"`` (an
            error event that ``reconnect_on_error`` accepted).
        error: the error that ended the connection (``None`` for ``"eof"``).
        reconnects: how many reconnects this stream has made, this one included.
    """

    attempt: int
    delay: float
    last_event_id: str
    reason: str
    error: BaseException | None
    reconnects: int


OnReconnect = Callable[[Reconnect], "Awaitable[None] | None"]


@dataclass(frozen=True)
class ResumeRequest:
    """What a reconnect sends, handed to ``connect(resume=...)`` to change it.

    Attributes:
        params: the query parameters (the URL's query string included).
        headers: the request headers, ``Last-Event-ID`` already set when an id was seen.
        body: the request body (``None``: none).
    """

    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes | None = None

    def with_params(self, **params: str) -> ResumeRequest:
        """A copy with ``params`` added (or replacing those of the same name)."""
        return ResumeRequest({**self.params, **params}, self.headers, self.body)

    def with_headers(self, **headers: str) -> ResumeRequest:
        """A copy with ``headers`` added (or replacing those of the same name)."""
        return ResumeRequest(self.params, {**self.headers, **headers}, self.body)

    def with_json(self, value: Any) -> ResumeRequest:
        """A copy whose body is ``value`` encoded as JSON."""
        return ResumeRequest(self.params, self.headers, msgspec.json.encode(value))


#: ``resume(last_event, request) -> request``: builds a reconnect's request.
Resume = Callable[[Any, ResumeRequest], ResumeRequest]


@overload
def connect(
    url: str,
    *,
    decoder: None = None,
    method: str = ...,
    headers: Mapping[str, str] | None = ...,
    params: Mapping[str, str] | None = ...,
    body: bytes | str | None = ...,
    json: Any = ...,
    session: aiohttp.ClientSession | None = ...,
    last_event_id: str = ...,
    retry_ms: int = ...,
    max_retry_ms: int = ...,
    max_server_wait_ms: int = ...,
    max_reconnects: int | None = ...,
    reconnect_on_eof: bool | None = ...,
    on_reconnect: OnReconnect | None = ...,
    resume: Callable[[ServerSentEvent, ResumeRequest], ResumeRequest] | None = ...,
    reconnect_on_error: Callable[[StreamError], bool] | None = ...,
    until: Callable[[ServerSentEvent], bool] | None = ...,
    idle_timeout: float | None = ...,
    event_timeout: float | None = ...,
    first_event_timeout: float | None = ...,
    max_event_size: int = ...,
    max_line_length: int | None = ...,
    sensitive_headers: Iterable[str] = ...,
) -> EventSource[ServerSentEvent]: ...


@overload
def connect(
    url: str,
    *,
    decoder: EventSchema[T] | DecoderFactory[T],
    method: str = ...,
    headers: Mapping[str, str] | None = ...,
    params: Mapping[str, str] | None = ...,
    body: bytes | str | None = ...,
    json: Any = ...,
    session: aiohttp.ClientSession | None = ...,
    last_event_id: str = ...,
    retry_ms: int = ...,
    max_retry_ms: int = ...,
    max_server_wait_ms: int = ...,
    max_reconnects: int | None = ...,
    reconnect_on_eof: bool | None = ...,
    on_reconnect: OnReconnect | None = ...,
    resume: Callable[[T, ResumeRequest], ResumeRequest] | None = ...,
    reconnect_on_error: Callable[[StreamError], bool] | None = ...,
    until: Callable[[T], bool] | None = ...,
    idle_timeout: float | None = ...,
    event_timeout: float | None = ...,
    first_event_timeout: float | None = ...,
    max_event_size: int = ...,
    max_line_length: int | None = ...,
    sensitive_headers: Iterable[str] = ...,
) -> EventSource[T]: ...


def connect(
    url: str,
    *,
    decoder: EventSchema[Any] | DecoderFactory[Any] | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    json: Any = None,
    session: aiohttp.ClientSession | None = None,
    last_event_id: str = "",
    retry_ms: int = DEFAULT_RETRY_MS,
    max_retry_ms: int = DEFAULT_MAX_RETRY_MS,
    max_server_wait_ms: int = DEFAULT_MAX_SERVER_WAIT_MS,
    max_reconnects: int | None = None,
    reconnect_on_eof: bool | None = None,
    on_reconnect: OnReconnect | None = None,
    resume: Callable[[Any, ResumeRequest], ResumeRequest] | None = None,
    reconnect_on_error: Callable[[StreamError], bool] | None = None,
    until: Callable[[Any], bool] | None = None,
    idle_timeout: float | None = None,
    event_timeout: float | None = None,
    first_event_timeout: float | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_line_length: int | None = None,
    sensitive_headers: Iterable[str] = DEFAULT_SENSITIVE_HEADERS,
) -> EventSource[Any]:
    """Open a Server-Sent Events stream that reconnects, resuming with ``Last-Event-ID``.

    ::

        async with aiostreams.connect("https://example.com/events") as events:
            async for event in events:          # ServerSentEvent, across reconnects
                print(event.id, event.data)

    ``async with`` sends the request and waits for the headers (``status``,
    ``headers``; an error that ends the stream is raised there); iterated without
    it (given a ``session=``), nothing is sent until the first event is awaited.
    See the module documentation for what ends the stream and what reconnects.

    Args:
        url: the stream's URL (its query string and any ``user:password@`` are
            never shown in messages; the latter is sent as Basic auth).
        decoder: ``None`` for raw :class:`ServerSentEvent`; an
            :class:`EventSchema` for typed events (its sentinel ends the stream);
            or a callable ``(last_event_id) -> FrameDecoder`` called per connection.
        method, headers, params: the request; ``Accept: text/event-stream`` and
            ``Cache-Control: no-cache`` are added unless given.
        body: request body bytes (a ``str`` is sent as UTF-8); or ``json``: any
            value, encoded with msgspec and sent as ``application/json``.
        session: an ``aiohttp.ClientSession`` to use (the caller keeps owning it);
            default: a :func:`create_session` made at ``async with`` and closed
            at its end.
        last_event_id: resume a stream: sent as ``Last-Event-ID`` from the start.
        retry_ms: the reconnection time until the server sends ``retry:``.
        max_retry_ms: the ceiling of the backoff between failing reconnects.
        max_server_wait_ms: the longest wait a server can impose (``retry:``,
            ``Retry-After``); larger values are clamped to it (10 minutes).
        max_reconnects: the most reconnects in a row without an event delivered
            in between (``None``: no limit, as EventSource; ``0``: never reconnect).
        reconnect_on_eof: reconnect when the body ends cleanly without a sentinel
            (EventSource does); ``False`` ends the stream there.  ``None`` (the
            default): ``True`` for GET, HEAD, OPTIONS, PUT and DELETE; ``False``
            for POST, PATCH and other methods that are not idempotent, so a clean
            end never re-sends them (a drop mid-body still does, resuming with
            ``Last-Event-ID``); pass ``True`` to opt in.
        on_reconnect: called (and awaited, if it returns an awaitable) with a
            :class:`Reconnect` before each reconnect's wait.
        resume: builds each reconnect's request from the last event delivered
            (not called before one was): ``resume(last_event, request)`` returns
            a :class:`ResumeRequest`, e.g. ``request.with_params(after=...)``
            for a server that resumes by a cursor.  Default: the request with
            ``Last-Event-ID`` (which ``request.headers`` already carries).
        reconnect_on_error: a predicate over the :class:`StreamError` an error
            event raises (an ``errors=`` entry of the schema): true reconnects
            (reason ``"error"``, the same backoff and ``max_reconnects``) instead
            of raising, e.g. ``lambda e: e.event.event == "overloaded"``.
        until: a predicate: the first event for which it is true is yielded and
            then the stream ends for good (a terminal event).
        idle_timeout: seconds without a byte (also bounds connecting and the wait
            for headers); ``None`` keeps the session's (300 s by default).
        event_timeout: seconds without an *event* while waiting for one; comments
            and heartbeats do not reset it.  ``None``: no limit.
        first_event_timeout: seconds from sending a request to its first event.
        max_event_size, max_line_length: the framer's limits (see
            :class:`SSEDecoder`); ignored when ``decoder`` is a callable.
        sensitive_headers: names of the headers dropped when a redirect leaves
            the URL's origin (default ``aiostreams.DEFAULT_SENSITIVE_HEADERS``:
            Authorization, Proxy-Authorization, Cookie, X-API-Key, Api-Key,
            X-Auth-Token, X-Access-Token, Private-Token).

    A timeout reconnects instead of raising; the :class:`StreamTimeout` is
    raised only when ``max_reconnects`` is exhausted.

    Returns:
        An :class:`EventSource`: an async context manager and async iterator.
    """
    if json is not None and body is not None:
        raise TypeError("pass either body= or json=, not both")
    if retry_ms < 0 or max_retry_ms < 0 or max_server_wait_ms < 0:
        raise ValueError(
            "retry_ms, max_retry_ms and max_server_wait_ms must be >= 0, "
            f"got {retry_ms}, {max_retry_ms}, {max_server_wait_ms}"
        )
    if max_event_size <= 0 or (max_line_length is not None and max_line_length <= 0):
        raise ValueError(
            "max_event_size and max_line_length must be positive, "
            f"got {max_event_size}, {max_line_length}"
        )
    if max_reconnects is not None and max_reconnects < 0:
        raise ValueError(f"max_reconnects must be >= 0 or None, got {max_reconnects}")
    for name, hook in (("resume", resume), ("reconnect_on_error", reconnect_on_error)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be a callable or None, got {type(hook).__name__}")
    for name, value in (
        ("idle_timeout", idle_timeout),
        ("event_timeout", event_timeout),
        ("first_event_timeout", first_event_timeout),
    ):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value}")
    all_headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    all_headers.update(headers or {})
    data: bytes | None
    if json is not None:
        data = msgspec.json.encode(json)
        all_headers.setdefault("Content-Type", "application/json")
    else:
        data = body.encode() if isinstance(body, str) else body
    # The query string goes into params: messages and reprs name the URL without it
    # (a query may carry a token).  Credentials in the URL (user:password@) are secret
    # too: sent as the Basic auth header aiohttp would make of them, never shown.  A URL
    # that can never work fails here, once, instead of reconnecting forever.
    base_url, query, basic = split_url(url, "url")
    if basic is not None:
        if any(name.lower() == "authorization" for name in all_headers):
            raise ValueError(
                "pass credentials either in the URL or in an Authorization header, not both"
            )
        all_headers["Authorization"] = basic
    query.update(params or {})
    if sensitive_headers is DEFAULT_SENSITIVE_HEADERS:
        sensitive = _DEFAULT_SENSITIVE  # shared: a frozenset is 1.2 KiB per stream
    else:
        sensitive = frozenset(name.lower() for name in sensitive_headers)
    request = HTTPRequest(method.upper(), base_url, all_headers, query, data, sensitive)
    if reconnect_on_eof is None:
        reconnect_on_eof = request.method in IDEMPOTENT_METHODS

    factory: DecoderFactory[Any]
    if decoder is None:

        def factory(lid: str) -> FrameDecoder[Any]:
            return SSEDecoder(
                max_event_size=max_event_size, max_line_length=max_line_length, last_event_id=lid
            )

    elif isinstance(decoder, EventSchema):
        schema = decoder

        def factory(lid: str) -> FrameDecoder[Any]:
            framer = SSEDecoder(
                max_event_size=max_event_size, max_line_length=max_line_length, last_event_id=lid
            )
            return TypedDecoder(schema, framer)

    elif callable(decoder):
        factory = decoder
    else:
        raise TypeError(f"decoder must be None, an EventSchema or a callable, got {decoder!r}")

    return EventSource(
        request,
        factory,
        session=session,
        last_event_id=last_event_id,
        retry_ms=retry_ms,
        max_retry_ms=max_retry_ms,
        max_server_wait_ms=max_server_wait_ms,
        max_reconnects=max_reconnects,
        reconnect_on_eof=reconnect_on_eof,
        on_reconnect=on_reconnect,
        resume=resume,
        reconnect_on_error=reconnect_on_error,
        until=until,
        idle_timeout=idle_timeout,
        event_timeout=event_timeout,
        first_event_timeout=first_event_timeout,
        max_event_size=max_event_size,
        max_line_length=max_line_length,
    )


class EventSource(Generic[T]):
    """One logical event stream over as many connections as it takes (see :func:`connect`).

    Attributes:
        last_event_id: the last event id seen (sent as ``Last-Event-ID`` next time).
        retry_ms: the current reconnection time (the server's last ``retry:``).
        reconnects: how many times the stream has reconnected.
        connections: how many connections returned a stream (2xx event stream).
        stream: the current :class:`EventStream`, or ``None`` between connections.
        status, headers: the current response's (``None`` between connections);
            set once ``async with`` is entered (it opens the connection).
        stats: a :class:`~aiostreams.StreamStats` of the whole stream, across its
            connections (events, bytes, time to first event, reconnects by reason...).
    """

    __slots__ = (
        "__weakref__",
        "_decoder",
        "_delivered",
        "_done",
        "_entered",
        "_event_timeout",
        "_events",
        "_factory",
        "_failures",
        "_first_event_timeout",
        "_idle_timeout",
        "_index",
        "_last_event",
        "_limits",
        "_max_reconnects",
        "_max_retry_ms",
        "_max_server_wait_ms",
        "_on_reconnect",
        "_owns_session",
        "_progressed",
        "_reconnect_on_eof",
        "_reconnect_on_error",
        "_replay_window",
        "_replayed",
        "_resume",
        "_rng",
        "_session",
        "_status_error",
        "_until",
        "_waiting",
        "connections",
        "last_event_id",
        "reconnects",
        "request",
        "retry_ms",
        "stats",
        "stream",
    )

    def __init__(
        self,
        request: HTTPRequest,
        decoder_factory: DecoderFactory[T],
        *,
        session: aiohttp.ClientSession | None = None,
        last_event_id: str = "",
        retry_ms: int = DEFAULT_RETRY_MS,
        max_retry_ms: int = DEFAULT_MAX_RETRY_MS,
        max_server_wait_ms: int = DEFAULT_MAX_SERVER_WAIT_MS,
        max_reconnects: int | None = None,
        reconnect_on_eof: bool = True,
        on_reconnect: OnReconnect | None = None,
        resume: Callable[[T, ResumeRequest], ResumeRequest] | None = None,
        reconnect_on_error: Callable[[StreamError], bool] | None = None,
        until: Callable[[T], bool] | None = None,
        idle_timeout: float | None = None,
        event_timeout: float | None = None,
        first_event_timeout: float | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_line_length: int | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        rng: random.Random | None = None,
    ) -> None:
        self.request = request
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self.reconnects = 0
        self.connections = 0
        self.stream: EventStream[T] | None = None
        self._factory = decoder_factory
        self._session = session
        self._owns_session = session is None
        self._entered = False
        self._max_retry_ms = max_retry_ms
        self._max_server_wait_ms = max_server_wait_ms
        self._max_reconnects = max_reconnects
        self._reconnect_on_eof = reconnect_on_eof
        self._on_reconnect = on_reconnect
        #: What an HTTP error status raises: the SDK's ``.connect()`` sets SDKError.
        self._status_error: type[HTTPStatusError] = HTTPStatusError
        self._resume = resume
        self._reconnect_on_error = reconnect_on_error
        self._last_event: list[T] = []  # the last event handed out (resume's input)
        self._until = until
        self._idle_timeout = idle_timeout
        self._event_timeout = event_timeout
        self._first_event_timeout = first_event_timeout
        self._rng = rng or _JITTER
        self._limits = (max_event_size, max_line_length)  # of the replay check's framing
        self._decoder: _ResumeFilter[T] | None = None
        # Digests of (id, bytes) of the last events delivered, oldest first (a dict
        # as an ordered set): what a replay is checked against.
        self._delivered: dict[bytes, None] = {}
        self._replay_window = replay_window
        self._replayed = 0
        self._failures = 0  # reconnects in a row without an event delivered
        self._progressed = False  # an event was delivered since the last reconnect
        self._done = False
        self._events: list[T] = []
        self._index = 0
        self._waiting: asyncio.Future[None] | None = None  # the wait before a reconnect
        self.stats: StreamStats = new_stats(request.method, request.url, logical=True)
        self.stats._last_event_id = last_event_id

    # -- state ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The stream is over for good (ended, stopped, failed or closed)."""
        return self._done

    @property
    def replayed(self) -> int:
        """Events the server replayed after a reconnect, skipped (never delivered twice)."""
        current = self._decoder.skipped if self._decoder is not None else 0
        return self._replayed + current

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered by the current connection's framing (0 between connections)."""
        return self._decoder.pending_bytes if self._decoder is not None else 0

    @property
    def wants_session(self) -> bool:
        """Not entered and given no ``session=``: :func:`~aiostreams.merge` lends it
        the merge's session (see :meth:`use_session`)."""
        return self._session is None and not self._entered and not self._done

    def use_session(self, session: aiohttp.ClientSession) -> None:
        """Use ``session`` (the caller keeps owning it) instead of making one at
        ``async with``; only before the stream is entered or iterated."""
        if not self.wants_session:
            raise RuntimeError("this EventSource already has a session, or was entered")
        self._session = session
        self._owns_session = False

    @property
    def status(self) -> int | None:
        """The HTTP status of the current connection (``None`` between connections)."""
        stream = self.stream
        return stream.status if stream is not None else None

    @property
    def headers(self) -> CIMultiDictProxy[str] | None:
        """The response headers of the current connection (``None`` between connections)."""
        stream = self.stream
        return stream.headers if stream is not None else None

    def __repr__(self) -> str:  # never headers (credentials) nor the query string
        state = "closed" if self._done else ("open" if self.stream is not None else "idle")
        return (
            f"<EventSource {self.request.target} {state}, last event id "
            f"{self.last_event_id!r}, {self.reconnects} reconnects>"
        )

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> EventSource[T]:
        """Open the connection now (as httpx-sse's ``aconnect_sse``): its status and
        headers are there, and an error that ends the stream (a 4xx, a wrong content
        type, ``max_reconnects`` exhausted...) is raised here.  A retryable status or
        a failure to connect retries per the policy first.  A 204 enters a stream
        that is already over (``closed``, no events)."""
        await self._enter_lazily()
        if self.stream is None and not self._done:
            try:
                if await self._open() is None:
                    await self.aclose()  # 204: over before it began
            except BaseException:
                await self.aclose()  # __aexit__ will not run: release the session here
                raise
        return self

    async def _enter_lazily(self) -> None:
        """Own a session, send nothing yet (``aiostreams.blocking.connect`` opens on
        the first event asked for)."""
        self._entered = True
        if self._session is None:
            self._session = create_session()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End the stream for good: close the connection and the session it made (idempotent)."""
        self._done = True
        self._events = []
        self._index = 0
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(None)  # a reader waiting to reconnect ends now
        await self._drop_connection()
        # Every internal path that ends the stream on an error closes it from its
        # except block: an aiostreams error being handled that passed through this
        # source ended it.  Cancellation, the caller's errors, another stream's: not ours.
        self.stats._end(raised_through(sys.exc_info()[1], self, AiostreamsError))
        session = self._session
        if session is not None and self._owns_session:
            self._session = None
            await session.close()

    # -- iteration --------------------------------------------------------------------

    def __aiter__(self) -> EventSource[T]:
        return self

    async def __anext__(self) -> T:
        index = self._index
        events = self._events
        if index >= len(events):
            batch = await self._next_connection_batch()
            if batch is None:
                raise StopAsyncIteration
            self._events = events = batch
            index = 0
        self._index = index + 1
        event = events[index]
        if self._until is not None and self._until(event):
            self.stats.events -= len(events) - index - 1  # decoded, never delivered
            await self.aclose()  # a terminal event: delivered, then the end
        return event

    async def next_batch(self) -> list[T] | None:
        """The events not yet handed out from the current read, else from the next
        read(s) with events; ``None`` once the stream is over (used by ``merge``)."""
        index = self._index
        events = self._events
        if index < len(events):
            batch = events[index:] if index else events
        else:
            got = await self._next_connection_batch()
            if got is None:
                return None
            batch = got
        self._events = []
        self._index = 0
        if self._until is not None:
            for position, event in enumerate(batch):
                if self._until(event):
                    self.stats.events -= len(batch) - position - 1  # never delivered
                    await self.aclose()
                    return batch[: position + 1]
        return batch

    async def _next_connection_batch(self) -> list[T] | None:
        """Events of the next read, reconnecting as often as the policy allows."""
        while not self._done:
            stream = self.stream
            if stream is None:
                stream = await self._open()
                if stream is None:  # 204, or gave up at EOF
                    await self.aclose()
                    return None
            try:
                batch = await stream.next_batch()
            except StreamError as exc:
                if self._reconnect_on_error is None or not self._reconnect_on_error(exc):
                    raise  # one error event; the connection goes on
                await self._reconnect_later("error", exc)  # e.g. "overloaded": try again
                continue
            except ResponseValidationError:
                raise  # one bad event; the connection goes on
            except (ConnectError, StreamTimeout) as exc:
                reason = "timeout" if isinstance(exc, StreamTimeout) else "dropped"
                await self._reconnect_later(reason, exc)
                continue
            except BaseException:  # too large an event, cancellation, a bug
                await self.aclose()
                raise
            if batch is not None:
                self._progressed = True
                if batch and self._resume is not None:
                    # Handed out whole before the next read: its last is the last delivered.
                    self._last_event = batch[-1:]
                return batch
            if self._done or self._decoder is None:  # aclose() from another task
                return None
            if self._decoder.finished or not self._reconnect_on_eof:
                await self.aclose()  # a sentinel, or EOF ends it as configured
                return None
            await self._reconnect_later("eof", None)
        return None

    # -- connecting -------------------------------------------------------------------

    async def _open(self) -> EventStream[T] | None:
        """Send the request until it answers with an event stream (retrying per policy)."""
        if not self._entered and self._session is None:
            raise RuntimeError(
                "iterate an EventSource inside `async with aiostreams.connect(...) as events:` "
                "(it owns an HTTP session that must be closed), or pass session="
            )
        session = self._session
        assert session is not None
        loop = asyncio.get_running_loop()
        while not self._done:
            try:
                request = self._request()
            except BaseException:  # the caller's resume= failed: the stream cannot go on
                await self.aclose()
                raise
            self.stats._begin()
            started = loop.time()
            try:
                if self._first_event_timeout is None:
                    response = await send(
                        session,
                        request,
                        timeout=self._idle_timeout,
                        status_error=self._status_error,
                    )
                else:
                    deadline = started + self._first_event_timeout
                    try:
                        response = await await_by(
                            deadline,
                            functools.partial(
                                send,
                                session,
                                request,
                                timeout=self._idle_timeout,
                                status_error=self._status_error,
                            ),
                        )
                    except DeadlineExceeded:
                        raise StreamTimeout(
                            "first_event",
                            self._first_event_timeout,
                            self.last_event_id,
                            request.url,
                        ) from None
            except HTTPStatusError as exc:
                if exc.status_code not in RETRYABLE_STATUSES:
                    await self.aclose()
                    raise
                headers = exc.headers
                retry_after = parse_retry_after(
                    headers.get("Retry-After") if headers is not None else None
                )
                await self._reconnect_later("status", exc, retry_after)
                continue
            except (ConnectError, StreamTimeout) as exc:
                if self._done:  # aclose() while connecting: the end, not a failure
                    return None
                if isinstance(exc, StreamTimeout) and not exc.last_event_id:
                    # send() knows no event ids: name the one this stream resumes from
                    exc = StreamTimeout(exc.kind, exc.seconds, self.last_event_id, exc.url)
                # reached, but its response was broken: a drop, not "could not connect"
                reason = "dropped" if isinstance(exc, StreamInterrupted) else "connect"
                await self._reconnect_later(reason, exc)
                continue
            except BaseException:
                await self.aclose()
                raise
            if response.status == 204:  # "No Content": the server says stop reconnecting
                response.release()
                return None
            if not is_event_stream(response):
                error = await unexpected_content_type(response, request, "text/event-stream")
                self.stats.error = error
                await self.aclose()
                raise error
            self.connections += 1
            try:
                self._decoder = decoder = _ResumeFilter(
                    self._factory(self.last_event_id),
                    self._delivered,
                    self._limits,
                    self._replay_window,
                )
                idle = self._idle_timeout
                self.stream = EventStream(
                    response,
                    decoder,
                    url=request.url,
                    idle_timeout=idle if idle is not None else session.timeout.sock_read,
                    event_timeout=self._event_timeout,
                    first_event_timeout=self._first_event_timeout,
                    started_at=started,
                    stats=self.stats,
                )
            except BaseException:  # no decoder (the caller's factory failed, bad limits)
                response.close()
                await self.aclose()
                raise
            return self.stream
        return None

    def _request(self) -> HTTPRequest:
        request = self.request
        if not self.last_event_id and not self._last_event:
            return request
        headers = dict(request.headers)
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        params, body = request.params, request.body
        if self._resume is not None and self._last_event:
            built = self._resume(self._last_event[0], ResumeRequest(params, headers, body))
            if not isinstance(built, ResumeRequest):
                raise TypeError(f"resume= must return a ResumeRequest, got {type(built).__name__}")
            params, headers, body = built.params, dict(built.headers), built.body
        return HTTPRequest(
            request.method, request.url, headers, params, body, request.sensitive_headers
        )

    async def _drop_connection(self) -> None:
        """Close the current connection; keep what the next one needs (id, retry)."""
        stream, self.stream = self.stream, None
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            self.last_event_id = decoder.last_event_id
            if decoder.retry is not None:  # the server's word, clamped
                self.retry_ms = min(decoder.retry, self._max_server_wait_ms)
            self._replayed += decoder.skipped
            delivered = self._delivered
            # Only a reconnect needs the digests: a stream that ends (aclose) skips
            # the work (thousands of merged streams end together).
            for digest in decoder.harvest() if not self._done else ():
                delivered.pop(digest, None)  # re-inserted last: it is the newest
                delivered[digest] = None
            while len(delivered) > _REMEMBERED_EVENTS:
                del delivered[next(iter(delivered))]
        if stream is not None:
            await stream.aclose()

    async def _reconnect_later(
        self, reason: str, error: BaseException | None, retry_after: float | None = None
    ) -> None:
        """Close the connection, then wait before the next attempt; give up (end or
        raise ``error``) past ``max_reconnects``."""
        await self._drop_connection()
        if self._done:  # aclose() (e.g. from another task) ended the connection
            return
        if self._progressed:
            self._failures = 0
            self._progressed = False
        self._failures += 1
        if self._max_reconnects is not None and self._failures > self._max_reconnects:
            await self.aclose()
            if error is None:
                return  # a clean end of the body: the stream just ends
            if self._max_reconnects and sys.version_info >= (3, 11):
                error.add_note(
                    f"aiostreams.connect gave up after {self._max_reconnects} reconnects in a row "
                    "without an event (max_reconnects)"
                )
            raise error
        delay = self._delay(retry_after)
        self.reconnects += 1
        self.stats._reconnect(reason, delay, self._failures, self.last_event_id, error)
        if self._on_reconnect is not None:
            outcome = self._on_reconnect(
                Reconnect(self._failures, delay, self.last_event_id, reason, error, self.reconnects)
            )
            if inspect.isawaitable(outcome):
                await outcome
        if self._done:  # closed by on_reconnect
            return
        loop = asyncio.get_running_loop()
        self._waiting = waiting = loop.create_future()
        timer = loop.call_later(delay, _wake, waiting)
        try:
            await waiting  # like asyncio.sleep(delay), but aclose() ends it
        finally:
            timer.cancel()
            self._waiting = None

    def _delay(self, retry_after: float | None) -> float:
        """The server's reconnection time after a connection that worked; exponential
        backoff with equal jitter for failures in a row (from at least ``MIN_BACKOFF``,
        so ``retry: 0`` cannot make a failing server spin us); never below
        ``Retry-After``; whatever the server says, at most ``max_server_wait_ms``."""
        base = self.retry_ms / 1000
        if self._failures <= 1:
            delay = base
        else:
            # min(.., 64): 2**1024 overflows a float after a long outage
            grown = max(base, MIN_BACKOFF) * 2 ** min(self._failures - 1, 64)
            ceiling = min(grown, max(self._max_retry_ms / 1000, base))
            delay = self._rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._max_server_wait_ms / 1000))
        return delay


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


_CHECKING, _PASSING = 0, 1


def _digest(event_id: str, frame: tuple[str, bytes, int | None]) -> bytes:
    """What identifies a delivered event: its id, its type and its data bytes
    (``retry:`` lines and comments around it are not the event).  Neither an id
    nor an event type contains a NUL here, nor a LF: an unambiguous joint."""
    event_type, data, _ = frame
    head = f"{event_id}\0{event_type}\n".encode()
    return hashlib.blake2b(head + data, digest_size=16).digest()


class _ResumeFilter(Generic[T]):
    """The ``FrameDecoder`` of one connection: the user's decoder, behind a check
    that skips what the server replays after a reconnect (see the module doc).

    Until the connection's first event that is not a provable copy it frames the
    bytes itself (a second ``SSEDecoder``, ``feed_region``/``parse_block``); from
    the handover on, every chunk goes straight to the inner decoder and is kept
    (up to ``window`` bytes, whole chunks) so that, if the connection drops,
    :meth:`harvest` can tell which events it delivered.  One extra call and a list
    append per chunk, nothing per event.
    """

    __slots__ = (
        "_delivered",
        "_inner",
        "_limits",
        "_splitter",
        "_state",
        "_strip_lf",
        "_tail",
        "_tail_id",
        "_tail_size",
        "_trimmed",
        "_window",
        "skipped",
    )

    def __init__(
        self,
        inner: FrameDecoder[T],
        delivered: dict[bytes, None],
        limits: tuple[int, int | None],
        window: int = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self._inner = inner
        self._delivered = delivered
        self._window = window
        # Until the handover this framer, not the inner decoder, holds the bytes: it
        # must enforce the same limits (a user's SSEDecoder carries its own).
        self._limits = (
            getattr(inner, "max_event_size", limits[0]),
            getattr(inner, "max_line_length", limits[1]),
        )
        self._splitter: SSEDecoder | None = None
        self._state = _PASSING
        if delivered:  # something was delivered before: a replay is possible
            self._state = _CHECKING
            self._splitter = SSEDecoder(
                max_event_size=self._limits[0],
                max_line_length=self._limits[1],
                last_event_id=inner.last_event_id,
            )
        self._strip_lf = False  # the splitter ended on CR: a leading LF is its pair
        # The delivered body, newest bytes last: a list, as it holds a few chunks
        # (the window), and an empty deque is 760 B, a twentieth of an idle stream.
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._tail_id = inner.last_event_id  # the last event id before the tail
        self._trimmed = False  # the tail lost its beginning: its first block is a fragment
        self.skipped = 0

    # -- FrameDecoder -----------------------------------------------------------------

    @property
    def last_event_id(self) -> str:
        return self._inner.last_event_id

    @last_event_id.setter
    def last_event_id(self, value: str) -> None:
        self._inner.last_event_id = value

    @property
    def retry(self) -> int | None:
        # Until the handover the splitter sees every byte first: a retry: inside a
        # skipped (replayed) event is the server's latest word too.
        splitter = self._splitter
        if splitter is not None and splitter.retry is not None:
            return splitter.retry
        return self._inner.retry

    @retry.setter
    def retry(self, value: int | None) -> None:
        self._inner.retry = value

    @property
    def finished(self) -> bool:
        return self._inner.finished

    @property
    def has_backlog(self) -> bool:
        return self._inner.has_backlog

    @property
    def pending_bytes(self) -> int:
        splitter = self._splitter
        inner: int = getattr(self._inner, "pending_bytes", 0)
        return inner + (splitter.pending_bytes if splitter is not None else 0)

    def close(self) -> None:
        splitter = self._splitter
        if splitter is not None:
            splitter.close()  # a complete retry: line of a discarded final event counts
            if splitter.retry is not None:
                self._inner.retry = splitter.retry
        self._inner.close()

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[T]:
        if self._state == _PASSING:
            if self._strip_lf and chunk:
                self._strip_lf = False
                if chunk[:1] == b"\n":
                    chunk = chunk[1:]
            if chunk:
                self._keep(chunk)
            return self._inner.feed(chunk)
        return self._check(chunk)

    # -- what was delivered -----------------------------------------------------------

    def _keep(self, chunk: bytes | bytearray | memoryview) -> None:
        tail = self._tail
        if not tail:
            self._tail_id = self._inner.last_event_id
        tail.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
        self._tail_size += len(chunk)
        while self._tail_size > self._window and len(tail) > 1:
            self._tail_size -= len(tail.pop(0))
            self._trimmed = True

    def harvest(self) -> list[bytes]:
        """Digests of the complete events this connection delivered (of its last
        ``window`` bytes), oldest first.  Called once, when the connection ends."""
        if not self._tail:
            return []
        splitter = SSEDecoder(max_event_size=2**62, last_event_id=self._tail_id)
        try:
            region = splitter.feed_region(b"".join(self._tail))
        except Exception:  # noqa: BLE001 - a digest we cannot make is a replay we do not skip
            return []
        finally:
            self._tail.clear()
        if region is None:
            return []
        buf, end = region
        blocks = buf[:end].split(b"\n\n")[:-1]
        if self._trimmed and blocks:
            blocks = blocks[1:]  # it may be the end of an event: not a whole one
        digests: list[bytes] = []
        for block in blocks:
            frame = splitter.parse_block(block)
            if frame is not None and splitter.last_event_id:
                digests.append(_digest(splitter.last_event_id, frame))
        return digests

    # -- the replay check -------------------------------------------------------------

    def _check(self, chunk: bytes | bytearray | memoryview) -> list[T]:
        """Skip the events that are provable copies of delivered ones (same id, same
        bytes; an event without id is never skipped); the first that is not one is
        delivered, with everything after it."""
        splitter = self._splitter
        assert splitter is not None
        if not chunk:
            return []
        ends_in_cr = chunk[-1:] == b"\r"
        region = splitter.feed_region(chunk)
        if region is None:
            return []
        buf, end = region
        blocks = buf[:end].split(b"\n\n")[:-1]
        rest = buf[end:]
        delivered = self._delivered
        last = next(reversed(delivered), None) if delivered else None
        for index, block in enumerate(blocks):
            id_before = splitter.last_event_id
            frame = splitter.parse_block(block)
            if frame is None:  # id/retry/comments only: state
                self._deliver(block + b"\n\n")
                continue
            event_id = splitter.last_event_id
            digest = _digest(event_id, frame) if event_id else None
            if digest is None or digest not in delivered:
                self._inner.last_event_id = id_before
                return self._hand_over(blocks[index:], rest, ends_in_cr)
            # A copy: skipped; the resume id stays the newest delivered one.
            self.skipped += 1
            if digest == last:  # the copy of the last event delivered: the replay is over
                self._inner.last_event_id = event_id
                return self._hand_over(blocks[index + 1 :], rest, ends_in_cr)
        return []

    def _deliver(self, data: bytes) -> list[T]:
        self._keep(data)
        return self._inner.feed(data)

    def _hand_over(self, blocks: list[bytes], rest: bytes, ends_in_cr: bool) -> list[T]:
        splitter = self._splitter
        if splitter is not None and splitter.retry is not None:
            self._inner.retry = splitter.retry
        self._state = _PASSING
        self._splitter = None
        self._strip_lf = ends_in_cr
        data = b"\n\n".join(blocks) + b"\n\n" + rest if blocks else rest
        return self._deliver(data) if data else []
