"""``aiostreams.merge`` against the embedded server on loopback.

The server is the real application (load endpoints), served here with a
middleware counting the requests being handled, so "every connection was
released" is checked from the server's side too, not only from the client's.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from support import pool_state

from aiostreams import (
    SDK,
    EventStream,
    Merge,
    MergeFailure,
    ServerSentEvent,
    SSEDecoder,
    create_session,
    merge,
)
from aiostreams._request import HTTPRequest, open_stream
from aiostreams.errors import SDKError
from aiostreams.server import create_app, run_server

OpenStream = Callable[..., Awaitable[EventStream[ServerSentEvent]]]


class Server:
    """The base URL plus the number of requests the server is handling right now."""

    def __init__(self, url: str, counter: dict[str, int]) -> None:
        self.url = url
        self._counter = counter

    @property
    def handling(self) -> int:
        return self._counter["open"]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    counter = {"open": 0}

    @web.middleware
    async def count_open(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        counter["open"] += 1
        try:
            return await handler(request)
        finally:  # also when the client leaves: the handler is cancelled then
            counter["open"] -= 1

    app = create_app(pace=0)
    app.middlewares.append(count_open)
    async with run_server(app) as url:
        yield Server(url, counter)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    session = create_session()
    try:
        yield session
    finally:
        await session.close()


class Opener:
    """Source factories for load endpoints; remembers every stream it opened."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.streams: list[EventStream[ServerSentEvent]] = []

    def __call__(
        self, shape: str, **params: float
    ) -> Callable[[], Awaitable[EventStream[ServerSentEvent]]]:
        request = HTTPRequest(
            "GET", f"{self.url}/load/{shape}", params={k: str(v) for k, v in params.items()}
        )

        async def open_one() -> EventStream[ServerSentEvent]:
            stream = await open_stream(self.session, request, SSEDecoder())
            self.streams.append(stream)
            return stream

        return open_one


@pytest.fixture
def opener(session: aiohttp.ClientSession, server: Server) -> Opener:
    return Opener(session, server.url)


def tokens(n: int, first: int = 1) -> list[str]:
    return [f'{{"content": "tok{i}"}}' for i in range(first, n + 1)]


