"""The hostile-server suite: servers that break the rules, and what aiostreams promises
against them (docs/resilience.md).  Any change must keep these passing.

Raw asyncio socket servers where the bytes themselves must be broken (chunk framing,
resets, cut bodies); real aiohttp servers elsewhere.  Each assertion says what was
sent and what was received.
"""

from __future__ import annotations

import asyncio
import gc
import http.server
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aiostreams
from aiostreams import SDK, RetryConfig, SSEDecoder, blocking, connect, create_session
from aiostreams.cli import main as cli_main
from aiostreams.errors import (
    ConnectError,
    HTTPStatusError,
    InvalidURL,
    StreamInterrupted,
    StreamTimeout,
)
from aiostreams.server import REQUESTS_KEY, ServerProcess, create_app, run_server

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
CHUNKED = SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
CLOSE_DELIMITED = SSE_HEAD + b"Connection: close\r\n\r\n"  # no length, no chunking
SECRET = "sk-hostile-0123456789"

Script = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Raw:
    """A raw TCP server; ``script(connection number, request head+body, writer)``."""

    url: str = ""
    heads: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # every byte written, per connection

    @property
    def connections(self) -> int:
        return len(self.heads)

    def last_event_ids(self) -> list[str | None]:
        out: list[str | None] = []
        for head in self.heads:
            value = None
            for line in head.split(b"\r\n"):
                name, _, rest = line.partition(b":")
                if name.lower() == b"last-event-id":
                    value = rest.strip().decode()
            out.append(value)
        return out


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[Raw]:
    raw = Raw()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    head += await reader.readexactly(int(line.split(b":")[1]))
            raw.heads.append(head)
            raw.sent.append(b"")
            number = len(raw.heads)
            real_write = writer.write

            def write(data: bytes | bytearray | memoryview) -> None:
                raw.sent[number - 1] += bytes(data)
                real_write(data)

            writer.write = write  # type: ignore[method-assign]
            await script(number, head, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
    try:
        yield raw
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def events(first: int, last: int, tag: str = "e") -> bytes:
    return b"".join(
        b"id: %d\ndata: %s%d\n\n" % (i, tag.encode(), i) for i in range(first, last + 1)
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def send_then(writer: asyncio.StreamWriter, data: bytes, end: str) -> None:
    """Write ``data`` and end the response: "reset", "fin", "hold" or "done" (chunked end)."""
    writer.write(data)
    await writer.drain()
    if end == "reset":
        await asyncio.sleep(0.05)  # the bytes reach the client before the RST
        reset(writer)
    elif end == "hold":
        await asyncio.sleep(3600)
    elif end == "done":
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def collect(source: Any) -> list[Any]:
    async with source:
        return [event async for event in source]


async def collect_until_error(source: Any) -> tuple[list[Any], BaseException | None]:
    got: list[Any] = []
    try:
        async with source:
            async for event in source:
                got.append(event)  # noqa: PERF401 - kept when the loop raises
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return got, exc
    return got, None


def chain(error: BaseException) -> list[BaseException]:
    """The error and everything chained to it (cause and context), recursively."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def shows(error: BaseException, secret: str) -> bool:
    return any(secret in str(e) or secret in repr(e) for e in chain(error))


# -- 1. replays: skipped only when provably a copy --------------------------------------


async def test_restarted_ids_with_new_data_are_all_delivered() -> None:
    """Conn 1: ids 1..50 then a reset; conn 2 (a restarted server): ids 1..30, new data."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            await send_then(writer, CHUNKED + chunk(events(1, 50, "a")), "reset")
        else:
            await send_then(writer, CHUNKED + chunk(events(1, 30, "b")), "done")

    async with raw_server(script) as raw:
        source = connect(raw.url, retry_ms=1, reconnect_on_eof=False, max_reconnects=2)
        got = [e.data for e in await collect(source)]
    sent = [f"a{i}" for i in range(1, 51)] + [f"b{i}" for i in range(1, 31)]
    assert got == sent, f"sent {len(sent)}, received {len(got)}"
    assert raw.last_event_ids() == [None, "50"] and source.replayed == 0


async def test_per_connection_ids_that_ignore_last_event_id_are_all_delivered() -> None:
    """Every connection numbers its events 1..15 (other data each time), ignoring
    Last-Event-ID, then resets; the third ends cleanly."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        body = CHUNKED + chunk(events(1, 15, f"c{n}-"))
        await send_then(writer, body, "done" if n == 3 else "reset")

    async with raw_server(script) as raw:
        source = connect(raw.url, retry_ms=1, reconnect_on_eof=False, max_reconnects=2)
        got = [e.data for e in await collect(source)]
    sent = [f"c{n}-{i}" for n in (1, 2, 3) for i in range(1, 16)]
    assert got == sent, f"sent {len(sent)} events, {len(got)} delivered"
    assert source.replayed == 0


@pytest.mark.parametrize("mode", ["from-start", "inclusive"])
async def test_a_true_replay_is_skipped_exactly(mode: str) -> None:
    """The server replays (from the start, or from the Last-Event-ID inclusive) the very
    same events: they are copies, skipped; everything new is delivered once."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            await send_then(writer, CHUNKED + chunk(events(1, 10)), "reset")
        else:
            first = 1 if mode == "from-start" else 10
            await send_then(writer, CHUNKED + chunk(events(first, 20)), "done")

    async with raw_server(script) as raw:
        source = connect(raw.url, retry_ms=1, reconnect_on_eof=False, max_reconnects=2)
        got = [e.data for e in await collect(source)]
    assert got == [f"e{i}" for i in range(1, 21)], f"received {got}"
    assert source.replayed == (10 if mode == "from-start" else 1)


async def test_a_copy_with_other_data_is_not_a_copy() -> None:
    """Conn 2 replays ids 1..5, but event 3 now has other data: 1, 2 are skipped,
    3 (changed) and everything after it are delivered."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            await send_then(writer, CHUNKED + chunk(events(1, 5)), "reset")
        else:
            body = events(1, 2) + b"id: 3\ndata: changed\n\n" + events(4, 6)
            await send_then(writer, CHUNKED + chunk(body), "done")

    async with raw_server(script) as raw:
        got = [e.data for e in await collect(connect(raw.url, retry_ms=1, reconnect_on_eof=False))]
    assert got == ["e1", "e2", "e3", "e4", "e5", "changed", "e4", "e5", "e6"], got


async def test_a_replay_reaching_past_the_window_is_delivered_again_never_lost() -> None:
    """Conn 1: 3,000 events (more than the digests remembered), reset; conn 2 replays
    all of them from the start, then 3,001..3,010: the old ones come again
    (duplicates the user can see), nothing is lost."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            await send_then(writer, CHUNKED + chunk(events(1, 3000)), "reset")
        else:
            await send_then(writer, CHUNKED + chunk(events(1, 3010)), "done")

    async with raw_server(script) as raw:
        got = [e.data for e in await collect(connect(raw.url, retry_ms=1, reconnect_on_eof=False))]
    sent = [f"e{i}" for i in range(1, 3011)]
    assert set(got) == set(sent) and got[-10:] == sent[-10:], f"{len(got)} delivered"
    assert len(got) == 3000 + 3010  # the replay could not be proved a copy: delivered


# -- 2. every timeout is enforced by our own clock --------------------------------------


async def _bad_chunk_size(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(CHUNKED + chunk(b"id: %d\ndata: ok\n\n" % n))
    await writer.drain()
    await asyncio.sleep(0.1)  # the event is read alone, then the broken framing
    await send_then(writer, b"zz\r\n", "hold")


async def test_malformed_chunk_size_cannot_hang_the_sdk() -> None:
    """One good chunk, then the chunk-size line 'zz', socket left open.  aiohttp's C
    parser stalls on it; the SDK's timeout_ms still fires (our clock)."""
    async with raw_server(_bad_chunk_size) as raw:
        base = raw.url.rsplit("/", 1)[0]
        app_url = base
        async with SDK(server_url=app_url, timeout_ms=500) as s:
            stream = await s.eventstreams.text()
            started = time.monotonic()
            got, error = await collect_until_error(stream)
            elapsed = time.monotonic() - started
    assert [e.data for e in got] == ["ok"], f"sent {raw.sent[0]!r}"
    assert isinstance(error, (StreamTimeout, StreamInterrupted)), repr(error)
    assert elapsed < 5, f"took {elapsed:.1f} s to notice"


async def test_malformed_chunk_size_reconnects_in_connect() -> None:
    reasons: list[str] = []
    async with raw_server(_bad_chunk_size) as raw:
        source = connect(
            raw.url, idle_timeout=0.3, retry_ms=1, on_reconnect=lambda r: reasons.append(r.reason)
        )
        async with source:
            got = [await source.__anext__(), await source.__anext__()]
    assert [e.id for e in got] == ["1", "2"], f"{raw.connections} connections"
    assert raw.connections == 2 and raw.last_event_ids() == [None, "1"]
    assert reasons == ["timeout"]


def test_malformed_chunk_size_with_the_pure_python_parser(tmp_path: Any) -> None:
    """aiohttp without its C extensions raises TransferEncodingError on 'zz': a drop,
    named, not a raw aiohttp exception."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import asyncio, sys\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}]\n"
        "from test_hostile import raw_server, _bad_chunk_size, collect_until_error\n"
        "import aiostreams\n"
        "async def main():\n"
        "    async with raw_server(_bad_chunk_size) as raw:\n"
        "        source = aiostreams.connect(raw.url, max_reconnects=0, idle_timeout=5)\n"
        "        got, error = await collect_until_error(source)\n"
        "    print(len(got), type(error).__name__, error)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    out = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    count, name, message = out.stdout.split(" ", 2)
    assert count == "1" and name == "StreamInterrupted", out.stdout
    assert "TransferEncodingError" in message or "chunk" in message.lower(), out.stdout


async def test_absurd_chunk_size_is_bounded_by_the_idle_timeout() -> None:
    """A chunk announced as 2**63-1 bytes, 10 of them sent, then silence."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED + chunk(events(1, 1)))
        await writer.drain()
        await asyncio.sleep(0.05)
        await send_then(writer, b"7fffffffffffffff\r\ndata: xxxx", "hold")

    async with raw_server(script) as raw:
        started = time.monotonic()
        got, error = await collect_until_error(connect(raw.url, idle_timeout=0.3, max_reconnects=0))
    assert [e.id for e in got] == ["1"] and isinstance(error, StreamTimeout), repr(error)
    assert time.monotonic() - started < 5


async def test_broken_gzip_body_is_a_drop() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        gz = SSE_HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        await send_then(writer, gz + chunk(b"\x1f\x8b\x08\x00not really gzip" * 4), "done")

    async with raw_server(script) as raw:
        got, error = await collect_until_error(connect(raw.url, max_reconnects=0))
    assert got == [] and isinstance(error, ConnectError), repr(error)
    assert not isinstance(error, aiohttp.ClientError)


async def test_server_that_closes_at_once_is_retried_with_backoff() -> None:
    """Accepts, reads the request, closes without a byte (three times): reconnects
    until the server answers.  (aiohttp itself may retry an idempotent request once
    on such a close, so there are 1 to 3 reconnects.)"""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n < 4:
            return  # the handler closes the socket
        await send_then(writer, CHUNKED + chunk(events(1, 1)), "done")

    delays: list[float] = []
    async with raw_server(script) as raw:
        source = connect(
            raw.url,
            retry_ms=1,
            reconnect_on_eof=False,
            on_reconnect=lambda r: delays.append(r.delay),
        )
        got = await collect(source)
    assert [e.id for e in got] == ["1"] and raw.connections == 4
    assert 1 <= len(delays) <= 3 and delays == sorted(delays), delays  # grows, never spins


# -- 3. a cut body is a drop, never a clean end -----------------------------------------


@pytest.mark.parametrize("cut", ["mid-event", "between-newlines", "at-a-boundary"])
async def test_close_delimited_body_reset_is_a_drop(cut: str) -> None:
    """No length, no chunking: 'id: 1 / data: a', then (part of) event 2 and a TCP RST."""
    tails = {
        "mid-event": b"id: 2\ndata: b",
        "between-newlines": b"id: 2\ndata: b\n",
        "at-a-boundary": b"",
    }

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if b"Last-Event-ID" not in head:
            await send_then(writer, CLOSE_DELIMITED + events(1, 1) + tails[cut], "reset")
        else:
            await send_then(writer, CLOSE_DELIMITED + events(2, 3), "fin")

    async with raw_server(script) as raw:
        got, error = await collect_until_error(connect(raw.url, max_reconnects=0))
        assert [e.id for e in got] == ["1"] and isinstance(error, StreamInterrupted), (
            f"sent {raw.sent[0]!r}; received {got}, {error!r}"
        )
        assert "could not connect" not in str(error) and "'1'" in str(error)
        # With reconnects, nothing is lost: the rest comes on the next connection.
        got = await collect(connect(raw.url, retry_ms=1, reconnect_on_eof=False))
    assert [e.id for e in got] == ["1", "2", "3"] and raw.last_event_ids()[-1] == "1"


async def test_close_delimited_body_closed_cleanly_is_an_end() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, CLOSE_DELIMITED + events(1, 2), "fin")

    async with raw_server(script) as raw:
        got, error = await collect_until_error(connect(raw.url, reconnect_on_eof=False))
    assert [e.id for e in got] == ["1", "2"] and error is None and raw.connections == 1


async def test_content_length_body_cut_short_is_a_drop() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        body = events(1, 1)
        await send_then(writer, SSE_HEAD + b"Content-Length: 500\r\n\r\n" + body, "fin")

    async with raw_server(script) as raw:
        got, error = await collect_until_error(connect(raw.url, max_reconnects=0))
    assert [e.id for e in got] == ["1"] and isinstance(error, StreamInterrupted), repr(error)


async def test_chunked_body_ending_inside_an_event_is_a_drop() -> None:
    """A well-framed chunked body whose last event is unfinished: the server cut it."""

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, CHUNKED + chunk(events(1, 1) + b"id: 2\ndata: hal"), "done")

    async with raw_server(script) as raw:
        got, error = await collect_until_error(connect(raw.url, max_reconnects=0))
    assert [e.id for e in got] == ["1"] and isinstance(error, StreamInterrupted)
    assert "ended inside an event" in str(error)


# -- 4. server-supplied numbers never raise ---------------------------------------------


def test_retry_field_with_thousands_of_digits_is_clamped() -> None:
    decoder = SSEDecoder()
    got = decoder.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n")
    assert [e.data for e in got] == ["x"] and decoder.retry == 2**53


async def test_huge_retry_is_clamped_to_max_server_wait() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        body = b"retry: " + b"9" * 450 + b"\n" + events(n, n)
        await send_then(writer, CHUNKED + chunk(body), "reset" if n == 1 else "done")

    delays: list[float] = []
    async with raw_server(script) as raw:
        source = connect(
            raw.url,
            max_server_wait_ms=50,
            reconnect_on_eof=False,
            on_reconnect=lambda r: delays.append(r.delay),
        )
        got = await collect(source)
    assert [e.id for e in got] == ["1", "2"] and delays == [0.05]


@pytest.mark.parametrize("value", ["²", "9" * 5000, "Fri, 31 Dec 99999 23:59:59 GMT", "-1"])
async def test_bad_retry_after_never_raises(value: str) -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            header = f"HTTP/1.1 503 Busy\r\nRetry-After: {value}\r\nContent-Length: 0\r\n\r\n"
            await send_then(writer, header.encode(), "fin")
        else:
            await send_then(writer, CLOSE_DELIMITED + events(1, 1), "fin")

    delays: list[float] = []
    async with raw_server(script) as raw:
        source = connect(
            raw.url,
            retry_ms=1,
            max_server_wait_ms=100,
            reconnect_on_eof=False,
            on_reconnect=lambda r: delays.append(r.delay),
        )
        got = await collect(source)
        assert [e.id for e in got] == ["1"] and len(delays) == 1 and delays[0] <= 0.1
        # The SDK's retries read the same header.
        fast = RetryConfig(backoff=aiostreams.BackoffStrategy(1, 2, 1.5, 60_000))
        async with SDK(server_url=raw.url.rsplit("/", 1)[0], retry_config=fast) as s:
            # connection 3 answers 200 close-delimited: the retry loop survived the header
            stream = await s.eventstreams.text()
            await stream.aclose()


async def test_thousand_failures_in_a_row_do_not_overflow() -> None:
    """1,100 reconnects in a row without an event (2**1024 overflows a float)."""
    attempts = 0

    async def busy(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/s", busy)
    async with run_server(app) as url:
        source = connect(f"{url}/s", retry_ms=0, max_retry_ms=0, max_reconnects=1100)
        with pytest.raises(HTTPStatusError) as info:
            await collect(source)
    assert info.value.status_code == 503 and attempts == 1101
    source._failures = 10**6  # what an outage of days reaches, with default bounds
    source._max_retry_ms, source.retry_ms = 30_000, 3000
    assert 15 <= source._delay(None) <= 30


async def test_retry_zero_cannot_make_a_failing_server_spin() -> None:
    """retry: 0, then nothing but failures: the backoff still grows (a floor)."""
    times: list[float] = []

    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        times.append(time.monotonic())
        if n == 1:
            await send_then(writer, CHUNKED + chunk(b"retry: 0\n" + events(1, 1)), "reset")
        else:
            await send_then(writer, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", "fin")

    async with raw_server(script) as raw:
        source = connect(raw.url, max_reconnects=None)
        async with source:
            await source.__anext__()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(source.__anext__(), 0.5)
    # 300+/s without a floor; with it, at most ~10 attempts in the first half second.
    assert 2 <= raw.connections <= 15, f"{raw.connections} requests in 0.5 s"


# -- 5. non-idempotent requests are not re-sent at a clean end --------------------------


async def test_post_is_not_resent_at_a_clean_end() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, CHUNKED + chunk(events(1, 2)), "done")

    async with raw_server(script) as raw:
        got = await collect(connect(raw.url, method="POST", json={"prompt": "hi"}, retry_ms=1))
        assert [e.id for e in got] == ["1", "2"] and raw.connections == 1, "one POST, billed once"
        opted = connect(
            raw.url, method="POST", json={}, retry_ms=1, reconnect_on_eof=True, max_reconnects=2
        )
        await collect(opted)
    assert raw.connections == 1 + 3  # opting in re-sends it


async def test_post_is_resent_after_a_drop_with_last_event_id() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        end = "reset" if n == 1 else "done"
        await send_then(writer, CHUNKED + chunk(events(2 * n - 1, 2 * n)), end)

    async with raw_server(script) as raw:
        got = await collect(connect(raw.url, method="POST", json={"p": 1}, retry_ms=1))
    assert [e.id for e in got] == ["1", "2", "3", "4"]
    assert raw.last_event_ids() == [None, "2"] and all(h.startswith(b"POST") for h in raw.heads)


# -- 6. a request that can never succeed fails at once ----------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("127.0.0.1:35456/events", "no http:// or https:// scheme"),
        ("ftp://127.0.0.1/events", "scheme 'ftp' is not supported"),
        ("http://127.0.0.1:99999/events", "bad port"),
        ("http:///events", "no host"),
    ],
)
async def test_invalid_url_fails_at_once(url: str, words: str) -> None:
    with pytest.raises(InvalidURL) as info:
        connect(url + "?token=q-secret")
    message = str(info.value)
    assert message.startswith("url=") and words in message and "\n" not in message, message
    assert "q-secret" not in message
    with pytest.raises(InvalidURL, match="^server_url=") as sdk_info:
        SDK(server_url=url)
    assert words in str(sdk_info.value)
    async with SDK() as s:
        with pytest.raises(InvalidURL, match="^server_url="):
            await s.eventstreams.json(server_url=url)


