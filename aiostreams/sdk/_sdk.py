"""``SDK``: configuration, one aiohttp session, and the one call path of every operation."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

import aiohttp
import msgspec

from .._connect import EventSource, connect
from .._request import (
    HTTPRequest,
    is_event_stream,
    is_json,
    read_json,
    send,
    split_url,
    unexpected_content_type,
)
from .._retry import NO_RETRIES, RetryConfig
from .._session import create_session
from .._stats import new_stats
from .._stream import EventStream
from .._validate import check_timeout_ms
from ..errors import SDKError
from ..models import shared
from ._operations import (
    CHAT,
    CHAT_SKIP_SENTINEL,
    DIFFERENT_DATA_SCHEMAS,
    JSON,
    MULTILINE,
    RICH,
    TEXT,
    Operation,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

__all__ = [
    "DEFAULT_SERVER_URL",
    "SDK",
    "ChatCall",
    "ChatEvent",
    "Eventstreams",
    "RequestCall",
    "StreamCall",
]

T = TypeVar("T")
J = TypeVar("J")

#: The eventstreams API's default server (the embedded server's default port).
DEFAULT_SERVER_URL: Final = "http://localhost:35456"

SecuritySource = shared.Security | Mapping[str, Any] | Callable[[], shared.Security]


class SDK:
    """The eventstreams API client (design.md §4).

    ::

        async with SDK(security=shared.Security(api_key_auth="Token ...")) as s:
            res = await s.eventstreams.chat(request={"prompt": "Hi"})
            async with res:
                async for event in res:
                    print(event)

    Args:
        security: credentials (or a callable returning them, called per request);
            ``api_key_auth`` is sent verbatim as ``Authorization``.
        global_header_param: sent as the ``globalHeaderParam`` header
            (``true``/``false``) on every request.
        global_hidden_query_param: sent as the ``globalHiddenQueryParam`` query
            parameter on every request.
        global_path_param: accepted and kept (``self.global_path_param``) for
            compatibility with the generated SDK; no operation of this API has a
            path placeholder, so it is never sent.
        global_query_param: sent as the ``globalQueryParam`` query parameter.
        server_url: base URL of the API (default ``http://localhost:35456``).
        retry_config: how opening a stream is retried (default: no retries);
            each call can override it with ``retries=``.
        timeout_ms: default for each call's ``timeout_ms`` (see below); ``None``
            keeps the session's timeouts (:func:`~aiostreams.create_session`:
            30 s to connect, 300 s without bytes, no total limit).
        session: an ``aiohttp.ClientSession`` to use; the caller keeps owning it
            (it is not closed by :meth:`aclose`).
        session_factory: called once, inside the event loop, to make the session
            the SDK owns (default :func:`~aiostreams.create_session`).

    ``timeout_ms`` (on the SDK or a call) bounds, in milliseconds, connecting,
    the wait for the response headers and then *every gap between two reads* of
    the stream (an idle timeout); never a stream's total duration, so a
    long stream with a steady flow of events is never cut off.  It applies to
    each retry attempt separately.

    Use ``async with SDK(...)`` or call :meth:`aclose`: the session is made on
    first use and closed there.
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
        session: aiohttp.ClientSession | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        if session is not None and session_factory is not None:
            raise TypeError("pass either session= or session_factory=, not both")
        check_timeout_ms("timeout_ms", timeout_ms)
        _check_retries("retry_config", retry_config)
        _check_security(security)
        self.security = security
        self.global_header_param = global_header_param
        self.global_hidden_query_param = global_hidden_query_param
        self.global_path_param = global_path_param
        self.global_query_param = global_query_param
        self.server_url = server_url or DEFAULT_SERVER_URL
        # Checked now (a one-line error naming server_url); shown without credentials.
        self._shown_url = split_url(self.server_url, "server_url")[0]
        self.retry_config = retry_config
        self.timeout_ms = timeout_ms
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._session_factory = session_factory or create_session
        # Streams still open at aclose() are closed first: closing only the session
        # would leave their aiohttp Connection objects to warn "Unclosed connection".
        self._streams: weakref.WeakSet[EventStream[Any]] = weakref.WeakSet()
        self.eventstreams = Eventstreams(self)
        from .. import __version__  # here: the package is fully imported by now

        self._user_agent = f"aiostreams/{__version__}"

    def __repr__(self) -> str:  # no credentials, no query string
        return f"<aiostreams.SDK {self._shown_url}>"

    # -- lifecycle --------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (made on first use).

        Raises:
            RuntimeError: the SDK is closed (a closed SDK never makes a new session).
        """
        if self._closed:
            raise RuntimeError("SDK is closed: make a new SDK (or use it inside `async with`)")
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    @property
    def closed(self) -> bool:
        """:meth:`aclose` was called (or the ``async with`` block was left)."""
        return self._closed

    async def aclose(self) -> None:
        """Close the streams still open, then the session if the SDK made it (idempotent).

        The SDK cannot be used afterwards: every call raises ``RuntimeError("SDK is closed")``.
        """
        self._closed = True
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> Self:
        _ = self.session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the one call path ------------------------------------------------------------

    async def invoke(
        self,
        operation: Operation[T, J],
        request: msgspec.Struct | Mapping[str, Any] | None = None,
        *,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[T] | J:
        """Send ``operation`` and return its stream (or its JSON answer, if it has one).

        Raises:
            SDKError: 4xx/5xx (after retries); UnexpectedContentType: a 2xx of a
                content type the operation does not declare.
            ConnectError, StreamTimeout: see :func:`aiostreams._request.send`.
            ValueError: ``request`` does not fit the operation's request type.
        """
        _check_retries("retries", retries)
        check_timeout_ms("timeout_ms", timeout_ms)
        http_request = self.build_request(
            operation, request, server_url=server_url, http_headers=http_headers
        )
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        timeout = None if timeout_ms is None else timeout_ms / 1000
        session = self.session
        stats = new_stats(http_request.method, http_request.url)  # the clock starts here
        try:
            response = await send(
                session,
                http_request,
                retries=retries or self.retry_config or NO_RETRIES,
                timeout=timeout,
            )
            if is_event_stream(response):
                idle = timeout if timeout is not None else session.timeout.sock_read
                stream = EventStream(
                    response,
                    operation.schema.decoder(),
                    url=http_request.url,
                    idle_timeout=idle,
                    stats=stats,
                )
                self._streams.add(stream)
                return stream
            if operation.json_type is not None and is_json(response):
                result: J = await read_json(response, http_request, operation.json_type)
                stats._end(None, "json")
                return result
            expected = "text/event-stream" + (" or application/json" if operation.json_type else "")
            raise await unexpected_content_type(response, http_request, expected)
        except BaseException as exc:
            stats._end(exc)
            raise

    def build_request(
        self,
        operation: Operation[Any, Any],
        request: msgspec.Struct | Mapping[str, Any] | None = None,
        *,
        server_url: str | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> HTTPRequest:
        """The HTTP request of one call: URL, headers (global, security, per call), query, body."""
        if self._closed:
            raise RuntimeError("SDK is closed: make a new SDK (or use it inside `async with`)")
        accept = "text/event-stream"
        if operation.json_type is not None:
            accept += ", application/json;q=0.9"
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        if self.global_header_param is not None:
            headers["globalHeaderParam"] = _param(self.global_header_param)
        security = self._security()
        if security is not None and security.api_key_auth is not None:
            headers["Authorization"] = security.api_key_auth
        body = None
        if operation.request_type is not None:
            body = _encode_request(operation, request)
            headers["Content-Type"] = "application/json"
        elif request is not None:
            raise TypeError(f"{operation.name}() takes no request body")
        if http_headers:
            headers.update(http_headers)
        base = (server_url or self.server_url).rstrip("/")
        url, params, basic = split_url(base + operation.path, "server_url")
        if basic is not None and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = basic
        if self.global_query_param is not None:
            params["globalQueryParam"] = _param(self.global_query_param)
        if self.global_hidden_query_param is not None:
            params["globalHiddenQueryParam"] = _param(self.global_hidden_query_param)
        return HTTPRequest(operation.method, url, headers, params, body)

    def _security(self) -> shared.Security | None:
        source = self.security
        if source is None or isinstance(source, shared.Security):
            return source
        if isinstance(source, Mapping):
            try:
                return msgspec.convert(source, shared.Security)
            except msgspec.ValidationError as exc:
                raise ValueError(
                    f"security does not fit Security(api_key_auth=...): {exc}"
                ) from None
        return source()


class StreamCall(Generic[T, J]):
    """An operation without a request body, bound to an SDK: ``await call(...)``."""

    __slots__ = ("_sdk", "operation")

    def __init__(self, sdk: SDK, operation: Operation[T, J]) -> None:
        self._sdk = sdk
        self.operation = operation

    async def __call__(
        self,
        *,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[T] | J:
        """Open the stream.  Per-call ``retries``, ``server_url``, ``timeout_ms`` and
        ``http_headers`` override the SDK's (see :class:`SDK`)."""
        return await self._sdk.invoke(
            self.operation,
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            http_headers=http_headers,
        )

    def connect(
        self,
        *,
        server_url: str | None = None,
        http_headers: Mapping[str, str] | None = None,
        reconnect_on_eof: bool = False,
        **options: Any,
    ) -> EventSource[T]:
        """The opt-in to resuming: the same request as a stream that reconnects when
        the connection drops or stalls, sending ``Last-Event-ID`` so nothing is lost
        or repeated (see :func:`aiostreams.connect`)::

            async with sdk.eventstreams.rich.connect(on_reconnect=print) as events:
                async for event in events:
                    ...

        A stream of this API that ends cleanly is complete, so unlike a browser's
        EventSource it is not reopened (``reconnect_on_eof=True`` would).  Other
        keyword arguments (``on_reconnect``, ``resume``, ``reconnect_on_error``,
        ``last_event_id``, ``max_reconnects``,
        ``idle_timeout``, ``event_timeout``, ``first_event_timeout``, ...) go to
        :func:`aiostreams.connect`.  The SDK's retries apply to opening each
        connection through ``connect``'s own backoff, not ``retry_config``.
        """
        return self._connect(None, server_url, http_headers, reconnect_on_eof, options)

    def _connect(
        self,
        request: msgspec.Struct | Mapping[str, Any] | None,
        server_url: str | None,
        http_headers: Mapping[str, str] | None,
        reconnect_on_eof: bool,
        options: dict[str, Any],
    ) -> EventSource[T]:
        sdk = self._sdk
        http_request = sdk.build_request(
            self.operation, request, server_url=server_url, http_headers=http_headers
        )
        source = connect(
            http_request.url,
            method=http_request.method,
            headers=http_request.headers,
            params=http_request.params,
            body=http_request.body,
            decoder=self.operation.schema,
            session=sdk.session,
            reconnect_on_eof=reconnect_on_eof,
            **options,
        )
        source._status_error = SDKError  # the SDK's errors keep the SDK's name
        return source

    def __repr__(self) -> str:
        return f"<operation {self.operation.name}: {self.operation.method} {self.operation.path}>"


