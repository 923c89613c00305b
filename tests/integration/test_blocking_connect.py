"""``aiostreams.blocking.connect``: the reconnecting client for any SSE endpoint, from
plain synchronous tests.  The server runs in an event loop thread of its own."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

import msgspec
import pytest
from anyio.from_thread import start_blocking_portal

import aiostreams
from aiostreams import EventSchema, ServerSentEvent
from aiostreams.blocking import EventSource, connect
from aiostreams.errors import HTTPStatusError
from aiostreams.models import operations, shared
from aiostreams.server import REQUESTS_KEY, RequestRecord, create_app, run_server


@pytest.fixture
def server() -> Iterator[tuple[str, deque[RequestRecord]]]:
    app = create_app(pace=0)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(run_server(app)) as url,
    ):
        yield url, app[REQUESTS_KEY]


@pytest.fixture
def no_new_threads() -> Iterator[None]:
    """Every thread a test starts has ended when it returns (the source's loop thread)."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in left:  # a portal thread ends right after its loop stops
        thread.join(5)
    assert not [t for t in left if t.is_alive()], left


class Token(msgspec.Struct):
    data: shared.JSONEventData
    id: str = ""


def test_resumes_across_drops_like_the_async_client(
    server: tuple[str, deque[RequestRecord]], no_new_threads: None
) -> None:
    url, requests = server
    with connect(f"{url}/load/resumable?n=10&drop_after=3", reconnect_on_eof=False) as events:
        assert isinstance(events, EventSource)
        received = list(events)
        assert events.last_event_id == "10"
    assert all(isinstance(e, ServerSentEvent) for e in received)
    assert [e.id for e in received] == [str(i) for i in range(1, 11)]  # none lost, none twice
    # Each reconnect resumed after the last event received.  Usually that is 3, 6, 9,
    # but an abort can discard events still in flight: then it resumes earlier.
    sent = [r.headers.get("Last-Event-ID") for r in requests]
    assert sent[0] is None and len(sent) >= 4
    resumed = [int(value) for value in sent[1:] if value is not None]
    assert len(resumed) == len(sent) - 1 and resumed == sorted(set(resumed))
    assert (events.reconnects, events.connections) == (len(sent) - 1, len(sent))
    assert events.closed


def test_typed_events_with_a_schema(
    server: tuple[str, deque[RequestRecord]], no_new_threads: None
) -> None:
    url, _ = server
    schema = EventSchema(Token)
    tokens = [
        (t.id, t.data.content)
        for t in connect(f"{url}/load/resumable?n=4", decoder=schema, reconnect_on_eof=False)
    ]
    assert tokens == [(str(i), f"tok{i}") for i in range(1, 5)]


def test_an_sdk_operation_schema_and_post(
    server: tuple[str, deque[RequestRecord]], no_new_threads: None
) -> None:
    url, requests = server
    with connect(
        f"{url}/eventstreams/rich", method="POST", decoder=operations.RICH, reconnect_on_eof=False
    ) as events:
        kinds = [type(event).__name__ for event in events]
    assert kinds == ["RichCompletionEvent", "HeartbeatEvent", "RichCompletionEvent"]
    assert [r.method for r in requests] == ["POST"]


def test_leaving_early_closes_and_stops_the_thread(
    server: tuple[str, deque[RequestRecord]], no_new_threads: None
) -> None:
    url, _ = server
    with connect(f"{url}/load/resumable?n=1000&hold=30") as events:
        first = next(events)
        assert first.id == "1" and not events.closed
    assert events.closed
    assert list(events) == []  # a closed source yields nothing more


def test_http_errors_raise_in_the_calling_thread(
    server: tuple[str, deque[RequestRecord]], no_new_threads: None
) -> None:
    url, _ = server
    events = connect(f"{url}/load/nope", max_reconnects=0)
    with pytest.raises(HTTPStatusError) as caught:
        next(events)
    assert caught.value.status_code == 404
    assert events.closed  # the error ended the stream: its thread is gone already


def test_bad_arguments_fail_before_a_thread_starts(no_new_threads: None) -> None:
    threads = threading.active_count()
    with pytest.raises(ValueError, match="max_reconnects"):
        connect("http://127.0.0.1:1/", max_reconnects=-1)
    with pytest.raises(TypeError, match="makes its own session"):
        connect("http://127.0.0.1:1/", session=object())
    assert threading.active_count() == threads


def test_same_events_as_aiostreams_connect(server: tuple[str, deque[RequestRecord]]) -> None:
    url, _ = server
    target = f"{url}/load/resumable?n=7&drop_after=2"
    blocking = list(connect(target, reconnect_on_eof=False))

    async def collect() -> list[ServerSentEvent]:
        async with aiostreams.connect(target, reconnect_on_eof=False) as events:
            return [event async for event in events]

    with start_blocking_portal() as portal:
        expected = portal.call(collect)
    # (event, data, id): a reconnect's first event also carries the endpoint's retry:,
    # and where a drop cuts the stream is up to the network.
    assert [(e.event, e.data, e.id) for e in blocking] == [
        (e.event, e.data, e.id) for e in expected
    ]
    assert [e.id for e in blocking] == [str(i) for i in range(1, 8)]
