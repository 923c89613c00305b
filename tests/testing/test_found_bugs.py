"""Bugs the fault scripts found in clients; each test flips to a pass when fixed.

aiohttp 3.14's C HTTP parser swallows a malformed chunk-size line that arrives
after the headers: the response never ends and no read timeout fires (the pure
Python parser, ``AIOHTTP_NO_EXTENSIONS=1``, raises TransferEncodingError).
aiostreams reads through aiohttp, and its ``idle_timeout`` did not save it.
With the pure-Python parser the stream ends, but with aiohttp's bare
``TransferEncodingError``, not an ``aiostreams.errors`` one.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from aiostreams import connect
from aiostreams.errors import AiostreamsError
from aiostreams.testing import SSEServer


@pytest.mark.xfail(reason="aiohttp's C parser hangs on a malformed chunk; idle_timeout misses it")
async def test_malformed_chunk_after_an_event_ends_the_stream(sse_server: SSEServer) -> None:
    sse_server.on().events("a").sleep(0.05).malformed_chunk()
    got: list[str] = []

    async def read() -> None:
        async with connect(
            sse_server.url, reconnect_on_eof=False, max_reconnects=0, idle_timeout=0.5
        ) as source:
            got.extend([event.data async for event in source])

    with pytest.raises(AiostreamsError):  # not TimeoutError: hung, idle_timeout never fired
        await asyncio.wait_for(read(), 3)
    assert got == ["a"]


PYTHON_PARSER_CLIENT = """
import asyncio
from aiostreams import connect
from aiostreams.testing import SSEServer

async def main():
    with SSEServer() as server:
        server.on().events("a").sleep(0.05).malformed_chunk()
        try:
            async with connect(server.url, reconnect_on_eof=False, max_reconnects=0) as source:
                async for _ in source:
                    pass
        except Exception as exc:
            print(type(exc).__module__, type(exc).__name__)

asyncio.run(main())
"""


@pytest.mark.xfail(reason="aiohttp's TransferEncodingError escapes aiostreams' error hierarchy")
def test_malformed_chunk_is_an_aiostreams_error_with_the_python_parser() -> None:
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PYTHON_PARSER_CLIENT],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.split()[0] == "aiostreams.errors", done.stdout