class RequestCall(StreamCall[T, J]):
    """An operation with a JSON request body: ``await call(request={...}, ...)``."""

    __slots__ = ()

    async def __call__(  # type: ignore[override]  # adds the required request=
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[T] | J:
        """Send ``request`` (the Struct, or a dict with its fields) and open the stream."""
        return await self._sdk.invoke(
            self.operation,
            request,
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            http_headers=http_headers,
        )

    def connect(  # type: ignore[override]  # adds the required request=
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        server_url: str | None = None,
        http_headers: Mapping[str, str] | None = None,
        reconnect_on_eof: bool = False,
        **options: Any,
    ) -> EventSource[T]:
        """As :meth:`StreamCall.connect`, sending ``request``."""
        return self._connect(request, server_url, http_headers, reconnect_on_eof, options)


#: What ``chat`` streams.
ChatEvent = shared.ChatCompletionEvent | shared.SentinelEvent


class ChatCall(RequestCall[ChatEvent, list[shared.ChatCompletionEvent]]):
    """``chat``: typed by its request, so ``async with res`` type-checks.

    A dict literal without ``"stream": False`` (:class:`~aiostreams.models.shared.ChatStreamRequest`)
    returns an ``EventStream``; with it (:class:`~aiostreams.models.shared.ChatListRequest`) a
    list; anything else (a ``ChatRequest``, a ``dict[str, ...]`` variable) the union of both.
    """

    __slots__ = ()

    @overload  # type: ignore[override]  # as RequestCall: adds the required request=
    async def __call__(
        self,
        *,
        request: shared.ChatStreamRequest,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[ChatEvent]: ...

    @overload
    async def __call__(
        self,
        *,
        request: shared.ChatListRequest,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> list[shared.ChatCompletionEvent]: ...

    @overload
    async def __call__(
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[ChatEvent] | list[shared.ChatCompletionEvent]: ...

    async def __call__(
        self,
        *,
        request: msgspec.Struct | Mapping[str, Any],
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> EventStream[ChatEvent] | list[shared.ChatCompletionEvent]:
        return await super().__call__(
            request=request,
            retries=retries,
            server_url=server_url,
            timeout_ms=timeout_ms,
            http_headers=http_headers,
        )


class Eventstreams:
    """``sdk.eventstreams``: the seven operations (see ``aiostreams.sdk._operations``).

    ``chat`` returns a list of ``ChatCompletionEvent`` when the request says
    ``"stream": False`` (the server answers JSON), else an ``EventStream``.
    """

    def __init__(self, sdk: SDK) -> None:
        self.chat = ChatCall(sdk, CHAT)
        self.chat_skip_sentinel = RequestCall(sdk, CHAT_SKIP_SENTINEL)
        self.different_data_schemas = StreamCall(sdk, DIFFERENT_DATA_SCHEMAS)
        self.json = StreamCall(sdk, JSON)
        self.multiline = StreamCall(sdk, MULTILINE)
        self.rich = StreamCall(sdk, RICH)
        self.text = StreamCall(sdk, TEXT)


def _check_retries(name: str, retries: object) -> None:
    if retries is not None and not isinstance(retries, RetryConfig):
        raise TypeError(
            f"{name} must be a RetryConfig (e.g. RetryConfig(strategy='backoff')) or None, "
            f"got {type(retries).__name__}"
        )


def _check_security(security: object) -> None:
    """Refuse, at construction, what would fail or silently send no credentials later.

    Messages name types and keys, never a value (it may be the key itself)."""
    if security is None or isinstance(security, shared.Security):
        return
    if isinstance(security, Mapping):
        unknown = sorted(str(key) for key in security if key != "api_key_auth")
        if unknown:
            raise ValueError(
                f"security has unknown key(s) {unknown}: the only key is 'api_key_auth' "
                "(or pass shared.Security(api_key_auth='Token ...'))"
            )
        try:
            msgspec.convert(security, shared.Security)
        except msgspec.ValidationError as exc:
            raise TypeError(f"security does not fit Security(api_key_auth=...): {exc}") from None
        return
    if not callable(security):
        raise TypeError(
            "security must be shared.Security(api_key_auth='Token ...'), a dict "
            "{'api_key_auth': ...} or a callable returning a Security, "
            f"got {type(security).__name__}"
        )


def _param(value: object) -> str:
    """Header/query serialisation of the generated SDK: bools as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode_request(operation: Operation[Any, Any], request: object) -> bytes:
    request_type = operation.request_type
    assert request_type is not None
    if request is None:
        raise TypeError(f"{operation.name}() needs request=, e.g. {{'prompt': 'Hello'}}")
    if not isinstance(request, request_type):
        try:
            request = msgspec.convert(request, request_type)
        except msgspec.ValidationError as exc:
            raise ValueError(
                f"{operation.name}(): request does not fit {request_type.__name__}: {exc}"
            ) from None
    return msgspec.json.encode(request)
