"""Shared fixtures: the embedded eventstreams server on loopback.

* ``eventstreams_app``: ``create_app(pace=0)``, a fresh application per test.
* ``eventstreams_server``: that application served on 127.0.0.1 at a free port;
  the value is the base URL, e.g. ``"http://127.0.0.1:40123"``.
* ``eventstreams_requests``: the requests the server received, oldest first
  (:class:`aiostreams.server.RequestRecord`: method, path, query, headers, body),
  to check what a client sent.

Pace 0 sends every reference stream as fast as possible, still one write per
chunk of the reference script, so seams are preserved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from aiostreams.server import REQUESTS_KEY, create_app, run_server

if TYPE_CHECKING:
    from collections import deque

    from aiostreams.server import RequestRecord


@pytest.fixture
def eventstreams_app() -> web.Application:
    return create_app(pace=0)


@pytest.fixture
async def eventstreams_server(eventstreams_app: web.Application) -> AsyncIterator[str]:
    async with run_server(eventstreams_app) as url:
        yield url


@pytest.fixture
def eventstreams_requests(eventstreams_app: web.Application) -> deque[RequestRecord]:
    return eventstreams_app[REQUESTS_KEY]