# -- 7. secrets never shown -------------------------------------------------------------


async def test_redirect_loop_token_not_in_any_chained_exception() -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/s?token=q-secret&n=" + str(len(request.query)))

    app = web.Application()
    app.router.add_get("/s", loop)
    async with run_server(app) as url:
        _, error = await collect_until_error(connect(f"{url}/s?token=q-secret", max_reconnects=0))
    assert isinstance(error, ConnectError) and "redirect" in str(error).lower()
    assert not shows(error, "q-secret"), [repr(e) for e in chain(error)]


async def test_malformed_headers_token_not_in_any_chained_exception() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, b"HTTP/1.1 200 OK\r\nBad Header\x00: x\r\n\r\n", "fin")

    async with raw_server(script) as raw:
        url = raw.url.replace("http://", f"http://user:{SECRET}@") + "?token=q-secret"
        _, error = await collect_until_error(connect(url, max_reconnects=0))
    assert isinstance(error, ConnectError), repr(error)
    assert not shows(error, "q-secret") and not shows(error, SECRET), [
        repr(e) for e in chain(error)
    ]


async def test_sdk_with_credentials_in_server_url() -> None:
    async with raw_server(
        lambda n, h, w: send_then(w, CLOSE_DELIMITED + events(1, 1), "fin")
    ) as raw:
        base = raw.url.rsplit("/", 1)[0].replace("http://", f"http://user:{SECRET}@")
        s = SDK(server_url=base)
        assert SECRET not in repr(s) and SECRET not in repr(blocking.SDK(server_url=base))
        async with s:
            stream = await s.eventstreams.text()
            await stream.aclose()
    assert b"Authorization: Basic " in raw.heads[0]  # sent, as aiohttp would
    async with SDK(server_url="http://user:" + SECRET + "@127.0.0.1:1") as s:
        with pytest.raises(ConnectError) as info:
            await s.eventstreams.text()
    assert not shows(info.value, SECRET), [repr(e) for e in chain(info.value)]


