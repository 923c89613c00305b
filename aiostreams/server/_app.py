"""The eventstreams API as an aiohttp.web application (design.md §4 and §6).

The seven operations replay the byte scripts of ``_reference`` with the same
seams as the reference service; ``_load`` adds the benchmark endpoints.  Three
middlewares wrap every handler, outermost first: errors become
``{"message": ...}`` JSON (never a 500 page or traceback), every request is
recorded for tests, and the optional API key is enforced.
"""

from __future__ import annotations

import collections
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec
from aiohttp import web

from . import _reference as ref
from ._load import load_handler
from ._responses import RequestError, json_error, replay

__all__ = ["PACE_KEY", "REQUESTS_KEY", "RequestRecord", "create_app"]

_logger = logging.getLogger("aiostreams.server")

#: How many requests the app remembers; old ones fall off (a benchmark sends millions).
MAX_RECORDED_REQUESTS: Final = 1000
#: The largest request body accepted (413 past it): a chat prompt is a few KiB, and
#: recorded bodies (``MAX_RECORDED_REQUESTS`` of them) must stay small.
MAX_REQUEST_BODY: Final = 64 * 1024

_OPERATIONS: Final = "chat, chat-chunked, differentdataschemas, json, multiline, rich, text"
_CHAT_EXAMPLE: Final = 'send a JSON object like {"prompt": "Hello", "stream": true}'


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the server saw of one request (for tests of what a client sends).

    Attributes:
        method: the HTTP method, e.g. ``"POST"``.
        path: the decoded path, e.g. ``"/eventstreams/chat"``.
        query: the query parameters (the last value wins for a repeated name).
        headers: the request headers; lookups are case-insensitive.
        body: the raw request body (``b""`` if none).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUESTS_KEY: Final = web.AppKey[collections.deque[RequestRecord]]("requests")
PACE_KEY: Final = web.AppKey("pace", float)
_API_KEY_KEY: Final = web.AppKey[str | None]("api_key")


def create_app(*, pace: float = 0.1, api_key: str | None = None) -> web.Application:
    """Build the eventstreams application.

    Args:
        pace: seconds between two writes of a reference stream (the reference
            service uses 0.1); ``0`` sends them back to back, still as separate writes.
        api_key: if set, every request must carry ``Authorization: <api_key>``,
            else it gets 401 (before its body is read).  Bodies over
            ``MAX_REQUEST_BODY`` get 413.

    Returns:
        An application serving ``POST /eventstreams/<operation>`` and ``/load/<shape>``.
        ``app[REQUESTS_KEY]`` is a deque of the last requests (:class:`RequestRecord`).

    Raises:
        ValueError: ``pace`` is negative.
    """
    if not pace >= 0:  # also refuses nan
        raise ValueError(f"pace must be >= 0 seconds, got {pace}")
    # The key is checked before anything reads a body: an unauthenticated client
    # cannot make the server read (or record) a byte of it.
    app = web.Application(
        middlewares=[_errors_as_json, _require_api_key, _record_request],
        client_max_size=MAX_REQUEST_BODY,
    )
    app[REQUESTS_KEY] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
    app[PACE_KEY] = pace
    app[_API_KEY_KEY] = api_key
    routes: dict[str, Handler] = {
        "chat": _chat,
        "chat-chunked": _chat_chunked,
        "differentdataschemas": _scripted(ref.DIFFERENT_DATA_SCHEMAS),
        "json": _scripted(ref.JSON),
        "multiline": _scripted(ref.MULTILINE),
        "rich": _scripted(ref.RICH),
        "text": _text,
    }
    for name, handler in routes.items():
        app.router.add_post(f"/eventstreams/{name}", handler)
    app.router.add_get("/load/{shape}", load_handler, allow_head=False)
    app.router.add_post("/load/{shape}", load_handler)
    return app


# -- operations ------------------------------------------------------------------


def _scripted(writes: tuple[bytes, ...]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await replay(request, writes, request.app[PACE_KEY])

    return handler


async def _text(request: web.Request) -> web.StreamResponse:
    if request.headers.get("x-teapot") == "json":
        return web.Response(
            status=418, body=ref.TEAPOT, headers={"Content-Type": "application/json"}
        )
    return await replay(request, ref.TEXT, request.app[PACE_KEY])


class _ChatRequest(msgspec.Struct):
    prompt: str
    stream: bool | None = None


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await _chat_request(request)
    if body.stream is False:
        return web.Response(
            body=ref.CHAT_NOT_STREAMED, headers={"Content-Type": "application/json"}
        )
    return await replay(request, ref.CHAT, request.app[PACE_KEY])


async def _chat_chunked(request: web.Request) -> web.StreamResponse:
    await _chat_request(request)  # validated like chat; ``stream`` does not change the bytes
    return await replay(request, ref.CHAT_CHUNKED, request.app[PACE_KEY])


async def _chat_request(request: web.Request) -> _ChatRequest:
    raw = await request.read()
    if not raw.strip():
        raise RequestError(400, f"the request body is empty: {_CHAT_EXAMPLE}")
    try:
        return msgspec.json.decode(raw, type=_ChatRequest)
    except msgspec.ValidationError as exc:
        raise RequestError(422, f"invalid chat request: {exc}; {_CHAT_EXAMPLE}") from None
    except msgspec.DecodeError as exc:
        raise RequestError(
            400, f"the request body is not valid JSON ({exc}); {_CHAT_EXAMPLE}"
        ) from None


# -- middlewares -----------------------------------------------------------------


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        return json_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect or the like is not an error
        return _describe_http_error(request, exc)
    except Exception as exc:
        # A bug in this server; the client still gets JSON, the operator the traceback.
        _logger.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, f"internal error of the aiostreams server: {exc!r}")


def _describe_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    where = f"{request.method} {request.path}"
    if isinstance(exc, web.HTTPNotFound):
        message = (
            f"{where}: no such endpoint; the server has POST /eventstreams/<operation> "
            f"({_OPERATIONS}) and /load/<shape>"
        )
        return json_error(404, message)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{where}: method not allowed here, use {allowed}"
        return json_error(405, message, headers={"Allow": ",".join(sorted(exc.allowed_methods))})
    return json_error(exc.status, f"{where}: {exc.reason}")


@web.middleware
async def _record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = await request.read() if request.body_exists else b""
    request.app[REQUESTS_KEY].append(
        RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=request.headers,
            body=body,
        )
    )
    return await handler(request)


@web.middleware
async def _require_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[_API_KEY_KEY]
    if expected is not None:
        sent = request.headers.get("Authorization")
        if sent is None:
            return json_error(
                401, "missing Authorization header: send the API key the server was started with"
            )
        # Constant time: the comparison must not tell how much of a guess was right.
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return json_error(
                401, "wrong Authorization header: it does not match the server's API key"
            )
    return await handler(request)
