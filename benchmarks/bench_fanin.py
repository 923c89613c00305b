"""Fan-in (issue 6): many concurrent streams on one event loop.

The embedded server runs in a separate process (``ServerProcess``); the client
opens N streams of ``/load/chat`` at once and reads every event.

* ``aiostreams``: ``merge()`` of N ``open_stream`` factories, ``async for key,
  event in merged`` (one item per event);
* ``aiostreams (batches)``: the same merge read with ``merged.batches()``;
* ``httpx-sse (gather)``: ``asyncio.gather`` of N tasks, each ``aconnect_sse`` +
  ``aiter_sse()`` on one ``httpx.AsyncClient`` whose pool limits are raised to N.

Each repeat is a fresh event loop and client session (connections included in
the time; at most ``OPENING`` connection attempts in flight, for every client).
Peak RSS is sampled every 5 ms by a thread during the repeat.

Idle memory: N streams of ``/load/idle`` held open, in a fresh child process per
measurement (so earlier cases' memory does not blur it): RSS once all are open
minus RSS before opening, over N.  The baseline is a bare aiohttp response held
open (``session.get`` on a ``TCPConnector(limit=0)``); httpx-sse is measured the
same way.  Time columns mean nothing for those rows (``idle/*`` cases).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from ._corpora import chat_tokens
from ._corpus_server import CorpusServer
from ._harness import AIOSTREAMS, Case, Measurement, Outcome, Suite, plot_curves

STREAM_COUNTS = (100, 1_000, 10_000)
#: Events per stream: ~200k events per point, fewer per stream as streams grow.
EVENTS = {100: 2_000, 1_000: 200, 10_000: 20}
QUICK_EVENTS = {100: 100, 1_000: 10}
#: Idle points per library: httpx's pool takes minutes to open 10,000 streams
#: (it scans every connection for each request), so it is measured at 1,000.
IDLE_POINTS = {
    "aiostreams": (10_000,),
    "aiostreams-connect": (10_000,),
    "aiohttp": (10_000,),
    "httpx": (1_000,),
}
QUICK_IDLE_POINTS = dict.fromkeys(IDLE_POINTS, (1_000,))
IDLE_HOLD = 120  # seconds the server holds an idle stream (the child leaves sooner)

#: Connection attempts in flight at once, for every client alike.  Opening 10,000
#: connections in one burst can overflow the server's accept queue (its listen
#: backlog, capped by ``net.core.somaxconn``): dropped SYNs are retried after 1 s,
#: 3 s, 7 s... and the run would measure TCP retransmission timers, not the client.
OPENING = 128

BATCHES = "aiostreams (batches)"
HTTPX = "httpx-sse + json.loads (gather)"
CEILING = "aiohttp raw read (ceiling)"
IDLE_LIBRARIES = {
    "aiostreams": "aiostreams (merge)",  # not AIOSTREAMS: no time ratio for idle rows
    "aiostreams-connect": "aiostreams (resumable connect() in merge)",
    "aiohttp": "aiohttp (bare response)",
    "httpx": "httpx-sse",
}

#: Filled while the suite runs (the table has no column for memory): one line per
#: case, shown under the suite's table.
NOTES: list[str] = []
_NOTE_BY_CASE: dict[tuple[str, int, str], str] = {}


def _note(library: str, streams: int, kind: str, text: str) -> None:
    _NOTE_BY_CASE[library, streams, kind] = text
    NOTES[:] = _NOTE_BY_CASE.values()


# -- set-up ---------------------------------------------------------------------------


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft limit of open files to the hard limit; return the new soft limit.

    Each stream costs one descriptor here (and one in the server process, which
    inherits the raised limit).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raise RuntimeError(
            f"{wanted} open files needed but the hard limit is {hard}: raise it "
            f"(ulimit -Hn, /etc/security/limits.conf) to run this point"
        )
    return int(soft)


def _rss() -> int:
    import psutil  # type: ignore[import-untyped]

    return int(psutil.Process().memory_info().rss)


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Sample RSS every 5 ms in a thread; the dict gets MiB figures at exit."""
    stop = threading.Event()
    start = _rss()
    peak = [start]

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out: dict[str, float] = {}
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _rss())
        out["peak_rss_mib"] = peak[0] / 2**20
        out["rss_growth_mib"] = (peak[0] - start) / 2**20


# -- the clients -------------------------------------------------------------------------
#
# Every client does the same per-event work: each event's JSON data becomes a value
# (aiostreams: the SDK's ChatCompletionEvent Struct; httpx-sse: json.loads), and
# every client opens at most OPENING connections at once.