async def test_custom_auth_headers_dropped_on_cross_origin_redirects() -> None:
    seen: dict[str, list[dict[str, str]]] = {"a": [], "b": []}

    def app_for(name: str, target: Callable[[], str]) -> web.Application:
        async def away(request: web.Request) -> web.Response:
            seen[name].append(dict(request.headers))
            raise web.HTTPTemporaryRedirect(target())

        async def stream(request: web.Request) -> web.StreamResponse:
            seen[name].append(dict(request.headers))
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"data: here\n\n")
            return response

        app = web.Application()
        app.router.add_get("/away", away)
        app.router.add_get("/stream", stream)
        return app

    urls: dict[str, str] = {}
    headers = {"X-API-Key": SECRET, "Cookie": "session=" + SECRET, "X-Trace": "kept"}
    async with (
        run_server(app_for("b", lambda: "/stream")) as urls["b"],
        run_server(app_for("a", lambda: f"{urls['b']}/stream")) as urls["a"],
    ):
        await collect(connect(f"{urls['a']}/away", headers=headers, reconnect_on_eof=False))
        await collect(connect(f"{urls['b']}/away", headers=headers, reconnect_on_eof=False))
    (first,) = seen["a"]
    cross, same_origin_1, same_origin_2 = seen["b"]
    assert first["X-API-Key"] == SECRET
    assert "X-API-Key" not in cross and "Cookie" not in cross and cross["X-Trace"] == "kept"
    assert same_origin_2["X-API-Key"] == SECRET == same_origin_1["X-API-Key"]