async def eventually(check: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    """Wait (bounded) for something the server side does after the client left."""
    with anyio.move_on_after(limit):
        while not check():  # noqa: ASYNC110 - server-side state has no event to wait on
            await asyncio.sleep(0.01)
    assert check(), f"{what} within {limit} s"


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


def _is_server_connection(task: asyncio.Task[Any]) -> bool:
    return getattr(task.get_coro(), "__qualname__", "") == "RequestHandler.start"


async def all_released(server: Server, session: aiohttp.ClientSession, opener: Opener) -> None:
    """No stream open client side, no request handled server side, no task left.

    Streams that ended cleanly put their connection back in the client's pool
    (keep-alive), and the server keeps one task per such connection: those, and
    only as many as the pool holds, are allowed.
    """
    for stream in opener.streams:
        assert stream.closed, stream
        assert stream.response.connection is None, f"{stream} still holds its connection"
    in_use, idle = pool_state(session)
    assert in_use == 0
    await eventually(lambda: server.handling == 0, "the server sees every request end")

    def only_pooled_connections_left() -> bool:
        left = other_tasks()
        return all(map(_is_server_connection, left)) and len(left) == idle

    await eventually(
        only_pooled_connections_left,
        f"no task left but one per pooled connection ({idle}); left: {other_tasks()}",
    )


# -- every event exactly once, in order ------------------------------------------------


async def test_thousand_streams_deliver_every_event_once_in_order(opener: Opener) -> None:
    streams, n = 1000, 5
    received: defaultdict[Hashable, list[str]] = defaultdict(list)
    async with merge(*(opener("chat", n=n) for _ in range(streams))) as merged:
        async for key, event in merged:
            received[key].append(event.data)
        assert merged.running == 0
    assert sorted(received) == list(range(streams))  # type: ignore[type-var]
    expected = tokens(n)
    wrong = {key: got for key, got in received.items() if got != expected}
    assert not wrong, f"{len(wrong)} streams lost, repeated or reordered events"
    assert len(opener.streams) == streams


async def test_batches_keep_order_and_group_events(opener: Opener) -> None:
    streams, n = 20, 2000
    received: defaultdict[Hashable, list[str]] = defaultdict(list)
    sizes: list[int] = []
    async with merge(*(opener("chat", n=n, chunk=4096) for _ in range(streams))) as merged:
        async for key, batch in merged.batches():
            assert batch, "batches are never empty"
            sizes.append(len(batch))
            received[key].extend(event.data for event in batch)
    assert all(got == tokens(n) for got in received.values()) and len(received) == streams
    assert max(sizes) > 1, "each read's events should come as one batch"
    assert len(sizes) < streams * n  # fewer awaits than events


async def test_event_iteration_and_batches_share_the_position(opener: Opener) -> None:
    async with merge(opener("chat", n=50, chunk=0, rate=0)) as merged:
        seen = []
        async for _key, event in merged:
            seen.append(event.data)
            break
        async for _key, batch in merged.batches():
            seen.extend(event.data for event in batch)
    assert seen == tokens(50)


async def test_named_sources_and_async_generators(opener: Opener) -> None:
    async def numbers(count: int) -> AsyncIterator[int]:
        for i in range(count):
            yield i
            await asyncio.sleep(0)

    received: defaultdict[Hashable, list[Any]] = defaultdict(list)
    async with merge(numbers(3), numbers(2), web=opener("chat", n=4), gen=numbers(5)) as merged:
        async for key, item in merged:
            received[key].append(item)
    assert received[0] == [0, 1, 2]
    assert received[1] == [0, 1]
    assert received["gen"] == [0, 1, 2, 3, 4]
    assert [e.data for e in received["web"]] == tokens(4)


async def test_sdk_calls_as_sources(server: Server) -> None:
    async with SDK(server_url=server.url) as s:
        prompts = [f"p{i}" for i in range(10)]
        # chat() is typed "stream or list" (the list when stream=False): hence Any.
        calls: dict[str, Any] = {
            p: (lambda p=p: s.eventstreams.chat(request={"prompt": p})) for p in prompts
        }
        async with merge(**calls) as merged:
            received: defaultdict[Hashable, list[Any]] = defaultdict(list)
            async for key, event in merged:
                received[key].append(event)
    assert sorted(received) == prompts  # type: ignore[type-var]
    counts = {len(events) for events in received.values()}
    assert len(counts) == 1 and counts.pop() > 1, "every chat stream gives the same events"


# -- leaving early releases everything ---------------------------------------------------


async def _leave(how: str, merged: Any, all_open: Callable[[], bool]) -> None:
    if how == "break":
        async for _ in merged:
            if all_open():
                break
    elif how == "exception":
        with pytest.raises(KeyError):
            async for _ in merged:
                if all_open():
                    raise KeyError("consumer failed")
    elif how == "timeout":
        # an outer anyio deadline while the consumer waits for the idle streams
        await eventually(all_open, "every stream is open")
        with anyio.move_on_after(0.05):
            async for _ in merged:
                pass
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["break", "exception", "timeout"])
async def test_leaving_early_closes_every_stream(
    how: str, server: Server, session: aiohttp.ClientSession, opener: Opener
) -> None:
    idle, busy = 40, 10

    def all_open() -> bool:
        return len(opener.streams) == idle + busy

    sources = [opener("idle", hold=30) for _ in range(idle)]
    sources += [opener("chat", n=100_000, chunk=512, rate=2000) for _ in range(busy)]
    async with merge(*sources) as merged:
        await _leave(how, merged, all_open)
    assert all_open()
    await all_released(server, session, opener)


async def test_cancelling_the_consumer_task_closes_every_stream(
    server: Server, session: aiohttp.ClientSession, opener: Opener
) -> None:
    n_streams = 50
    started = asyncio.Event()

    async def consume() -> None:
        async with merge(*(opener("idle", hold=30) for _ in range(n_streams))) as merged:
            started.set()
            async for _ in merged:
                raise AssertionError("idle streams send no events")

    task = asyncio.create_task(consume())
    await started.wait()
    await eventually(lambda: server.handling == n_streams, "every stream is open")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Released before the consumer's task finished, not later:
    assert all(stream.closed for stream in opener.streams)
    await all_released(server, session, opener)


async def test_leaving_before_sources_start_closes_them() -> None:
    closed = []

    async def gen() -> AsyncIterator[int]:
        try:
            yield 1
        finally:
            closed.append(True)

    async def never_awaited() -> AsyncIterator[int]:
        raise AssertionError("not reached")
        yield 0  # pragma: no cover

    started = gen()
    await started.__anext__()  # a source already half-read by the caller
    async with merge(started, gen(), lambda: never_awaited()):
        pass
    assert closed == [True]  # the started one; an unstarted generator has no finally to run
    assert not other_tasks()