def _sdk_call(sdk: Any, events: int) -> Any:
    return sdk.eventstreams.chat_skip_sentinel(
        request={"prompt": "bench"}, http_headers={"X-Events": str(events)}
    )


async def aiostreams_fanin(url: str, streams: int, events: int, *, batches: bool) -> Outcome:
    """The typed SDK path: ``merge`` over N ``sdk.eventstreams.chat_skip_sentinel``."""
    from aiostreams import SDK, merge

    opening = asyncio.Semaphore(OPENING)
    count = 0
    last: Any = None
    async with SDK(server_url=url) as sdk:

        async def open_one() -> Any:
            async with opening:
                return await _sdk_call(sdk, events)

        async with merge(*(open_one for _ in range(streams))) as merged:
            if batches:
                async for _, batch in merged.batches():
                    count += len(batch)
                    last = batch[-1]
            else:
                async for _, event in merged:
                    count += 1
                    last = event
    return Outcome(count, None if last is None else last.data.content)


async def httpx_fanin(url: str, streams: int, events: int) -> Outcome:
    """httpx at its best: one ``AsyncClient``, no connection cap, httpx's default
    keep-alive pool (20), no timeout; ``json.loads`` per event."""
    import httpx
    from httpx_sse import aconnect_sse

    loads = json.loads
    opening = asyncio.Semaphore(OPENING)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    target = f"{url}/eventstreams/chat-chunked"
    headers = {"X-Events": str(events)}
    async with httpx.AsyncClient(limits=limits, timeout=None) as client:

        async def one() -> tuple[int, Any]:
            n, last = 0, None
            async with AsyncExitStack() as stack:
                async with opening:
                    source = await stack.enter_async_context(
                        aconnect_sse(
                            client, "POST", target, json={"prompt": "bench"}, headers=headers
                        )
                    )
                async for sse in source.aiter_sse():
                    if sse.data == "[DONE]":
                        break
                    last = loads(sse.data)
                    n += 1
            return n, last

        results = await asyncio.gather(*(one() for _ in range(streams)))
    last = results[-1][1] if results else None
    return Outcome(sum(n for n, _ in results), None if last is None else last["content"])


async def raw_fanin(url: str, streams: int, events: int) -> Outcome:
    """The ceiling: aiohttp reading bytes and counting blank lines, no parsing, on a
    session tuned as aiostreams' own (``create_session``: no connection cap, no total
    timeout, 256 KiB read window), so it is aiohttp at its best."""
    from aiostreams import create_session

    opening = asyncio.Semaphore(OPENING)
    target = f"{url}/eventstreams/chat-chunked"
    headers = {"X-Events": str(events)}
    blank = 0
    async with create_session() as session:

        async def one() -> None:
            nonlocal blank
            async with opening:
                response = await session.post(target, json={"prompt": "bench"}, headers=headers)
            async with response:
                async for chunk in response.content.iter_any():
                    blank += chunk.count(b"\n\n")

        await asyncio.gather(*(one() for _ in range(streams)))
    if blank < streams * (events + 1) * 0.99:  # a blank line split between reads is missed
        raise AssertionError(f"read {blank} blank lines, expected {streams * (events + 1)}")
    return Outcome(streams * events, f"tok{events - 1}")  # counted, not parsed


# -- throughput cases -------------------------------------------------------------------


class _Server:
    """One corpus server process per case; stopped by the harness through ``close()``."""

    def __init__(self, streams: int) -> None:
        self.fd_limit = raise_open_file_limit(streams + 256)
        self.process = CorpusServer()
        self.url = self.process.__enter__().url

    def close(self) -> None:
        self.process.__exit__(None, None, None)


class _ThroughputRunner:
    def __init__(self, library: str, streams: int, events: int) -> None:
        self.library = library
        self.streams = streams
        self.events = events
        self.server = _Server(streams)
        self.rates: list[float] = []
        self.peak_mib = 0.0

    def __call__(self) -> Outcome:
        url = self.server.url
        if self.library == HTTPX:
            work = httpx_fanin(url, self.streams, self.events)
        elif self.library == CEILING:
            work = raw_fanin(url, self.streams, self.events)
        else:
            batches = self.library == BATCHES
            work = aiostreams_fanin(url, self.streams, self.events, batches=batches)
        started = time.perf_counter()
        with peak_rss() as memory:
            out = asyncio.run(work)
        seconds = time.perf_counter() - started
        rate = out.events / seconds
        out.extra.update(memory)
        out.extra["events_per_s_per_stream"] = rate / self.streams
        self.rates.append(rate)
        self.peak_mib = max(self.peak_mib, memory["peak_rss_mib"])
        median = statistics.median(self.rates)
        _note(
            self.library,
            self.streams,
            "throughput",
            f"{self.library}, {self.streams} streams x {self.events} events: "
            f"{median:,.0f} events/s aggregate, {median / self.streams:,.1f} events/s per "
            f"stream (median of {len(self.rates)}), peak RSS {self.peak_mib:.0f} MiB",
        )
        return out

    def close(self) -> None:
        self.server.close()


