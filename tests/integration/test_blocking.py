"""``aiostreams.blocking.SDK`` from plain synchronous tests.

The embedded server runs in its own event loop thread (an anyio portal), since
the code under test blocks the calling thread.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from support import pool_state

import aiostreams
from aiostreams import RetryConfig
from aiostreams.blocking import SDK, EventStream
from aiostreams.errors import SDKError
from aiostreams.models import shared
from aiostreams.sdk import _sdk
from aiostreams.server import REQUESTS_KEY, RequestRecord, create_app, run_server

OPERATIONS = [
    "chat",
    "chat_skip_sentinel",
    "different_data_schemas",
    "json",
    "multiline",
    "rich",
    "text",
]
WITH_REQUEST = {"chat", "chat_skip_sentinel"}

# design.md §4, the synchronous example, verbatim apart from the import line.
DESIGN_EXAMPLE = """\
from aiostreams.blocking import SDK
from aiostreams.models import shared

s = SDK(
    security=shared.Security(api_key_auth="Token YOUR_API_KEY"),
    global_header_param=True,
    global_hidden_query_param="hello",
    global_path_param=100,
    global_query_param="some example global query param",
)
res = s.eventstreams.chat(request={"prompt": "<value>"})
if res is not None:
    for event in res:
        print(event, flush=True)
