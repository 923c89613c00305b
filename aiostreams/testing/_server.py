"""``SSEServer``: a scriptable aiohttp server on loopback, run in its own thread.

Why a thread: the server then works under any test runner and any client —
pytest-asyncio or anyio's plugin, asyncio or trio, async or blocking clients
(``httpx.Client``, openai's sync SDK) — and a test that blocks its own event loop
cannot freeze the server it talks to.  The test thread only builds scripts and
reads what was received; both sides share them under one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final

import anyio.to_thread
import msgspec
from aiohttp import web
from multidict import CIMultiDictProxy

from ..server import run_server
from ._recording import Recording
from ._script import Script, _Connection, steps_from

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ReceivedRequest", "SSEServer"]

#: Headers of a recorded response that describe that connection, not the stream:
#: the replaying server writes its own (and the body arrives decoded).
_NOT_REPLAYED: Final = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server",
     "content-encoding"}
)  # fmt: skip
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the server received it.

    Attributes:
        method: e.g. ``"GET"``.
        path: the decoded path, e.g. ``"/v1/chat/completions"``.
        query: the query parameters (the last value wins for a repeated name).
        query_string: the raw query string, e.g. ``"a=1&a=2"``.
        headers: case-insensitive, all values kept.
        body: the raw body, ``b""`` if none.
    """

    method: str
    path: str
    query: dict[str, str]
    query_string: str
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def last_event_id(self) -> str | None:
        """The ``Last-Event-ID`` header, ``None`` if absent."""
        return self.headers.get("Last-Event-ID")

    def json(self) -> object:
        """The body decoded as JSON."""
        return msgspec.json.decode(self.body)