def _throughput_case(library: str, streams: int, events: int) -> Case:
    expected = f"tok{events - 1}"
    return Case(
        case=f"{streams} streams",
        library=library,
        make=lambda: _ThroughputRunner(library, streams, events),
        events=streams * events,
        nbytes=streams * len(b"".join(chat_tokens(events, sentinel=True).chunks)),
        last=expected,
        note=f"{events} events per stream",
        params={"kind": "throughput", "streams": float(streams)},
        # httpx at 10,000 streams takes minutes (see IDLE_POINTS): cut it off and
        # report the lower bound rather than spend the suite's time budget on it.
        time_limit=20.0 if library == HTTPX and streams >= 10_000 else 60.0,
    )


# -- idle memory: one child process per measurement ---------------------------------------


class _LoadServer:
    """The embedded server (its ``/load/idle`` endpoint) for the idle-memory cases."""

    def __init__(self, streams: int) -> None:
        from aiostreams.server import ServerProcess

        self.fd_limit = raise_open_file_limit(streams + 256)
        self.process = ServerProcess(pace=0)
        self.url = self.process.__enter__().url

    def close(self) -> None:
        self.process.__exit__(None, None, None)


class _IdleRunner:
    def __init__(self, library: str, streams: int) -> None:
        self.library = library
        self.streams = streams
        self.server = _LoadServer(streams)

    def __call__(self) -> Outcome:
        args = [sys.executable, "-m", "benchmarks.bench_fanin", "idle"]
        args += [self.library, str(self.streams), self.server.url]
        done = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"idle child failed: {done.stderr.strip()[-300:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        _note(
            self.library,
            self.streams,
            "idle",
            f"idle, {IDLE_LIBRARIES[self.library]}, {self.streams} streams open: "
            f"{figures['per_stream_kib']:.1f} KiB per stream "
            f"(RSS {figures['rss_before_mib']:.0f} -> {figures['rss_after_mib']:.0f} MiB, "
            f"opened in {figures['open_s']:.1f} s)",
        )
        return Outcome(0, extra=figures)

    def close(self) -> None:
        self.server.close()


def _idle_case(library: str, streams: int) -> Case:
    return Case(
        case=f"idle/{streams} streams",
        library=IDLE_LIBRARIES[library],
        make=lambda: _IdleRunner(library, streams),
        events=0,
        nbytes=0,
        note="memory only (see notes); time = opening them in a child process",
        params={"kind": "idle", "streams": float(streams)},
        time_limit=100.0,
    )


