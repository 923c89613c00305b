"""What ``stats`` (always on) and ``aiostreams.otel`` cost on the end-to-end figure.

``python -m benchmarks.bench_observability --baseline DIR [--rounds N] [--runs N]``

``DIR`` is a checkout of aiostreams *without* the observability hooks (e.g.
``git archive <commit> aiostreams | tar -x -C DIR``).  The client of the e2e
benchmark (``bench_e2e.aiostreams_typed``/``aiostreams_batches``: 200k chat events
from ``aiostreams serve --pace 0`` in another process, typed through the SDK's
path) runs in a fresh interpreter per variant and round, variants interleaved
round by round so that a noisy neighbour hits them all alike:

* ``baseline``: the package in ``DIR``;
* ``stats on, otel off``: this checkout, as shipped (the default);
* ``otel on, API only``: ``aiostreams.otel.instrument()`` with no SDK installed
  as provider (the no-op API: what a library user pays before configuring one);
* ``otel on, SDK``: with ``opentelemetry-sdk`` providers (spans exported to
  memory, metrics aggregated in memory).

Prints, per variant, the median wall-clock seconds per run and the median CPU
seconds of the client process (less sensitive to what else runs on the
machine, the server included), each against the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, json, sys, time
variant, url, runs, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if variant.startswith("otel"):
    import aiostreams.otel
    if variant == "otel-sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
        aiostreams.otel.instrument(tracer_provider=tp, meter_provider=mp)
    else:
        aiostreams.otel.instrument()
from aiostreams._request import HTTPRequest, open_stream
from aiostreams._session import create_session
from aiostreams.models.operations import CHAT_SKIP_SENTINEL

async def typed():
    async with create_session() as session:
        stream = await open_stream(session, HTTPRequest("GET", url), CHAT_SKIP_SENTINEL.decoder())
        n = 0
        async with stream:
            if path == "batches":
                async for batch in stream.batches():
                    n += len(batch)
            else:
                async for event in stream:
                    n += 1
        return n

loop = asyncio.new_event_loop()
loop.run_until_complete(typed())  # warm-up
times = []
for _ in range(runs):
    start, cpu = time.perf_counter(), time.process_time()
    n = loop.run_until_complete(typed())
    times.append((time.perf_counter() - start, time.process_time() - cpu))
    assert n == 200_000, n
loop.close()
print(json.dumps(times))
"""

VARIANTS = {
    "baseline": "plain",
    "stats on, otel off": "plain",
    "otel on, API only": "otel-api",
    "otel on, SDK": "otel-sdk",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout without the hooks")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per child")
    parser.add_argument("--path", choices=["events", "batches"], default="events")
    parser.add_argument("--skip-otel", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from aiostreams.server import ServerProcess

    variants = {k: v for k, v in VARIANTS.items() if not (args.skip_otel and v != "plain")}
    times: dict[str, list[list[float]]] = {name: [] for name in variants}
    with ServerProcess(pace=0.0) as server:
        url = f"{server.url}/load/chat?n=200000&chunk=16384&sentinel=1"
        for round_ in range(args.rounds):
            for name, mode in variants.items():
                root = args.baseline if name == "baseline" else HERE
                env = {**os.environ, "PYTHONPATH": str(root)}
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, mode, url, str(args.runs), args.path],
                    env=env,
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times[name] += json.loads(done.stdout)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    base = [statistics.median(t[i] for t in times["baseline"]) for i in (0, 1)]
    print(f"path: {args.path}; {args.rounds} rounds x {args.runs} runs, 200k events per run")
    print(
        f"{'variant':<22} {'wall s':>8} {'events/s':>10} {'vs base':>8} {'CPU s':>8} {'vs base':>8}"
    )
    for name, values in times.items():
        wall, cpu = (statistics.median(t[i] for t in values) for i in (0, 1))
        print(
            f"{name:<22} {wall:>8.4f} {200_000 / wall:>10,.0f} {(wall / base[0] - 1) * 100:>+7.1f}% "
            f"{cpu:>8.4f} {(cpu / base[1] - 1) * 100:>+7.1f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
