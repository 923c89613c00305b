"""The eventstreams SDK for synchronous code: ``from aiostreams.blocking import SDK``;
and any SSE endpoint: ``aiostreams.blocking.connect(url)`` (see ``_blocking_source``).

Same surface as :class:`aiostreams.SDK`, minus ``await``::

    s = SDK(security=shared.Security(api_key_auth="Token ..."))
    res = s.eventstreams.chat(request={"prompt": "Hi"})
    for event in res:
        print(event)

How: each SDK owns one event loop in a daemon thread (an anyio blocking portal)
where the real, asynchronous SDK runs.  A stream is fetched a chunk's worth of
events at a time (one thread hop per network read, not per event).

Resources: a stream returns its connection when exhausted, when ``close()``d or
its ``with`` block is left, when a ``for`` loop over it is left early, or when it
is garbage collected.  The loop thread and the session stop at ``s.close()``,
when the ``with SDK(...)`` block is left, when the SDK is garbage collected, or at
interpreter exit (``weakref.finalize``), so forgetting ``close()`` leaks nothing.
"""

from __future__ import annotations

import concurrent.futures
import functools
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import aiohttp
import msgspec
from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _stream
from . import sdk as _sdk
from ._blocking_source import EventSource, connect, shutdown_portal
from ._retry import RetryConfig
from .models import shared

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy
    from typing_extensions import Self  # typing.Self needs Python 3.11

    from ._stats import StreamStats
    from .sdk._sdk import SecuritySource

__all__ = [
    "SDK",
    "ChatCall",
    "EventSource",
    "EventStream",
    "Eventstreams",
    "RequestCall",
    "StreamCall",
    "connect",
]

T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")