async def test_leaving_closes_generators_suspended_at_a_yield() -> None:
    closed: list[int] = []

    async def endless(tag: int) -> AsyncIterator[int]:
        try:
            while True:
                yield tag  # held here while the full buffer makes the merge wait
        finally:
            closed.append(tag)

    taken = 0
    async with merge(*(endless(i) for i in range(5)), maxsize=1) as merged:
        async for _ in merged:
            taken += 1
            if taken == 3:
                break
    assert sorted(closed) == list(range(5))
    assert not other_tasks()


async def test_exception_in_the_loop_body_is_not_wrapped(opener: Opener) -> None:
    with pytest.raises(ValueError, match="mine"):
        async with merge(opener("chat", n=5)) as merged:
            async for _ in merged:
                raise ValueError("mine")


# -- failure policy ---------------------------------------------------------------------


async def failing_after(count: int, gate: asyncio.Event | None = None) -> AsyncIterator[str]:
    """Yield ``count`` items, then fail (once ``gate`` is set, if one is given)."""
    for i in range(count):
        yield f"ok{i}"
        await asyncio.sleep(0.001)
    if gate is not None:
        await gate.wait()
    raise ConnectionResetError("the source broke")


async def test_raise_policy_closes_the_others_then_raises(
    server: Server, session: aiohttp.ClientSession, opener: Opener
) -> None:
    idle = 30
    from_failing: list[str] = []
    sources: list[Any] = [opener("idle", hold=30) for _ in range(idle)]
    # The failure waits until every other stream is open (on a loaded machine 30
    # connections take longer than three quick items): it must close open ones.
    all_open = asyncio.Event()
    async with merge(*sources, bad=failing_after(3, all_open)) as merged:
        await eventually(lambda: server.handling == idle, "every stream is open")
        all_open.set()
        with pytest.raises(ConnectionResetError, match="the source broke") as info:
            async for key, item in merged:
                assert key == "bad"
                from_failing.append(item)
        # Raised only once every other stream was closed:
        assert len(opener.streams) == idle and all(s.closed for s in opener.streams)
        assert "merge source 'bad'" in " ".join(
            getattr(info.value, "__notes__", ["merge source 'bad'"])
        )
        with pytest.raises(RuntimeError, match="over"):
            merged.add(failing_after(1))
    assert from_failing == ["ok0", "ok1", "ok2"]  # what it sent before failing arrives first
    await all_released(server, session, opener)


async def test_raise_policy_with_an_http_error_while_opening(opener: Opener) -> None:
    with pytest.raises(SDKError) as info:
        async with merge(opener("chat", n=3, rate=50), opener("nope")) as merged:
            async for _ in merged:
                pass
    assert info.value.status_code == 404
    assert all(s.closed for s in opener.streams)


async def test_yield_policy_keeps_the_others_running(
    server: Server, session: aiohttp.ClientSession, opener: Opener
) -> None:
    received: defaultdict[Hashable, list[Any]] = defaultdict(list)
    sources: dict[str, Any] = {  # mixed event types: Any
        f"s{i}": opener("chat", n=200, chunk=256, rate=4000) for i in range(10)
    }
    async with merge(
        **sources, broken=failing_after(2), missing=opener("nope"), on_error="yield"
    ) as merged:
        async for key, item in merged:
            received[key].append(item)
    for key in sources:
        assert [e.data for e in received[key]] == tokens(200), key
    *before, failure = received["broken"]
    assert before == ["ok0", "ok1"]
    assert isinstance(failure, MergeFailure) and failure.key == "broken"
    assert isinstance(failure.error, ConnectionResetError)
    [missing] = received["missing"]
    assert isinstance(missing, MergeFailure) and isinstance(missing.error, SDKError)
    assert "merge source 'missing' failed: SDKError" in str(missing)
    await all_released(server, session, opener)


async def test_yield_policy_batches_carry_the_failure(opener: Opener) -> None:
    async with merge(x=failing_after(1), on_error="yield") as merged:
        batches = [batch async for _, batch in merged.batches()]
    assert batches[0] == ["ok0"]
    assert len(batches) == 2 and isinstance(batches[1][0], MergeFailure)


class Fatal(BaseException):
    pass


async def test_a_base_exception_from_a_source_stops_every_source(opener: Opener) -> None:
    async def fatal() -> AsyncIterator[int]:
        yield 1
        raise Fatal("not an Exception: never a MergeFailure")

    with pytest.raises(Fatal):
        async with merge(opener("idle", hold=30), fatal(), on_error="yield") as merged:
            async for _ in merged:
                pass
    assert all(stream.closed for stream in opener.streams)


