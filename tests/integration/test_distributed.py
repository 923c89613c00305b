"""``aiostreams.distributed`` on a real local Ray instance (one per module, 2 CPUs).

The servers run in the test's own event loop; the workers are Ray actor processes
that connect to them over loopback, as they would to any server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web

from aiostreams import EventSchema, MemoryCheckpoints, MergeFailure, ServerSentEvent
from aiostreams.server import REQUESTS_KEY, create_app, run_server

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'aiostreams[ray]')")
from aiostreams import distributed  # imported once Ray is known to be there

pytestmark = pytest.mark.filterwarnings(
    # Ray's own modules, on import and at shutdown; nothing of ours.
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the handlers below
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, web.Application]]:
    app = create_app(pace=0)
    async with run_server(app) as url:
        yield url, app


async def assert_all_dead(actors: list[Any]) -> None:
    """Every actor is gone for good: a call to it fails as a dead actor's does."""
    for actor in actors:
        with pytest.raises(ray.exceptions.RayActorError):
            await asyncio.wait_for(actor.ping.remote(), 30)


async def test_200_streams_over_2_workers_deliver_every_event_once_in_order(
    server: tuple[str, web.Application],
) -> None:
    url, _ = server
    urls = [f"{url}/load/resumable?n=25" for _ in range(200)]
    seen: dict[Any, list[str]] = {}
    async with distributed.merge(urls, workers=2) as merged:
        async for key, event in merged:
            assert isinstance(event, ServerSentEvent)
            assert event.data == f'{{"content": "tok{event.id}"}}'
            seen.setdefault(key, []).append(event.id)
        actors = list(merged.actors)
        assert merged.worker_losses == 0
    assert sorted(seen) == list(range(200))
    expected = [str(i) for i in range(1, 26)]
    assert all(ids == expected for ids in seen.values()), "a stream lost, repeated or reordered"
    assert len(actors) == 2
    await assert_all_dead(actors)  # leaving the block killed the workers


async def test_a_killed_worker_loses_nothing(server: tuple[str, web.Application]) -> None:
    url, app = server
    n = 40
    # Paced at 20 events/s: a stream lasts ~2 s, long enough to kill a worker mid-way.
    urls = {f"s{i}": f"{url}/load/resumable?n={n}&rate=20" for i in range(10)}
    seen: dict[Any, list[str]] = {key: [] for key in urls}
    async with distributed.merge(urls, workers=2, max_restarts=2) as merged:
        victim_pid: int = await merged.actors[0].ping.remote()
        killed = False
        async for key, event in merged:
            seen[key].append(event.id)
            # s0 is worker 0's (round robin): kill it once s0 is under way.
            if not killed and key == "s0" and len(seen[key]) == 5:
                os.kill(victim_pid, signal.SIGKILL)
                killed = True
        assert killed
        assert merged.worker_losses >= 1
        new_pid = await merged.actors[0].ping.remote()
    assert new_pid != victim_pid, "worker 0 was not replaced by a new process"
    expected = [str(i) for i in range(1, n + 1)]
    for key, ids in seen.items():
        assert ids == expected, f"{key}: {ids}"
    # The reopened streams resumed where the caller was, not from the start.
    resumed = [r for r in app[REQUESTS_KEY] if r.headers.get("Last-Event-ID")]
    assert resumed, "no stream was reopened with Last-Event-ID"
    assert all(r.headers["Last-Event-ID"] != str(n) for r in resumed)


def holding_app() -> tuple[web.Application, dict[str, Any]]:
    """Streams that send one comment then hold; counts the open ones."""
    state: dict[str, Any] = {"open": 0, "opened": asyncio.Event(), "closed": asyncio.Event()}

    async def hold(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        state["open"] += 1
        if state["open"] == state["want"]:
            state["opened"].set()
        try:
            await response.write(b"id: 1\ndata: first\n\n")
            await asyncio.Event().wait()  # until the client goes away
        finally:
            state["open"] -= 1
            if state["open"] == 0:
                state["closed"].set()
        return response  # pragma: no cover - never reached

    app = web.Application()
    app.router.add_get("/hold", hold)
    return app, state


@pytest.mark.parametrize("how", ["cancel", "break"])
async def test_leaving_leaves_no_actor_and_no_connection(how: str) -> None:
    app, state = holding_app()
    state["want"] = 6
    async with run_server(app) as url:
        holder: dict[str, Any] = {}

        async def consume() -> None:
            async with distributed.merge([f"{url}/hold"] * 6, workers=2) as merged:
                holder["actors"] = merged.actors
                async for _ in merged:
                    if how == "break":
                        await state["opened"].wait()
                        break

        task = asyncio.get_running_loop().create_task(consume())
        await asyncio.wait_for(state["opened"].wait(), 30)
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            await task
        await asyncio.wait_for(state["closed"].wait(), 30)  # every connection closed
        assert state["open"] == 0
        await assert_all_dead(holder["actors"])


class Token(msgspec.Struct):
    data: dict[str, str]
    id: str = ""


def token_schema() -> EventSchema[Any]:
    # Built in the worker: a Struct class defined here would travel by value,
    # and this module's string annotations would not resolve there.
    class Token(msgspec.Struct):
        data: dict[str, str]
        id: str = ""

    return EventSchema(Token)


async def count_tokens(key: Any, events: list[Any]) -> int:
    # Decoded in the worker, ids included.
    assert all(type(e).__name__ == "Token" and e.data["content"] == f"tok{e.id}" for e in events)
    return len(events)


async def test_process_in_place_typed_posts_with_checkpoints(
    server: tuple[str, web.Application],
) -> None:
    url, _ = server
    specs = {
        f"p{i}": distributed.StreamSpec(
            f"{url}/load/resumable", method="POST", params={"n": "30"}, schema=token_schema
        )
        for i in range(8)
    }
    store = MemoryCheckpoints()
    totals: dict[Any, int] = dict.fromkeys(specs, 0)
    async with distributed.merge(
        specs, workers=2, handler=count_tokens, checkpoints=store
    ) as merged:
        async for key, count in merged:
            totals[key] += count
    assert totals == dict.fromkeys(specs, 30)
    assert store.ids == dict.fromkeys(specs, "30")  # every stream's last id, acknowledged


async def test_a_failing_stream_is_reported_by_key(server: tuple[str, web.Application]) -> None:
    url, _ = server
    urls = {"good": f"{url}/load/resumable?n=3", "bad": f"{url}/load/nosuchshape"}
    got: dict[Any, list[Any]] = {"good": [], "bad": []}
    async with distributed.merge(urls, workers=2, on_error="yield") as merged:
        async for key, item in merged:
            got[key].append(item)
    assert [e.id for e in got["good"]] == ["1", "2", "3"]
    [failure] = got["bad"]
    assert isinstance(failure, MergeFailure)
    assert isinstance(failure.error, distributed.RemoteStreamError)
    assert failure.error.type_name == "HTTPStatusError"  # connect(): not the SDK's name


def test_bad_sources_are_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="URL string or a StreamSpec"):
        distributed.merge([42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="zero-argument callable"):
        distributed.StreamSpec("http://127.0.0.1:1/x", schema=EventSchema(Token))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        distributed.StreamSpec("ftp://example.com/x")
    spec = distributed.StreamSpec("http://user:secret@127.0.0.1:1/x?token=abc")
    assert "secret" not in repr(spec) and "abc" not in repr(spec)