"""


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, deque[RequestRecord]]]:
    pace = getattr(request, "param", 0.0)
    app = create_app(pace=pace)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(run_server(app)) as url,
    ):
        yield url, app[REQUESTS_KEY]


def other_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t not in before and t.is_alive()}


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def call(s: SDK, name: str, **kw: Any) -> Any:
    if name in WITH_REQUEST:
        kw.setdefault("request", {"prompt": "<value>"})
    return getattr(s.eventstreams, name)(**kw)


async def async_events(url: str, name: str) -> list[Any]:
    async with aiostreams.SDK(server_url=url) as s:
        kw: dict[str, Any] = {"request": {"prompt": "<value>"}} if name in WITH_REQUEST else {}
        res = await getattr(s.eventstreams, name)(**kw)
        async with res:
            return [event async for event in res]


def test_design_example_runs_as_written(
    server: tuple[str, deque[RequestRecord]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, requests = server
    monkeypatch.setattr(_sdk, "DEFAULT_SERVER_URL", url)  # instead of localhost:35456
    before = set(threading.enumerate())
    namespace: dict[str, Any] = {}
    exec(DESIGN_EXAMPLE, namespace)  # noqa: S102  (the design's own example, as written)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        *(
            repr(shared.ChatCompletionEvent(data=shared.ChatCompletionEventData(content=t)))
            for t in ("Hello", " ", "world", "!")
        ),
        repr(shared.SentinelEvent()),
    ]
    (record,) = requests
    assert record.headers["Authorization"] == "Token YOUR_API_KEY"
    assert record.query["globalHiddenQueryParam"] == "hello"
    # Never closed, no with: dropping the SDK stops its loop thread.
    assert len(other_threads(before)) == 1
    namespace.clear()
    gc.collect()
    wait_until(lambda: not other_threads(before))


def test_design_example_at_interpreter_exit(server: tuple[str, deque[RequestRecord]]) -> None:
    """Run as a script: exits promptly and silently (warnings are errors) without close()."""
    url, _ = server
    preamble = f"import aiostreams.sdk._sdk as m; m.DEFAULT_SERVER_URL = {url!r}\n"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", preamble + DESIGN_EXAMPLE],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 5


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_matches_the_async_sdk(
    server: tuple[str, deque[RequestRecord]], name: str
) -> None:
    url, _ = server
    expected = asyncio.run(async_events(url, name))
    assert expected  # the async SDK's events are checked value by value in test_sdk.py
    with SDK(server_url=url) as s:
        with call(s, name) as res:
            assert isinstance(res, EventStream)
            assert res.status == 200
            events = list(res)
        assert events == expected
        assert pool_state(s.sdk.session) == (0, 1)


def test_json_events_and_request_sent(server: tuple[str, deque[RequestRecord]]) -> None:
    url, requests = server
    with SDK(
        server_url=url,
        security=shared.Security(api_key_auth="Token b"),
        global_header_param=False,
        global_query_param="q",
    ) as s:
        res = s.eventstreams.json(http_headers={"X-Extra": "1"})
        assert [e.data.content for e in res] == ["Hello", " ", "world", "!"]
        assert res.stats.events == 4 and res.stats.closed and res.stats.status == 200
    (record,) = requests
    assert record.headers["Authorization"] == "Token b"
    assert record.headers["globalHeaderParam"] == "false"
    assert record.headers["X-Extra"] == "1"
    assert record.query == {"globalQueryParam": "q"}


def test_chat_without_streaming_returns_the_list(server: tuple[str, deque[RequestRecord]]) -> None:
    url, _ = server
    with SDK(server_url=url) as s:
        res = s.eventstreams.chat(request={"prompt": "hi", "stream": False})
    assert isinstance(res, list)
    assert [e.data.content for e in res] == ["Hello", " ", "world", "!"]


@pytest.mark.parametrize("server", [0.05], indirect=True)
def test_break_releases_the_connection(server: tuple[str, deque[RequestRecord]]) -> None:
    url, _ = server
    with SDK(server_url=url) as s:
        res = s.eventstreams.text()
        for _ in res:
            break
        wait_until(lambda: pool_state(s.sdk.session) == (0, 0))
        assert res.closed


def test_break_in_the_middle_of_a_read_closes_the_stream(
    server: tuple[str, deque[RequestRecord]],
) -> None:
    url, _ = server
    with SDK(server_url=url) as s:
        res = s.eventstreams.json()  # no pace: the four events come in one read
        for _ in res:
            break
        wait_until(lambda: res.stream.closed)
        assert res.closed
        assert list(res) == [], "a stream closed by leaving the loop hands out no more events"


@pytest.mark.parametrize("server", [0.05], indirect=True)
def test_leaving_with_releases_the_connection(server: tuple[str, deque[RequestRecord]]) -> None:
    url, _ = server
    with SDK(server_url=url) as s:
        with s.eventstreams.text() as res:
            assert next(res).data == "Hello"  # the stream itself: no loop iterator to drop
            assert pool_state(s.sdk.session) == (1, 0)
        assert pool_state(s.sdk.session) == (0, 0)
        assert res.closed


def test_errors_cross_the_thread(server: tuple[str, deque[RequestRecord]]) -> None:
    url, _ = server
    with (
        SDK(server_url=url, retry_config=RetryConfig("none")) as s,
        pytest.raises(SDKError) as info,
    ):
        s.eventstreams.text(http_headers={"x-teapot": "json"})
    assert info.value.status_code == 418
    assert info.value.body == '{"message":"I\'m a teapot"}'


def test_close_stops_the_thread_and_later_calls_say_so(
    server: tuple[str, deque[RequestRecord]],
) -> None:
    url, _ = server
    before = set(threading.enumerate())
    s = SDK(server_url=url)
    assert len(other_threads(before)) == 1
    assert len(list(s.eventstreams.multiline())) == 1
    s.close()
    s.close()  # idempotent
    assert s.closed
    assert not other_threads(before)
    with pytest.raises(RuntimeError, match="SDK is closed"):
        s.eventstreams.json()


def test_open_stream_at_close_does_not_hang_or_warn(
    server: tuple[str, deque[RequestRecord]],
) -> None:
    url, _ = server
    s = SDK(server_url=url)
    res = s.eventstreams.json()
    s.close()  # the stream was never read
    with pytest.raises(RuntimeError, match="SDK is closed"):
        list(res)
    del res
    gc.collect()
