"""Distributed fan-in (issue 16): one process vs ``aiostreams.distributed`` on Ray.

Runs only when Ray is installed (``pip install 'aiostreams[ray]'``); otherwise the
suite has no cases and says why.  One embedded server process (``ServerProcess``,
``/load/chat``, pace 0) serves every case of a stream count, so all rows of that
count are measured against the same server process in the same run.  Nothing is
pinned: on a 2-core machine the server, the caller and the workers share both
cores (the server's CPU seconds per case are in the notes).

Rows per stream count (each stream sends ``EVENTS[n]`` raw events):

* ``merge (1 process)``: ``aiostreams.merge`` of N ``connect()`` streams on one
  loop, read with ``batches()``, the handler below called on each batch (opening
  at most 128 connections at a time, as each worker does);
* ``distributed xW back``: ``distributed.merge(urls, workers=W)``, every event
  back to the caller, read with ``batches()`` and the same handler there;
* ``distributed xW in place``: the same handler runs in the workers; only its
  result (a count) comes back.

The handler decodes every event's JSON (``msgspec.json.decode``, the least a
consumer does), so "in place" moves that work, and the event transfer, off the
caller.  Each repeat starts from nothing:
the time includes opening every stream and, for Ray, starting the actors (Ray's
own ``ray.init`` is done once, before the first case, and not timed).  Start-up
(to the first event) and the steady rate after it are in the notes, with the
workers' RSS per open stream (``idle/*`` rows: N streams held open, RSS of the
worker process before and after, over N).
"""

from __future__ import annotations

import asyncio
import atexit
import statistics
import time
from collections.abc import Hashable
from typing import Any

import msgspec

from ._harness import Case, Outcome, Suite

STREAM_COUNTS = (1_000, 10_000)
#: 8M (4M at 10,000 streams) events per point: long enough that the actors'
#: start-up (1-2 s) does not hide the steady rate; a few minutes for the suite.
EVENTS = {1_000: 8_000, 10_000: 400}
QUICK_EVENTS = {1_000: 20}
SINGLE = "merge (1 process)"
MODES = (
    (SINGLE, 0, False),
    ("distributed x1 back", 1, False),
    ("distributed x2 back", 2, False),
    ("distributed x1 in place", 1, True),
    ("distributed x2 in place", 2, True),
)

NOTES: list[str] = []
_NOTE_BY_CASE: dict[tuple[str, int], str] = {}
_RATES: dict[tuple[str, int], list[float]] = {}


def _note(library: str, streams: int, text: str) -> None:
    _NOTE_BY_CASE[library, streams] = text
    NOTES[:] = [*_NOTE_BY_CASE.values(), *_scale_out()]


def _scale_out() -> list[str]:
    lines = []
    for streams in STREAM_COUNTS:
        base = _RATES.get((SINGLE, streams))
        if not base:
            continue
        for library, _, _ in MODES[1:]:
            rates = _RATES.get((library, streams))
            if rates:
                ratio = statistics.median(rates) / statistics.median(base)
                lines.append(
                    f"scale-out, {streams} streams, {library} / {SINGLE}: {ratio:.2f}x "
                    f"(median events/s, same server process, same run)"
                )
    return lines


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _init_ray() -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        atexit.register(ray.shutdown)


_decode = msgspec.json.decode


async def touch(key: Hashable, events: list[Any]) -> tuple[int, int]:
    """The work per batch, the same in every mode: decode every event's JSON (the
    least a consumer does); returns (events, characters of content)."""
    return len(events), sum(len(_decode(event.data)["content"]) for event in events)