class _Echo500(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"error for {self.path} with {self.headers}".encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def echo_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_cli_on_http_500_shows_no_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with echo_server() as port:
        url = f"http://user:pw-{SECRET}@127.0.0.1:{port}/x?token=q-secret"
        status = cli_main(["stream", "-H", f"X-API-Key: key-{SECRET}", url])
    err = capsys.readouterr().err
    assert status == 1 and "HTTP 500" in err, err
    assert SECRET not in err and "q-secret" not in err, err


def test_server_process_start_failure_does_not_show_the_api_key() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServerProcess(port=port, api_key=SECRET, startup_timeout=15)
        with pytest.raises(RuntimeError) as info:
            process.__enter__()
    assert "--api-key" in str(info.value) and SECRET not in str(info.value), str(info.value)


# -- 8. the embedded server cannot be knocked over --------------------------------------


async def test_server_checks_the_key_before_reading_a_body() -> None:
    app = create_app(pace=0, api_key=SECRET)
    async with run_server(app) as url, aiohttp.ClientSession() as session:
        body = b"x" * (1024 * 1024)
        async with session.post(f"{url}/eventstreams/chat", data=body) as response:
            assert response.status == 401
        assert list(app[REQUESTS_KEY]) == [], "an unauthenticated body was read and kept"
        headers = {"Authorization": SECRET}
        async with session.post(f"{url}/eventstreams/chat", data=body, headers=headers) as r:
            assert r.status == 413  # over the body limit, even with the key
        async with session.post(
            f"{url}/eventstreams/chat", json={"prompt": "hi"}, headers={"Authorization": "x"}
        ) as r:
            assert r.status == 401


@pytest.mark.parametrize("value", ["²", "9" * 5000, "abc"])
async def test_server_bad_last_event_id_is_a_400(value: str) -> None:
    async with (
        run_server(pace=0) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/load/resumable", headers={"Last-Event-ID": value}) as response,
    ):
        assert response.status == 400, await response.text()
        assert "Last-Event-ID" in (await response.json())["message"]


async def test_server_generates_large_streams_lazily() -> None:
    """2,000,000 events (~220 MB) requested; reading its start costs pages, not the stream."""
    async with run_server(pace=0) as url, aiohttp.ClientSession() as session:
        tracemalloc.start()
        try:
            async with session.get(f"{url}/load/rich?n=2000000") as response:
                first = await response.content.read(256 * 1024)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert first.startswith(b"id: 1\n") and peak < 40 * 1024 * 1024, f"peak {peak} bytes"


async def test_server_closes_silent_connections() -> None:
    async with run_server(pace=0, header_timeout=0.2) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /load/chat HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - started < 3
        writer.close()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/load/chat?n=1") as r:
            assert r.status == 200  # a normal client is unaffected


# -- 9. the blocking SDK ----------------------------------------------------------------


@pytest.fixture
def thread_server() -> Iterator[str]:
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal() as portal:
        cm = run_server(pace=0)
        url = portal.call(cm.__aenter__)
        try:
            yield url
        finally:
            portal.call(cm.__aexit__, None, None, None)


def test_blocking_sdk_kept_alive_by_its_stream(thread_server: str) -> None:
    got = [e for e in blocking.SDK(server_url=thread_server).eventstreams.json()]  # noqa: C416 - the issue's own line
    assert [e.data.content for e in got] == ["Hello", " ", "world", "!"], got
    gc.collect()


def test_blocking_ctrl_c_while_opening_releases_the_request() -> None:
    accepted = threading.Event()
    closed_after: list[float] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)  # the request; no answer, ever
            accepted.set()
            started = time.monotonic()
            conn.settimeout(10)
            try:
                while conn.recv(1024):
                    pass
            except OSError:
                pass
            closed_after.append(time.monotonic() - started)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    s = blocking.SDK(server_url=f"http://127.0.0.1:{port}", timeout_ms=60_000)
    main = threading.main_thread().ident
    assert main is not None
    # A real SIGINT (interrupt_main() would not wake a thread blocked on a lock).
    timer = threading.Thread(
        target=lambda: (accepted.wait(5), signal.pthread_kill(main, signal.SIGINT))
    )
    # Python's own handler, even if the run started with SIGINT ignored (trap '' INT).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.eventstreams.json()
        thread.join(5)
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
        s.close()
        listener.close()
    assert closed_after and closed_after[0] < 3, f"the request held on for {closed_after}"


