"""Every exception aiostreams raises on purpose.

    AiostreamsError
    ├── EventTooLarge              the framer's buffer limit was hit (sans-IO)
    │   └── LineTooLong            one unfinished line passed max_line_length
    ├── ResponseValidationError    an event's data does not fit its declared type
    ├── StreamError                the server reported an error inside the stream
    ├── HTTPStatusError            an HTTP response was not a usable stream (4xx/5xx);
    │   │                          what connect() raises, for any URL
    │   └── SDKError               the same, raised by the SDK (``except SDKError`` keeps working)
    │       └── UnexpectedContentType  2xx, but not text/event-stream
    ├── ConnectError               the server could not be reached (names the URL)
    │   └── StreamInterrupted      the connection broke mid-body (reset, truncated, bad framing)
    ├── StreamTimeout              no bytes / no event / no first event in time
    └── InvalidURL (ValueError)    a URL that can never work (no scheme, ftp://, bad port)

Anything else escaping the library is a bug.  Messages say what was wrong and,
where it helps, how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._events import ServerSentEvent

__all__ = [
    "AiostreamsError",
    "ConnectError",
    "EventTooLarge",
    "HTTPStatusError",
    "InvalidURL",
    "LineTooLong",
    "ResponseValidationError",
    "SDKError",
    "StreamError",
    "StreamInterrupted",
    "StreamTimeout",
    "UnexpectedContentType",
]


class AiostreamsError(Exception):
    """Base class of every error aiostreams raises on purpose."""


class EventTooLarge(AiostreamsError):
    """An event (or a single line) grew past the framer's ``max_event_size``.

    The stream cannot continue: the bytes that were dropped cannot be recovered.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"SSE event exceeds max_event_size: {size} bytes buffered, limit is {limit} bytes; "
            "pass a larger max_event_size (e.g. SSEDecoder(max_event_size=...)) if the server "
            "legitimately sends events this large"
        )


class LineTooLong(EventTooLarge):
    """One unfinished line grew past the framer's ``max_line_length``.

    A subclass of :class:`EventTooLarge`: whoever handles the
    buffer limit handles this one too.  Like it, the stream cannot continue.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        Exception.__init__(
            self,
            f"SSE line exceeds max_line_length: {size} bytes without a line break, limit is "
            f"{limit} bytes; pass a larger max_line_length (e.g. SSEDecoder(max_line_length=...) "
            "or aiostreams.connect(..., max_line_length=...)) if the server legitimately "
            "sends lines this long",
        )


class ResponseValidationError(AiostreamsError):
    """An event's ``data`` does not match the type declared for its event name.

    Attributes:
        event: the raw :class:`~aiostreams.ServerSentEvent` as received.
        expected: a readable name of the type that was expected.
        cause_message: msgspec's own message (or why no type was found).
    """

    def __init__(self, event: ServerSentEvent, expected: str, cause_message: str) -> None:
        self.event = event
        self.expected = expected
        self.cause_message = cause_message
        data = event.data if len(event.data) <= 200 else event.data[:200] + "..."
        super().__init__(
            f"event {event.event!r} (id {event.id!r}) does not match {expected}: "
            f"{cause_message}; data was {data!r}"
        )


class StreamError(AiostreamsError):
    """The server reported an error inside an otherwise healthy stream.

    Attributes:
        payload: the decoded error payload (a Struct, or the raw data string).
        event: the raw event that carried it; ``event.id`` is its event id.
    """

    def __init__(self, payload: Any, event: ServerSentEvent) -> None:
        self.payload = payload
        self.event = event
        self.event_id = event.id
        super().__init__(
            f"server sent an error event {event.event!r} (id {event.id!r}): {payload!r}"
        )


class HTTPStatusError(AiostreamsError):
    """An HTTP response that cannot be used: a 4xx/5xx status, or not a stream.

    Attributes:
        message: what went wrong.
        status_code: the HTTP status (also ``status``).
        body: the response body, read in full (truncated to a bounded size).
        url: the request's URL, without its query string or credentials.
        raw_response: the ``aiohttp.ClientResponse`` (already released).
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        body: str = "",
        raw_response: Any = None,
        url: str = "",
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.body = body
        self.raw_response = raw_response
        self.url = url
        super().__init__(message)

    @property
    def status(self) -> int:
        return self.status_code

    def __str__(self) -> str:
        # The message already says what matters of the body (the JSON "message", or
        # an excerpt); the body itself stays available as ``.body``.
        if str(self.status_code) in self.message:
            return self.message
        return f"{self.message} (status {self.status_code})"

    @property
    def headers(self) -> Any:
        return None if self.raw_response is None else self.raw_response.headers


class SDKError(HTTPStatusError):
    """An :class:`HTTPStatusError` raised by the SDK (and a non-stream 2xx, below)."""


class UnexpectedContentType(SDKError):
    """A 2xx response whose content type is not ``text/event-stream``."""


class ConnectError(AiostreamsError):
    """The server could not be reached (DNS, refused, reset before any response)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"could not connect to {url}: {reason}")


class StreamInterrupted(ConnectError):
    """The connection broke in the middle of a response body: a reset, a body cut
    short inside an event, or transport framing the HTTP parser rejected.

    A subclass of :class:`ConnectError` (both mean "reconnect to go on"), but the
    message says what happened: the server *was* reached.

    Attributes:
        last_event_id: the last event id seen, for resuming.
    """

    def __init__(self, url: str, reason: str, last_event_id: str = "") -> None:
        self.url = url
        self.reason = reason
        self.last_event_id = last_event_id
        AiostreamsError.__init__(
            self,
            f"the connection to {url} was lost mid-stream (last event id "
            f"{last_event_id!r}): {reason}",
        )


class InvalidURL(AiostreamsError, ValueError):
    """A URL that no retry can make work: no ``http://``/``https://`` scheme, no
    host, a port out of range.  Raised at once, never retried.

    Attributes:
        parameter: the argument that held it (``"url"``, ``"server_url"``).
    """

    def __init__(self, parameter: str, url: str, problem: str) -> None:
        self.parameter = parameter
        self.url = url
        super().__init__(f"{parameter}={url!r} cannot be used: {problem}")


class StreamTimeout(AiostreamsError):
    """A stream went quiet for longer than allowed.

    Attributes:
        kind: ``"idle"`` (no bytes), ``"event"`` (no event) or ``"first_event"``.
        seconds: the bound that was exceeded.
        last_event_id: the last event id seen, for resuming.
    """

    def __init__(self, kind: str, seconds: float, last_event_id: str, url: str = "") -> None:
        self.kind = kind
        self.seconds = seconds
        self.last_event_id = last_event_id
        self.url = url
        what = {
            "idle": "no bytes arrived",
            "event": "no event arrived",
            "first_event": "the first event did not arrive",
        }.get(kind, kind)
        where = f" from {url}" if url else ""
        super().__init__(
            f"{what}{where} within {seconds:g} s (last event id {last_event_id!r}); "
            "raise the timeout if the server is legitimately this slow"
        )