async def test_a_source_task_cancelled_from_outside_stops_the_merge(opener: Opener) -> None:
    async with merge(opener("idle", hold=30), opener("idle", hold=30)) as merged:
        await eventually(lambda: len(opener.streams) == 2, "both streams open")
        [victim, *_] = [
            task
            for task in other_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "Merge._run_source"
        ]
        victim.cancel()
        with pytest.raises(RuntimeError, match="cancelled from outside the merge"):
            async for _ in merged:
                pass
    assert all(stream.closed for stream in opener.streams)


# -- backpressure ------------------------------------------------------------------------


async def test_slow_consumer_keeps_the_buffer_bounded(opener: Opener) -> None:
    maxsize, streams, n = 4, 20, 400
    peak = 0
    producers_held_back = 0
    received: defaultdict[Hashable, list[str]] = defaultdict(list)
    async with merge(
        *(opener("chat", n=n, chunk=0) for _ in range(streams)), maxsize=maxsize
    ) as merged:
        assert merged.statistics().max_buffer_size == maxsize
        async for key, event in merged:
            stats = merged.statistics()
            peak = max(peak, stats.current_buffer_used)
            producers_held_back = max(producers_held_back, stats.tasks_waiting_send)
            received[key].append(event.data)
            if len(received[key]) % 50 == 0:
                await asyncio.sleep(0.002)  # a slow consumer
    assert all(got == tokens(n) for got in received.values()) and len(received) == streams
    assert 0 < peak <= maxsize
    assert producers_held_back > 0, "a full buffer must make the producers wait"


# -- adding sources ----------------------------------------------------------------------


async def test_add_while_iterating(opener: Opener) -> None:
    async def one(value: str) -> AsyncIterator[str]:
        yield value

    order: list[tuple[Hashable, Any]] = []
    async with merge(one("first")) as merged:
        async for key, item in merged:
            order.append((key, item if isinstance(item, str) else item.data))
            if item == "first":  # the last item of the only source: add from here
                assert merged.add(one("second")) == 1
                assert merged.add(opener("chat", n=2), key="web") == "web"
            if item == "second":
                with pytest.raises(ValueError, match="already used"):
                    merged.add(one("dup"), key="web")
    assert order[0] == (0, "first")
    assert sorted(order, key=str) == sorted(
        [(0, "first"), (1, "second"), ("web", tokens(2)[0]), ("web", tokens(2)[1])], key=str
    )
    with pytest.raises(RuntimeError, match="over"):
        merged.add(one("late"))


async def test_misuse_is_explained() -> None:
    merged: Merge[Any] = merge()
    with pytest.raises(RuntimeError, match="async with"):
        await merged.__anext__()
    with pytest.raises(TypeError, match="async iterable"):
        merged.add(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maxsize"):
        merge(maxsize=0)
    async with merged:
        assert [item async for item in merged] == []


async def test_leaving_with_a_full_buffer_when_a_source_fails_to_close_does_not_hang() -> None:
    closing: list[int] = []

    async def breaks_on_close(tag: int) -> AsyncIterator[int]:
        try:
            while True:
                yield tag
        finally:
            closing.append(tag)
            raise ValueError("cleanup failed")  # becomes a failure while the merge closes

    async def leave() -> None:
        async with merge(breaks_on_close(0), breaks_on_close(1), maxsize=1, on_error="yield") as m:
            async for _ in m:
                await eventually(lambda: m.statistics().tasks_waiting_send > 0, "a full buffer")
                break

    # __aexit__ shields its wait for the source tasks: watch it from another task.
    task = asyncio.create_task(leave())
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "leaving the merge hung: a failure was delivered into the full buffer"
    await task
    assert sorted(closing) == [0, 1]
    assert not other_tasks()


async def test_a_wait_cancelled_just_as_an_event_arrives_does_not_lose_it() -> None:
    consumer = asyncio.current_task()
    assert consumer is not None

    async def source() -> AsyncIterator[int]:
        await anyio.wait_all_tasks_blocked()  # the consumer waits for an event
        yield 1
        consumer.cancel()  # as asyncio.timeout() does, just as event 1 was handed over
        await anyio.wait_all_tasks_blocked()  # it has handled that and waits again
        yield 2

    got: list[Any] = []
    async with merge(source()) as merged:
        try:
            got.append(await merged.__anext__())
        except asyncio.CancelledError:
            if sys.version_info >= (3, 11):
                consumer.uncancel()
            got.append("timed out")
        got.extend([item async for item in merged])  # the consumer goes on
    assert got == ["timed out", (0, 1), (0, 2)]