# -- 10. messages say what happened -----------------------------------------------------


async def test_own_close_is_not_could_not_connect() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, CHUNKED + chunk(events(1, 1)), "hold")

    async with raw_server(script) as raw, SDK(server_url=raw.url.rsplit("/", 1)[0]) as s:
        stream = await s.eventstreams.text()
        assert (await stream.__anext__()).data == "e1"
        reader = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):  # the end, not an error
            await reader


async def test_timeout_while_reconnecting_names_the_real_last_event_id() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            await send_then(writer, CHUNKED + chunk(events(7, 7)), "reset")
        else:
            await asyncio.sleep(3600)  # accepts, never answers

    async with raw_server(script) as raw:
        source = connect(raw.url, idle_timeout=0.3, retry_ms=1, max_reconnects=1)
        got, error = await collect_until_error(source)
    assert [e.id for e in got] == ["7"] and isinstance(error, StreamTimeout)
    assert error.last_event_id == "7" and "(last event id '7')" in str(error)


async def test_mid_stream_drop_message() -> None:
    async def script(n: int, head: bytes, writer: asyncio.StreamWriter) -> None:
        await send_then(writer, CHUNKED + chunk(events(1, 1)), "reset")

    async with raw_server(script) as raw:
        _, error = await collect_until_error(connect(raw.url, max_reconnects=0))
    assert isinstance(error, StreamInterrupted) and "lost mid-stream" in str(error)
    assert "could not connect" not in str(error)