class SDK:
    """The eventstreams API client for synchronous code.

    Takes the arguments of :class:`aiostreams.SDK` (see there), except that a
    session must be made inside the SDK's own loop: pass ``session_factory``,
    not a ``session``.

    Attributes:
        sdk: the asynchronous SDK doing the work (runs in the portal's thread).
        eventstreams: the seven operations, returning :class:`EventStream`.
    """

    def __init__(
        self,
        *,
        security: SecuritySource | None = None,
        global_header_param: bool | None = None,
        global_hidden_query_param: str | None = None,
        global_path_param: int | None = None,
        global_query_param: str | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self.sdk = _sdk.SDK(
            security=security,
            global_header_param=global_header_param,
            global_hidden_query_param=global_hidden_query_param,
            global_path_param=global_path_param,
            global_query_param=global_query_param,
            server_url=server_url,
            retry_config=retry_config,
            timeout_ms=timeout_ms,
            session_factory=session_factory,
        )
        portal_cm = start_blocking_portal("asyncio")
        portal = portal_cm.__enter__()
        # The finalizer must not reference self, or self would never be collected.
        self._closer = weakref.finalize(self, shutdown_portal, portal_cm, portal, self.sdk.aclose)
        self._portal = portal

    @property
    def eventstreams(self) -> Eventstreams:
        """The seven operations.  Each holds this SDK, and so does each stream they
        return: ``for e in SDK(...).eventstreams.json()`` keeps the SDK (its loop
        thread and session) alive until the stream is done with."""
        return Eventstreams(self, self._portal, self.sdk.eventstreams)

    def close(self) -> None:
        """Close the session and stop the loop thread (idempotent).  Open streams end."""
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        shown = self.sdk._shown_url  # no credentials, no query string
        return f"<aiostreams.blocking.SDK {shown}{' closed' if self.closed else ''}>"


def _run(portal: BlockingPortal, func: Callable[[], Awaitable[R]]) -> R:
    """``portal.call`` with a clear error once the SDK is closed, and which cancels
    the call in the loop when this thread is interrupted (Ctrl-C): a request still
    opening must not hold its connection until its timeout."""
    try:
        future = portal.start_task_soon(func)
    except RuntimeError as exc:
        if "portal is not running" in str(exc):
            raise RuntimeError(
                "this aiostreams.blocking.SDK is closed; make a new SDK to send requests"
            ) from None
        raise
    try:
        return future.result()
    except (KeyboardInterrupt, SystemExit):
        # cancel() cancels the task in the loop (anyio); False: it finished just now
        if not future.cancel() and future.done() and future.exception() is None:
            _release_soon(portal, future.result())  # release what it opened
        raise
    except concurrent.futures.CancelledError:
        raise RuntimeError(
            "this aiostreams.blocking.SDK was closed while the call was running"
        ) from None


def _release_soon(portal: BlockingPortal, result: object) -> None:
    if isinstance(result, _stream.EventStream):
        try:
            portal.start_task_soon(result.aclose)
        except RuntimeError:
            pass  # the portal is stopped: its session and connections are closed


class EventStream(Generic[T]):
    """A synchronous view of an :class:`aiostreams.EventStream`: iterate it with
    ``for``, use it in ``with`` (closing it on exit), or ``close()`` it.

    ``next(stream)`` takes one event and keeps the stream open; a ``for`` loop
    left early (its iterator dropped) closes the stream, as does ``next(iter(stream))``.
    """

    __slots__ = ("_batch", "_index", "_owner", "_portal", "stream")

    def __init__(
        self, portal: BlockingPortal, stream: _stream.EventStream[T], owner: SDK | None = None
    ) -> None:
        self._owner = owner  # keeps the SDK (loop thread, session) alive while in use
        self._portal = portal
        self.stream = stream  # the asynchronous stream, owned by the portal's loop
        self._batch: list[T] = []
        self._index = 0

    @property
    def status(self) -> int:
        return self.stream.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.stream.headers

    @property
    def response(self) -> aiohttp.ClientResponse:
        return self.stream.response

    @property
    def request_id(self) -> str | None:
        return self.stream.request_id

    @property
    def last_event_id(self) -> str:
        return self.stream.last_event_id

    @property
    def stats(self) -> StreamStats:
        """The stream's :class:`~aiostreams.StreamStats` (counts are per read: they
        may be ahead of the events this view has handed out so far)."""
        return self.stream.stats

    @property
    def closed(self) -> bool:
        return self.stream.closed and self._index >= len(self._batch)

    def __iter__(self) -> _Iterator[T]:
        return _Iterator(self)

    def __next__(self) -> T:
        index = self._index
        batch = self._batch
        if index < len(batch):
            self._index = index + 1
            return batch[index]
        try:
            fresh = _run(self._portal, self.stream.next_batch)
        except (KeyboardInterrupt, SystemExit):
            self._close_soon()  # the read goes on in the loop thread: stop it there
            raise
        if fresh is None:
            self._batch = []
            self._index = 0
            raise StopIteration
        self._batch = fresh
        self._index = 1
        return fresh[0]

    def close(self) -> None:
        """Release the connection (idempotent)."""
        self._batch = []
        self._index = 0
        if self.stream._state == _stream._OPEN:
            _run(self._portal, self.stream.aclose)

    def _close_soon(self) -> None:
        self._batch = []  # closed: the rest of the current read is not handed out either
        self._index = 0
        # Never touch the connection from this thread: hand the close to the loop.
        if self.stream._state == _stream._OPEN:
            try:
                self._portal.start_task_soon(self.stream.aclose)
            except RuntimeError:
                pass  # the portal is stopped: the session and its connections are closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "stream"):
            self._close_soon()

    def __repr__(self) -> str:
        return f"<aiostreams.blocking.EventStream of {self.stream!r}>"


class _Iterator(Generic[T]):
    """What ``for`` iterates; closes the stream when the loop is left early."""

    __slots__ = ("_stream",)

    def __init__(self, stream: EventStream[T]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return self._stream.__next__()

    def __del__(self) -> None:
        self._stream._close_soon()


def _wrap(portal: BlockingPortal, result: Any, owner: SDK) -> Any:
    if isinstance(result, _stream.EventStream):
        return EventStream(portal, result, owner)
    return result


class StreamCall(Generic[T, J]):
    """A blocking operation without a request body."""

    __slots__ = ("_call", "_owner", "_portal")

    def __init__(self, owner: SDK, portal: BlockingPortal, call: _sdk.StreamCall[T, J]) -> None:
        self._owner = owner
        self._portal = portal
        self._call = call

    def __call__(
        self,
        *,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[T] | J:
        """Open the stream; the options are those of :class:`aiostreams.SDK` calls."""
        return self._open(
            retries=retries, server_url=server_url, timeout_ms=timeout_ms, http_headers=http_headers
        )

    def _open(self, **arguments: Any) -> EventStream[T] | J:
        """Run the async call in the portal's loop; wrap a stream for sync iteration."""
        call = functools.partial(self._call, **arguments)
        result: EventStream[T] | J = _wrap(self._portal, _run(self._portal, call), self._owner)
        return result


class RequestCall(StreamCall[T, J]):
    """A blocking operation with a JSON request body."""

    __slots__ = ()

    def __call__(  # type: ignore[override]  # adds the required request=
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[T] | J:
        """Send ``request`` and open the stream (``chat`` with ``stream: False``: the list)."""
        return self._open(
            request=request,
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            http_headers=http_headers,
        )


class ChatCall(RequestCall[_sdk.ChatEvent, list[shared.ChatCompletionEvent]]):
    """Blocking ``chat``, typed by its request as :class:`aiostreams.sdk.ChatCall`."""

    __slots__ = ()

    @overload  # type: ignore[override]  # as RequestCall: adds the required request=
    def __call__(
        self,
        *,
        request: shared.ChatStreamRequest,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[_sdk.ChatEvent]: ...

    @overload
    def __call__(
        self,
        *,
        request: shared.ChatListRequest,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> list[shared.ChatCompletionEvent]: ...

    @overload
    def __call__(
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[_sdk.ChatEvent] | list[shared.ChatCompletionEvent]: ...

    def __call__(
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[_sdk.ChatEvent] | list[shared.ChatCompletionEvent]:
        return super().__call__(
            request=request,
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            http_headers=http_headers,
        )


class Eventstreams:
    """``s.eventstreams`` of the blocking SDK: the seven operations."""

    def __init__(self, owner: SDK, portal: BlockingPortal, ops: _sdk.Eventstreams) -> None:
        self.chat = ChatCall(owner, portal, ops.chat)
        self.chat_skip_sentinel = RequestCall(owner, portal, ops.chat_skip_sentinel)
        self.different_data_schemas = StreamCall(owner, portal, ops.different_data_schemas)
        self.json = StreamCall(owner, portal, ops.json)
        self.multiline = StreamCall(owner, portal, ops.multiline)
        self.rich = StreamCall(owner, portal, ops.rich)
        self.text = StreamCall(owner, portal, ops.text)
