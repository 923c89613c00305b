"""The pytest plugin of aiostreams: the ``sse_server`` fixture.

Registered through the ``pytest11`` entry point, so installing aiostreams is
enough.  Importing it costs only pytest: the server code loads when a test asks
for the fixture.  Disable it with ``-p no:aiostreams``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import SSEServer

__all__ = ["sse_server"]


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A scriptable SSE server on 127.0.0.1, started for this test and stopped after it.

    Script answers with ``sse_server.on(path)...``, point the client at
    ``sse_server.url``, assert on ``sse_server.requests``.  Works in sync and async
    tests, under pytest-asyncio or anyio.  An exception inside a script fails the test.
    """
    from . import SSEServer

    server = SSEServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    if server.errors:
        first = server.errors[0]
        raise AssertionError(
            f"sse_server: {len(server.errors)} script(s) failed, first: {first!r}"
        ) from first
