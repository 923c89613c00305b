"""Sending one request: retries, timeouts, and turning failures into aiostreams errors.

Model-agnostic like ``_stream``: a request is a method, URL, headers, query and
body bytes; a streaming response is handed to ``EventStream`` with whatever
``FrameDecoder`` the caller brings.  No aiohttp exception escapes: unreachable
servers become :class:`ConnectError` (naming the URL), silence becomes
:class:`StreamTimeout`, 4xx/5xx become :class:`SDKError` with the body read.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import aiohttp
import msgspec
import yarl
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict

from ._log import redact_text, redact_url, request_log  # redact_url: the one redactor, re-exported
from ._protocol import FrameDecoder
from ._retry import NO_RETRIES, RETRYABLE_STATUSES, RetryConfig, RetrySchedule, parse_retry_after
from ._stats import new_stats
from ._stream import EventStream
from .errors import (
    ConnectError,
    HTTPStatusError,
    InvalidURL,
    SDKError,
    StreamInterrupted,
    StreamTimeout,
    UnexpectedContentType,
)

__all__ = [
    "DEFAULT_SENSITIVE_HEADERS",
    "MAX_ERROR_BODY",
    "HTTPRequest",
    "is_event_stream",
    "open_stream",
    "read_json",
    "redact_url",
    "send",
    "split_url",
]

T = TypeVar("T")

#: Bytes of an error body kept for ``SDKError.body``.  Error bodies are short
#: JSON or HTML pages; a server streaming megabytes of error must not be read whole.
MAX_ERROR_BODY: Final = 64 * 1024

_NO_BODY_SKIP: Final = frozenset({"Content-Type"})


def split_url(url: str, parameter: str) -> tuple[str, MultiDict[str], str | None]:
    """Check ``url`` can ever work, and split off what must never be shown.

    Returns:
        ``(url without query nor user:password@, the query, a Basic auth header
        value made of the user:password, or None)``.

    Raises:
        InvalidURL: no ``http``/``https`` scheme, no host, a bad port: a one-line
            message naming ``parameter`` (and the URL without query or credentials).
    """
    try:
        parts = urlsplit(url)
        port_error = ""
        try:
            _ = parts.port
        except ValueError as exc:
            port_error = str(exc)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise InvalidURL(parameter, redact_url(url), str(exc)) from None
    userinfo, at, host = parts.netloc.rpartition("@")
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.scheme.lower() not in ("http", "https"):
        problem = (
            f"the scheme {parts.scheme!r} is not supported"
            if parts.scheme and parts.netloc
            else "it has no http:// or https:// scheme"
        )
        raise InvalidURL(
            parameter,
            shown if parts.netloc else redact_url(url),
            problem + ("; use http://host:port/path or https://..."),
        )
    if not parts.hostname:
        raise InvalidURL(parameter, shown, "it has no host")
    if port_error:
        raise InvalidURL(parameter, shown, f"bad port ({port_error})")
    auth = None
    if at:
        login, _, password = userinfo.partition(":")
        auth = (
            "Basic " + base64.b64encode(f"{unquote(login)}:{unquote(password)}".encode()).decode()
        )
    query = MultiDict(parse_qsl(parts.query, keep_blank_values=True))  # ?a=1&a=2 keeps both
    return shown, query, auth


#: Headers that carry credentials: dropped when a redirect leaves the request's
#: origin (scheme, host, port), as aiohttp drops ``Authorization``.  Compared
#: case-insensitively; ``connect(sensitive_headers=...)`` replaces the set.
DEFAULT_SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
        "private-token",
    }
)
#: Redirects followed before giving up (aiohttp's default too).
MAX_REDIRECTS: Final = 10
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class HTTPRequest:
    """Everything needed to send one request (no credentials in ``repr``)."""

    method: str
    url: str  # without the query string: it is what messages name
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = field(default=None, repr=False)
    sensitive_headers: frozenset[str] = field(default=DEFAULT_SENSITIVE_HEADERS, repr=False)

    @property
    def target(self) -> str:
        return f"{self.method} {self.url}"


async def send(
    session: aiohttp.ClientSession,
    request: HTTPRequest,
    *,
    retries: RetryConfig = NO_RETRIES,
    timeout: float | None = None,
    status_error: type[HTTPStatusError] = SDKError,
) -> aiohttp.ClientResponse:
    """Send ``request``, retrying per ``retries``; return the first usable response.

    Args:
        timeout: seconds allowed to connect, then for every wait for bytes (the
            status line and headers, and each gap in the body); ``None`` keeps
            the session's own timeouts.  Never bounds a stream's total duration.

    Returns:
        A response with status < 400 whose body has not been read.

    Raises:
        SDKError: a 4xx/5xx status (after any retries), body read and released
            (``status_error``: the class to raise; ``connect()`` passes
            :class:`HTTPStatusError`, not the SDK's name).
        ConnectError: the server could not be reached (after any retries).
        StreamTimeout: the server accepted the connection but sent nothing in time.
    """
    schedule = RetrySchedule(retries) if retries.enabled else None
    while True:
        if request_log.isEnabledFor(logging.DEBUG):
            resume = request.headers.get("Last-Event-ID")
            request_log.debug(
                "%s %s: connecting%s",
                request.method,
                redact_url(request.url),
                f" (Last-Event-ID {resume!r})" if resume else "",
            )
        try:
            response = await _send_once(session, request, timeout)
        except (ConnectError, StreamTimeout) as exc:
            if schedule is None or not retries.retry_connection_errors:
                raise
            delay = schedule.next_delay()
            if delay is None:
                raise
            _log_retry(request, delay, schedule.attempts, exc.__class__.__name__)
            await asyncio.sleep(delay)
            continue
        if response.status < 400:
            return response
        if schedule is not None and response.status in RETRYABLE_STATUSES:
            delay = schedule.next_delay(parse_retry_after(response.headers.get("Retry-After")))
            if delay is not None:
                _log_retry(request, delay, schedule.attempts, f"HTTP {response.status}")
                await _discard(response)
                await asyncio.sleep(delay)
                continue
        retried = schedule.attempts if schedule is not None else 0
        raise await error_from_response(response, request, retried=retried, error=status_error)


async def open_stream(
    session: aiohttp.ClientSession,
    request: HTTPRequest,
    decoder: FrameDecoder[T],
    *,
    retries: RetryConfig = NO_RETRIES,
    timeout: float | None = None,
) -> EventStream[T]:
    """:func:`send`, then check the response is an event stream and wrap it.

    Raises:
        UnexpectedContentType: a 2xx response that is not ``text/event-stream``.
        and everything :func:`send` raises.
    """
    stats = new_stats(request.method, request.url)  # its clock starts with the request
    try:
        response = await send(session, request, retries=retries, timeout=timeout)
        if not is_event_stream(response):
            raise await unexpected_content_type(response, request, "text/event-stream")
    except BaseException as exc:
        stats._end(exc)
        raise
    idle = timeout if timeout is not None else session.timeout.sock_read
    return EventStream(response, decoder, url=request.url, idle_timeout=idle, stats=stats)


def is_event_stream(response: aiohttp.ClientResponse) -> bool:
    """``Content-Type`` is ``text/event-stream``, any parameters, any case."""
    return _media_type(response) == "text/event-stream"


def is_json(response: aiohttp.ClientResponse) -> bool:
    media = _media_type(response)
    return media == "application/json" or media.endswith("+json")


async def read_json(response: aiohttp.ClientResponse, request: HTTPRequest, type_: Any) -> Any:
    """Read the whole body and decode it as ``type_`` (msgspec); release the connection.

    Raises:
        SDKError: the body is not JSON of that type (message names the mismatch).
    """
    lost: StreamInterrupted | None = None
    try:
        body = await response.read()
    except (aiohttp.ClientError, HttpProcessingError, OSError) as exc:
        response.close()
        lost = StreamInterrupted(request.url, f"reading the JSON body: {_scrub(exc)}")
    finally:
        response.release()
    if lost is not None:
        raise lost  # outside the handler: aiohttp's exception (full URL) is not chained
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise SDKError(
            f"{request.target}: the JSON response does not match the declared type: {exc}",
            response.status,
            _text(body),
            response,
            request.url,
        ) from exc


async def error_from_response(
    response: aiohttp.ClientResponse,
    request: HTTPRequest,
    *,
    retried: int = 0,
    error: type[HTTPStatusError] = SDKError,
) -> HTTPStatusError:
    """An ``error`` (:class:`SDKError` by default) for a 4xx/5xx response, its body
    read (bounded) and released."""
    body = await _read_bounded(response)
    detail = _json_message(body) if is_json(response) else None
    message = f"{request.target} failed with HTTP {response.status}"
    if response.reason:
        message += f" {response.reason}"
    if detail:
        message += f": {detail}"
    elif body.strip():
        message += f": {_excerpt(body)}"
    if retried:
        message += f" (after {retried} {'retry' if retried == 1 else 'retries'})"
    return error(message, response.status, body, response, request.url)


async def unexpected_content_type(
    response: aiohttp.ClientResponse, request: HTTPRequest, expected: str
) -> UnexpectedContentType:
    body = await _read_bounded(response)
    got = response.headers.get("Content-Type")
    message = (
        f"{request.target} answered {got!r} where {expected!r} was expected"
        if got
        else f"{request.target} answered without a Content-Type where {expected!r} was expected"
    )
    if body.strip():
        message += f"; the body begins: {_excerpt(body)}"
    return UnexpectedContentType(message, response.status, body, response, request.url)


# -- helpers ----------------------------------------------------------------------------


def _log_retry(request: HTTPRequest, delay: float, attempt: int, why: str) -> None:
    if request_log.isEnabledFor(logging.INFO):
        request_log.info(
            "%s %s: %s, retry %d in %.3g s", request.method, redact_url(request.url), why, attempt,
            delay,
        )  # fmt: skip


async def _send_once(
    session: aiohttp.ClientSession, request: HTTPRequest, timeout: float | None
) -> aiohttp.ClientResponse:
    client_timeout = (
        aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        if timeout is not None
        else session.timeout
    )
    error: BaseException
    cause: BaseException | None = None
    try:
        return await _follow_redirects(session, request, client_timeout)
    except aiohttp.ConnectionTimeoutError:
        # ``connect`` (which includes waiting for a free pooled connection) or
        # ``sock_connect`` fired; a caller's session may set only one of them.
        limits = [t for t in (client_timeout.connect, client_timeout.sock_connect) if t]
        error = ConnectError(
            request.url,
            f"timed out after {min(limits):g} s while connecting"
            if limits
            else "timed out while connecting",
        )
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):
        error = StreamTimeout("idle", client_timeout.sock_read or 0.0, "", request.url)
    except aiohttp.InvalidURL as exc:
        error = ConnectError(request.url, f"invalid URL ({_scrub(exc)})")
    except aiohttp.ClientConnectorError as exc:
        error = ConnectError(
            request.url, f"{exc.os_error.strerror or exc.os_error}; is the server running there?"
        )
        cause = exc.os_error  # for debugging; an OSError names no URL
    except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:
        # The server answered, with bytes the HTTP parser rejects (e.g. a chunk-size
        # line "zz" in the first packet): not "could not connect".
        error = StreamInterrupted(request.url, f"its response was malformed ({_scrub(exc)})")
    except (aiohttp.ClientError, OSError) as exc:
        # e.g. TooManyRedirects names the URL it gave up at, query string included
        error = ConnectError(request.url, _scrub(exc))
    # Raised here, outside the handlers, with no aiohttp cause: its exceptions carry the
    # full URL (query string, user:password@), and a chained one shows in tracebacks.
    raise error from cause


async def _follow_redirects(
    session: aiohttp.ClientSession, request: HTTPRequest, timeout: aiohttp.ClientTimeout
) -> aiohttp.ClientResponse:
    """Send ``request``, following redirects ourselves: aiohttp drops only
    ``Authorization`` when one leaves the origin, and every header of
    ``request.sensitive_headers`` must go too (an ``X-API-Key`` for a CDN...)."""
    method, body = request.method, request.body
    headers = dict(request.headers)
    url: str | yarl.URL = request.url
    params: Mapping[str, str] | None = request.params
    for _ in range(MAX_REDIRECTS + 1):
        response = await session.request(
            method,
            url,
            headers=headers,
            params=params,
            data=body,
            timeout=timeout,
            allow_redirects=False,
            # aiohttp labels an empty POST "application/octet-stream"; say nothing instead
            skip_auto_headers=_NO_BODY_SKIP if body is None else None,
        )
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or location is None:
            return response
        current = response.url
        await _discard(response)
        try:
            target = current.join(yarl.URL(location))
        except ValueError:
            raise aiohttp.ClientError("a redirect gave an invalid Location") from None
        # A redirect that can never be followed safely is final (InvalidURL), never
        # retried: no reconnect can change where the server sends us.
        if target.scheme not in ("http", "https") or not target.host:
            raise InvalidURL(
                "a redirect's Location",
                redact_url(str(target)),
                "aiostreams follows redirects to http:// and https:// URLs only",
            )
        if target.origin() != current.origin():
            sensitive = request.sensitive_headers
            headers = {k: v for k, v in headers.items() if k.lower() not in sensitive}
            # aiohttp adds a session's default headers to every request and offers no
            # way to leave one out: refuse rather than send a credential to another origin.
            carried = sorted(k for k in session.headers if k.lower() in sensitive)
            if carried:
                raise InvalidURL(
                    "a redirect's Location",
                    redact_url(str(target)),
                    f"it leaves the origin, and the session sends {', '.join(carried)} on "
                    "every request (credential headers must not follow a cross-origin "
                    "redirect); pass them per request (headers=) instead of on the session",
                )
        if (
            response.status == 303
            and method != "HEAD"
            or (response.status in (301, 302) and method == "POST")
        ):
            method, body = "GET", None  # what browsers and aiohttp do
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        url, params = target, None
    raise aiohttp.ClientError(f"TooManyRedirects: more than {MAX_REDIRECTS} redirects")


def _scrub(exc: BaseException) -> str:
    """An aiohttp/OS error in one line, without the query string or credentials of
    any URL it quotes."""
    return redact_text(f"{exc.__class__.__name__}: {exc}")


def _media_type(response: aiohttp.ClientResponse) -> str:
    value = response.headers.get("Content-Type", "")
    return value.partition(";")[0].strip().lower()


async def _read_bounded(response: aiohttp.ClientResponse) -> str:
    """Up to ``MAX_ERROR_BODY`` bytes of the body as text; then release the connection
    (or close it, if more was coming)."""
    chunks: list[bytes] = []
    size = 0
    content = response.content
    try:
        while size < MAX_ERROR_BODY:
            chunk = await content.read(MAX_ERROR_BODY - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        pass  # keep what arrived: a partial body still explains the error
    finally:
        if content.at_eof():
            response.release()
        else:
            response.close()
    text = _text(b"".join(chunks))
    return text + "...[truncated]" if size >= MAX_ERROR_BODY and not content.at_eof() else text


async def _discard(response: aiohttp.ClientResponse) -> None:
    await _read_bounded(response)


def _excerpt(body: str, limit: int = 200) -> str:
    body = " ".join(body.split())  # one line, whatever the page looked like
    return body if len(body) <= limit else body[:limit] + "…"


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def _json_message(body: str) -> str | None:
    """The ``message`` (or ``error``/``detail``) of a JSON error body, if it has one."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return None