# -- the soak check, tiny -----------------------------------------------------------------


def test_soak_smoke() -> None:
    """``python -m benchmarks.soak`` with 60 faulty connections: 0 lost, 0 duplicated."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--cycles", "60", "--seed", "3"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    total = next(line for line in proc.stdout.splitlines() if line.startswith("total"))
    cycles, sent, delivered, duplicated, lost = map(int, total.split()[1:])
    assert cycles == 61 and sent == delivered and duplicated == lost == 0, proc.stdout
    assert "in order True" in proc.stdout and "tasks 0" in proc.stdout, proc.stdout


async def test_redirects_that_can_never_be_followed_safely_fail_at_once() -> None:
    """A redirect to another scheme, or one leaving the origin while the caller's own
    session sends a credential header by default (aiohttp cannot leave it out of one
    request), is final: InvalidURL, one request, nothing sent to the other origin."""
    seen: dict[str, int] = {"a": 0, "b": 0, "ftp": 0}
    urls: dict[str, str] = {}

    def app_for(name: str, location: Callable[[], str]) -> web.Application:
        async def away(request: web.Request) -> web.Response:
            seen[name] += 1
            raise web.HTTPTemporaryRedirect(location())

        app = web.Application()
        app.router.add_get("/away", away)
        return app

    async with (
        run_server(app_for("b", lambda: "/away")) as urls["b"],
        run_server(app_for("a", lambda: f"{urls['b']}/away?token={SECRET}")) as urls["a"],
        run_server(app_for("ftp", lambda: f"ftp://127.0.0.1/x?token={SECRET}")) as urls["ftp"],
    ):
        with pytest.raises(InvalidURL, match="http:// and https:// URLs only") as info:
            await collect(connect(f"{urls['ftp']}/away", max_reconnects=3))
        assert not shows(info.value, SECRET)
        async with create_session(headers={"X-API-Key": SECRET}) as session:
            with pytest.raises(InvalidURL, match=r"session sends X-API-Key") as info:
                await collect(connect(f"{urls['a']}/away", session=session, max_reconnects=3))
        assert not shows(info.value, SECRET), [repr(e) for e in chain(info.value)]
    # one request each, never retried; nothing reached the other origin
    assert seen == {"a": 1, "b": 0, "ftp": 1}
