"""Running the application: in this event loop (tests) or as a foreground server (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web

from .._log import server_log
from ._access import AccessLogger
from ._app import create_app

__all__ = ["DEFAULT_PORT", "run_server", "serve"]

#: The eventstreams SDK's default server is http://localhost:35456.
DEFAULT_PORT: Final = 35456

#: Open streams (``/load/idle`` holds one for a minute) must not delay shutdown:
#: clients of a stopping server see their connection end, as with a real restart.
_SHUTDOWN_TIMEOUT: Final = 0.5
#: Pending connections the kernel may queue (capped by net.core.somaxconn).
DEFAULT_BACKLOG: Final = 4096
#: Seconds a new connection has to send a complete request head; silent or
#: trickling sockets (slowloris) are closed after it instead of holding a slot.
HEADER_TIMEOUT: Final = 10.0


@contextlib.asynccontextmanager
async def run_server(
    app: web.Application | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    pace: float | None = None,
    api_key: str | None = None,
    backlog: int = DEFAULT_BACKLOG,
    header_timeout: float = HEADER_TIMEOUT,
    access_log: bool = False,
) -> AsyncIterator[str]:
    """Serve ``app`` (default: a new :func:`create_app`) in the running event loop.

    Args:
        app: the application; ``None`` builds one from ``pace`` and ``api_key``.
        host: the address to bind, loopback by default.
        port: the port; ``0`` picks a free one.
        pace, api_key: passed to :func:`create_app` when ``app`` is ``None``
            (``pace`` defaults to 0.1 s there).
        backlog: the listen queue; the default lets thousands of clients connect
            at once (fan-in benchmarks) instead of aiohttp's 128.
        header_timeout: seconds a connection may take to send its first request
            head before it is closed.
        access_log: log one INFO line per request on ``aiostreams.server``
            (path without query string), as ``aiostreams serve`` does.

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:40123"``.  Leaving the block stops
        the server and closes open connections.

    Raises:
        TypeError: ``pace`` or ``api_key`` given together with an ``app``
            (they would be silently ignored).
        OSError: the address cannot be bound.
    """
    if app is None:
        app = create_app(pace=0.1 if pace is None else pace, api_key=api_key)
    elif pace is not None or api_key is not None:
        raise TypeError("pass pace/api_key to create_app(), not to run_server() with an app")
    # handler_cancellation: a client that disconnects cancels its handler at once,
    # so held streams do not linger (aiohttp's own test server does the same).
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
        access_log=server_log if access_log else None,
        access_log_class=AccessLogger,
    )
    await runner.setup()
    server: asyncio.Server | None = None
    try:
        server = await _listen(runner, host, port, backlog, header_timeout)
        bound = server.sockets[0].getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound}"
    finally:
        if server is not None:
            server.close()
        await runner.cleanup()  # closes the open connections too


async def _listen(
    runner: web.AppRunner, host: str, port: int, backlog: int, header_timeout: float
) -> asyncio.Server:
    """Listen with the runner's protocol (what ``web.TCPSite`` does), plus a timer per
    connection: no complete request head within ``header_timeout``, closed."""
    factory = runner.server
    assert factory is not None
    loop = asyncio.get_running_loop()

    def protocol() -> asyncio.BaseProtocol:
        handler = factory()
        loop.call_later(header_timeout, _close_if_silent, handler)
        return handler

    return await loop.create_server(protocol, host, port, backlog=backlog, reuse_address=True)


def _close_if_silent(handler: asyncio.BaseProtocol) -> None:
    # aiohttp counts the request heads it parsed on a connection; none yet: a
    # client that connected and never finished asking (a missing attribute: leave it).
    transport = getattr(handler, "transport", None)
    if getattr(handler, "_request_count", 1) == 0 and transport is not None:
        transport.close()


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    pace: float = 0.1,
    api_key: str | None = None,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Serve the eventstreams API until SIGINT or SIGTERM, then stop cleanly.

    ``on_ready`` gets the bound base URL once the server accepts connections.
    Every request is logged at INFO on ``aiostreams.server`` (see ``run_server``).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    # Not on Windows nor outside the main thread: Ctrl-C then arrives as
    # KeyboardInterrupt, which the caller handles.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        async with run_server(
            host=host, port=port, pace=pace, api_key=api_key, access_log=True
        ) as url:
            on_ready(url)
            await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