async def _hold_idle(library: str, streams: int, url: str) -> dict[str, float]:
    """Open ``streams`` idle streams, measure, close.  Runs in the child process."""
    target = f"{url}/load/idle?hold={IDLE_HOLD}"
    opening = asyncio.Semaphore(OPENING)
    opened = 0
    all_open = asyncio.Event()

    def one_more() -> None:
        nonlocal opened
        opened += 1
        if opened == streams:
            all_open.set()

    async def measure(opening: Any) -> dict[str, float]:
        gc.collect()
        before = _rss()
        started = time.perf_counter()
        task = asyncio.ensure_future(opening)
        waiter = asyncio.ensure_future(all_open.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # opening ended before every stream was open: an error
            waiter.cancel()
            task.result()
            raise RuntimeError(f"only {opened} of {streams} streams opened")
        open_s = time.perf_counter() - started
        await asyncio.sleep(0.5)  # every reader parked on its socket
        gc.collect()
        after = _rss()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return {
            "per_stream_kib": (after - before) / streams / 1024,
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "open_s": open_s,
        }

    if library == "aiostreams":
        from aiostreams import SSEDecoder, create_session, merge
        from aiostreams._request import HTTPRequest, open_stream

        session = create_session()
        request = HTTPRequest("GET", target)

        async def open_one() -> Any:
            async with opening:
                stream = await open_stream(session, request, SSEDecoder())
            one_more()
            return stream

        async def hold() -> None:
            async with merge(*(open_one for _ in range(streams))) as merged:
                async for _ in merged:
                    raise RuntimeError("an idle stream sent an event")

        try:
            return await measure(hold())
        finally:
            await session.close()
    if library == "aiostreams-connect":
        from aiostreams import connect, create_session, merge

        session = create_session()

        async def open_resumable() -> Any:
            async with opening:
                source = connect(target, session=session)
                await source.__aenter__()
            one_more()
            return source

        async def hold_resumable() -> None:
            async with merge(*(open_resumable for _ in range(streams))) as merged:
                async for _ in merged:
                    raise RuntimeError("an idle stream sent an event")

        try:
            return await measure(hold_resumable())
        finally:
            await session.close()
    if library == "aiohttp":
        import aiohttp

        bare = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        responses: list[aiohttp.ClientResponse] = []

        async def bare_one() -> None:
            async with opening:
                responses.append(await bare.get(target))
            one_more()

        async def hold_bare() -> None:
            await asyncio.gather(*(bare_one() for _ in range(streams)))
            await asyncio.Event().wait()

        try:
            return await measure(hold_bare())
        finally:
            for response in responses:
                response.close()
            await bare.close()
    if library == "httpx":
        import httpx
        from httpx_sse import aconnect_sse

        limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
        async with httpx.AsyncClient(limits=limits, timeout=None) as client:

            async def httpx_one() -> None:
                async with AsyncExitStack() as stack:
                    async with opening:
                        source = await stack.enter_async_context(
                            aconnect_sse(client, "GET", target)
                        )
                    one_more()
                    async for _ in source.aiter_sse():
                        raise RuntimeError("an idle stream sent an event")

            return await measure(asyncio.gather(*(httpx_one() for _ in range(streams))))
    raise SystemExit(f"unknown library {library!r}: use one of {', '.join(IDLE_LIBRARIES)}")


# -- the suite ---------------------------------------------------------------------------


def build(quick: bool) -> list[Case]:
    NOTES.clear()
    _NOTE_BY_CASE.clear()
    events = QUICK_EVENTS if quick else EVENTS
    cases = [
        _throughput_case(library, streams, per_stream)
        for streams, per_stream in events.items()
        for library in (AIOSTREAMS, BATCHES, HTTPX, CEILING)
    ]
    cases += [
        _idle_case(library, streams)
        for library, points in (QUICK_IDLE_POINTS if quick else IDLE_POINTS).items()
        for streams in points
    ]
    return cases


def _kind(rows: list[Measurement], kind: str) -> list[Measurement]:
    return [m for m in rows if m.params.get("kind") == kind]


def plot_aggregate(ax: Any, rows: list[Measurement]) -> None:
    plot_curves(ax, _kind(rows, "throughput"), x="streams", ylabel="aggregate events/s", logx=False)
    ax.set_xscale("log")


def plot_peak_memory(ax: Any, rows: list[Measurement]) -> None:
    plot_curves(
        ax,
        _kind(rows, "throughput"),
        x="streams",
        y=lambda m: m.extra.get("peak_rss_mib", float("nan")),
        ylabel="peak RSS during the run (MiB)",
        logx=False,
    )
    ax.set_xscale("log")


def plot_idle_memory(ax: Any, rows: list[Measurement]) -> None:
    plot_curves(
        ax,
        _kind(rows, "idle"),
        x="streams",
        y=lambda m: m.extra.get("per_stream_kib", float("nan")),
        ylabel="KiB per idle open stream",
        logx=False,
        logy=False,
    )
    ax.set_xscale("log")


SUITE = Suite(
    name="fanin",
    title="Fan-in: N concurrent streams on one event loop (server in another process)",
    build=build,
    description=(
        "Each repeat opens N `/load/chat` streams at once from a fresh session and reads "
        "every event; events/s is aggregate over all streams, connections included. "
        "`idle/*` rows measure memory per idle open stream (see the notes); their time "
        "and events/s columns are not throughput."
    ),
    notes=NOTES,
    plots=(plot_aggregate, plot_peak_memory, plot_idle_memory),
)


def _child_main(argv: list[str]) -> int:
    """``python -m benchmarks.bench_fanin idle LIBRARY STREAMS URL``: print JSON figures."""
    if len(argv) != 4 or argv[0] != "idle":
        raise SystemExit(__doc__)
    library, streams, url = argv[1], int(argv[2]), argv[3]
    raise_open_file_limit(streams + 256)
    print(json.dumps(asyncio.run(_hold_idle(library, streams, url))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