class _Run:
    """One mode against one server: each call is one repeat."""

    def __init__(self, library: str, workers: int, in_place: bool, server: Any, streams: int):
        self.library = library
        self.workers = workers
        self.in_place = in_place
        self.server = server
        self.streams = streams
        self.events = EVENTS.get(streams, 20)
        self.startups: list[float] = []
        self.steady: list[float] = []
        if workers:
            _init_ray()

    def __call__(self) -> Outcome:
        import psutil  # type: ignore[import-untyped]

        server = psutil.Process(self.server.process.pid)
        cpu0 = sum(server.cpu_times()[:2])
        started = time.perf_counter()
        count, data, first = asyncio.run(self._work())
        seconds = time.perf_counter() - started
        server_cpu = sum(server.cpu_times()[:2]) - cpu0
        rate = count / seconds
        _RATES.setdefault((self.library, self.streams), []).append(rate)
        self.startups.append(first - started)
        self.steady.append(count / max(seconds - (first - started), 1e-9))
        _note(
            self.library,
            self.streams,
            f"{self.library}, {self.streams} streams x {self.events} events: "
            f"{statistics.median(_RATES[self.library, self.streams]):,.0f} events/s "
            f"aggregate; start-up to the first event {statistics.median(self.startups):.2f} s; "
            f"{statistics.median(self.steady):,.0f} events/s after it; server CPU "
            f"{server_cpu:.1f} s of {seconds:.1f} s (last repeat)",
        )
        return Outcome(count, extra={"bytes_of_data": float(data), "server_cpu_s": server_cpu})

    async def _work(self) -> tuple[int, int, float]:
        url = f"{self.server.url}/load/chat?n={self.events}"
        first = 0.0
        count = data = 0
        if not self.workers:
            import aiostreams
            from aiostreams.distributed._worker import OPENING, _pace_opening

            async with aiostreams.create_session() as session:
                _pace_opening(session, OPENING)  # as the workers do: no SYN flood
                sources = [
                    aiostreams.connect(url, session=session, reconnect_on_eof=False)
                    for _ in range(self.streams)
                ]
                async with aiostreams.merge(*sources) as merged:
                    async for key, batch in merged.batches():
                        if not first:
                            first = time.perf_counter()
                        n, b = await touch(key, batch)
                        count += n
                        data += b
            return count, data, first
        from aiostreams import distributed

        handler = touch if self.in_place else None
        urls = [url] * self.streams
        async with distributed.merge(urls, workers=self.workers, handler=handler) as merged:
            async for key, items in merged.batches():
                if not first:
                    first = time.perf_counter()
                if self.in_place:
                    for n, b in items:
                        count += n
                        data += b
                else:
                    n, b = await touch(key, items)
                    count += n
                    data += b
        return count, data, first

    def close(self) -> None:
        pass


class _Idle:
    """Worker RSS per open stream: N streams held open on one worker, against one."""

    def __init__(self, server: Any, streams: int) -> None:
        _init_ray()
        self.server = server
        self.streams = streams

    def __call__(self) -> Outcome:
        one = asyncio.run(self._hold(1))
        many = asyncio.run(self._hold(self.streams))
        per_stream = (many["rss"] - one["rss"]) / (self.streams - 1)
        _note(
            "idle",
            self.streams,
            f"idle, one worker holding {self.streams} streams open: "
            f"{per_stream / 1024:.1f} KiB of worker RSS per stream "
            f"(worker RSS {one['rss'] / 2**20:.0f} MiB with 1 stream, "
            f"{many['rss'] / 2**20:.0f} MiB with {self.streams}; "
            f"all open {many['open_s']:.1f} s after entering, actor start-up included)",
        )
        return Outcome(0, extra={"worker_kib_per_stream": per_stream / 1024, **many})

    async def _hold(self, streams: int) -> dict[str, float]:
        import psutil

        from aiostreams import distributed

        url = f"{self.server.url}/load/resumable?n=1&hold=120"
        started = time.perf_counter()
        async with distributed.merge([url] * streams, workers=1) as merged:
            seen = 0
            async for _ in merged:  # one event per stream: then every stream is open
                seen += 1
                if seen == streams:
                    break
            open_s = time.perf_counter() - started
            pid = await merged.actors[0].ping.remote()
            return {"rss": float(psutil.Process(pid).memory_info().rss), "open_s": open_s}