class SSEServer:
    """A real HTTP server on 127.0.0.1 that answers each request with the next
    matching :class:`Script`, and remembers every request.

    Use it as the ``sse_server`` pytest fixture, or directly::

        with SSEServer() as server:
            server.on("/events").events("a", "b")
            ...  # a client reads server.url + "/events"

    A request that no script is left for gets ``404`` with a message saying so.
    An exception inside a script (a bug, not a client leaving) is kept in
    :attr:`errors`; the fixture fails the test with it.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._scripts: list[Script] = []
        self._requests: list[ReceivedRequest] = []
        self._errors: list[BaseException] = []
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[object]] = set()

    def __repr__(self) -> str:
        return f"<SSEServer {self._url or 'not started'}: {len(self._requests)} requests>"

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start serving; returns the base URL. Raises OSError if the port cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("this SSEServer was already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="aiostreams-sse-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"the SSE server did not start within {_START_TIMEOUT:g} s")
        if failure:
            self._thread.join()
            raise failure[0]
        assert self._url is not None
        return self._url

    def stop(self) -> None:
        """Close every connection (stalled ones included) and stop the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stop.set)
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"the SSE server thread did not stop within {_STOP_TIMEOUT:g} s")

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # noqa: BLE001 - reported to start(), or kept for the test
            (failure if not ready.is_set() else self._errors).append(exc)
        finally:
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        async with run_server(app, host=self._host, port=self._port) as url:
            self._url = url
            ready.set()
            await self._stop.wait()
            for task in list(self._handlers):
                task.cancel()  # stalled and endless streams end now, not at a timeout

    # -- scripting ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``"http://127.0.0.1:40123"`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the SSE server is not started")
        return self._url

    def url_for(self, path: str) -> str:
        """``url`` joined with ``path``, e.g. ``url_for("/events")``."""
        return self.url + (path if path.startswith("/") else "/" + path)

    def on(
        self, path: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Script:
        """Script the answer to the next request for ``path`` (any path if ``None``).

        Args:
            path: the exact path to match, e.g. ``"/events"``; the query is not compared.
            method: only this method (``None``: any).
            times: how many requests this script answers; ``None``: every one.

        Scripts are used in the order they were made: ``on("/e")`` twice scripts the
        first and the second connection.
        """
        script = Script(path=path, method=method, times=times)
        with self._lock:
            self._scripts.append(script)
        return script

    def replay(
        self,
        recording: Recording | str | os.PathLike[str],
        *,
        path: str | None = None,
        method: str | None = None,
        pace: float = 0.0,
        times: int | None = 1,
    ) -> Script:
        """Serve a recording: its status, headers and chunks, one write per chunk.

        Args:
            recording: a :class:`Recording` or the path of a recording file.
            path: the path to serve it at (default: the recorded URL's path;
                ``"*"``: any path).
            method: only this method (default: any).
            pace: 1 replays at the recorded pace, 0 (default) without pauses,
                0.5 twice as fast.
            times: as in :meth:`on`.

        A recording that ended with an error ends with a reset, one that was
        interrupted stalls (the stream was still open); otherwise the body ends
        cleanly.  More steps can be chained after these.
        """
        if not isinstance(recording, Recording):
            recording = Recording.load(recording)
        if not pace >= 0:
            raise ValueError(f"pace must be >= 0, got {pace}")
        target = recording.path if path is None else None if path == "*" else path
        script = self.on(target, method=method, times=times)
        script.status(recording.status, reason=recording.reason or None)
        script._defaults = False
        for name, value in recording.headers:
            if name.lower() not in _NOT_REPLAYED:
                script.header(name, value)
        sized = any(n.lower() == "content-length" for n, _ in recording.headers) and not any(
            n.lower() == "transfer-encoding" for n, _ in recording.headers
        )
        if sized:
            script._content_length = len(recording.body)
        script._steps.extend(steps_from(((c.t, c.data) for c in recording.chunks), pace))
        if recording.end == "error":
            script.reset()
        elif recording.end == "interrupted":
            script.stall()
        return script

    # -- what was received -------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside scripts (not a client leaving)."""
        with self._lock:
            return list(self._errors)

    def wait_for_requests(self, count: int, *, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests arrived; returns them. Raises TimeoutError.

        From async code use :meth:`received`, which does not block the event loop."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(
                    f"the SSE server received {len(self._requests)} requests "
                    f"within {timeout:g} s, not {count}"
                )
            return list(self._requests)

    async def received(
        self,
        count: int,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - it bounds the waiting worker thread too
    ) -> list[ReceivedRequest]:
        """Wait (without blocking the event loop) until ``count`` requests arrived."""
        wait = functools.partial(self.wait_for_requests, count, timeout=timeout)
        return await anyio.to_thread.run_sync(wait, abandon_on_cancel=True)

    # -- serving -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            body = await request.read() if request.body_exists else b""
            received = ReceivedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                query_string=request.query_string,
                headers=CIMultiDictProxy(request.headers.copy()),
                body=body,
            )
            with self._lock:
                self._requests.append(received)
                number = len(self._requests)
                script = self._take(request.method, request.path)
                self._lock.notify_all()
            if script is None:
                return web.Response(
                    status=404,
                    text=f"aiostreams.testing.SSEServer: no script (left) for request "
                    f"{number}, {request.method} {request.path}\n",
                )
            return await self._play(script, request)
        finally:
            self._handlers.discard(task)

    def _take(self, method: str, path: str) -> Script | None:
        for script in self._scripts:
            if script.remaining != 0 and script._matches(method, path):
                if script.remaining is not None:
                    script.remaining -= 1
                return script
        return None

    async def _play(self, script: Script, request: web.Request) -> web.StreamResponse:
        conn = _Connection(request, script)
        try:
            return await script._play(conn)
        except ConnectionError:
            pass  # the client left: normal for a stream
        except Exception as exc:  # noqa: BLE001 - a script's bug, failed in the test
            with self._lock:
                self._errors.append(exc)
            if request.transport is not None:
                request.transport.abort()
        return conn.response or web.Response(status=500)