class _Paired:
    """The scale-out ratio under a shifting load: one process and x2 in place,
    alternated PAIRS times (ABAB...), each pair's ratio taken within the pair."""

    PAIRS = 3

    def __init__(self, server: Any, streams: int) -> None:
        self.single = _Run("paired: " + SINGLE, 0, False, server, streams)
        self.spread = _Run("paired: distributed x2 in place", 2, True, server, streams)
        self.streams = streams

    def __call__(self) -> Outcome:
        ratios, total, steady = [], [], []
        count = 0
        for _ in range(self.PAIRS):
            a = self.single()
            b = self.spread()
            count += a.events + b.events
            rate_a = _RATES["paired: " + SINGLE, self.streams][-1]
            rate_b = _RATES["paired: distributed x2 in place", self.streams][-1]
            ratios.append(rate_b / rate_a)
            total.append((rate_a, rate_b))
            steady.append(self.spread.steady[-1] / self.single.steady[-1])
        _note(
            "paired",
            self.streams,
            f"paired (ABAB), {self.streams} streams: distributed x2 in place / one process = "
            f"{statistics.median(ratios):.2f}x (per pair: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"); after the first event: {statistics.median(steady):.2f}x; events/s per pair: "
            + ", ".join(f"{a:,.0f} vs {b:,.0f}" for a, b in total),
        )
        return Outcome(count, extra={"scale_out": statistics.median(ratios)})


class _Server:
    """One server process per stream count, shared by every mode of that count."""

    def __init__(self, streams: int) -> None:
        from aiostreams.server import ServerProcess

        from .bench_fanin import raise_open_file_limit

        raise_open_file_limit(streams + 512)  # per process: server, caller, workers
        self.process_cm = ServerProcess(pace=0)
        handle = self.process_cm.__enter__()
        self.url = handle.url
        self.process = handle._process  # its pid, for CPU accounting
        self.users = 0

    def close(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.process_cm.__exit__(None, None, None)


_SERVERS: dict[int, _Server] = {}


def _server(streams: int, total_users: int) -> _Server:
    server = _SERVERS.get(streams)
    if server is None or server.users <= 0:
        server = _SERVERS[streams] = _Server(streams)
        server.users = total_users
    return server


class _Shared:
    """A runner that borrows the stream count's server and gives it back at close()."""

    def __init__(self, library: str, workers: int, in_place: bool, streams: int, users: int):
        self.server = _server(streams, users)
        self.run: _Run | _Idle | _Paired
        if library == "idle":
            self.run = _Idle(self.server, streams)
        elif library == "paired":
            self.run = _Paired(self.server, streams)
        else:
            self.run = _Run(library, workers, in_place, self.server, streams)

    def __call__(self) -> Outcome:
        return self.run()

    def close(self) -> None:
        self.server.close()


def build(quick: bool) -> list[Case]:
    if not ray_available():
        NOTES[:] = ["skipped: Ray is not installed (pip install 'aiostreams[ray]')"]
        return []
    counts = (1_000,) if quick else STREAM_COUNTS
    cases = []
    for streams in counts:
        events = (QUICK_EVENTS if quick else EVENTS)[streams]
        if quick:
            EVENTS[streams] = events
        for library, workers, in_place in MODES:
            cases.append(
                Case(
                    case=f"{streams} streams",
                    library=library,
                    make=lambda lib=library, w=workers, p=in_place, n=streams: _Shared(
                        lib, w, p, n, len(MODES) + 2
                    ),
                    events=streams * events,
                    nbytes=0,
                    note=f"{events} events per stream",
                    params={"streams": float(streams), "workers": float(workers)},
                    time_limit=120.0,
                )
            )
        cases.append(
            Case(
                case=f"paired/{streams} streams",
                library="x2 in place vs 1 process, ABAB",
                make=lambda n=streams: _Shared("paired", 2, True, n, len(MODES) + 2),
                events=2 * _Paired.PAIRS * streams * events,
                nbytes=0,
                note="scale-out ratio within each pair (see notes); events/s means nothing here",
                params={"streams": float(streams), "workers": 2.0},
                time_limit=300.0,
            )
        )
        cases.append(
            Case(
                case=f"idle/{streams} streams",
                library="idle (1 worker)",
                make=lambda n=streams: _Shared("idle", 1, False, n, len(MODES) + 2),
                events=0,
                nbytes=0,
                note="worker memory only (see notes)",
                params={"streams": float(streams), "workers": 1.0},
                time_limit=120.0,
            )
        )
    return cases


SUITE = Suite(
    name="distributed",
    title="Distributed fan-in: one process vs Ray workers (events back, or processed in place)",
    build=build,
    description=(
        "Same server process and same run for every row of a stream count; nothing pinned "
        "(server, caller and workers share the machine's cores). Time includes opening the "
        "streams and starting the actors."
    ),
    notes=NOTES,
)
