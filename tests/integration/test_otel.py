"""``aiostreams.otel`` with the OpenTelemetry SDK's in-memory exporter and reader:
one span per stream with its attributes, span events for reconnects and errors,
and the ``sse.client.*`` metrics (issue 15)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import aiostreams.otel
from aiostreams import SDK, StreamStats, connect
from aiostreams._stats import new_stats
from aiostreams.errors import HTTPStatusError, SDKError
from aiostreams.server import run_server

SSE = {"Content-Type": "text/event-stream"}


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    aiostreams.otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        yield t
    finally:
        aiostreams.otel.uninstrument()
        t.meter_provider.shutdown()
        t.tracer_provider.shutdown()


def _events(first: int, last: int) -> bytes:
    return b"".join(b"id: %d\ndata: e%d\n\n" % (i, i) for i in range(first, last + 1))


SEEN = web.AppKey("seen", list)


async def _flaky(request: web.Request) -> web.StreamResponse:
    """1: events 1-2 then cut; 2: HTTP 503; 3: events 3-4 (resumed), clean end."""
    seen: list[str | None] = request.app[SEEN]
    seen.append(request.headers.get("Last-Event-ID"))
    if len(seen) == 2:
        return web.Response(status=503, headers={"Retry-After": "0"})
    response = web.StreamResponse(headers=SSE)
    await response.prepare(request)
    if len(seen) == 1:
        await response.write(b"retry: 0\n\n" + _events(1, 2))
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.abort()
        return response
    await response.write(_events(3, 4))
    return response


@pytest.fixture
async def flaky_url() -> AsyncIterator[str]:
    app = web.Application()
    app[SEEN] = []
    app.router.add_get("/flaky", _flaky)
    async with run_server(app) as url:
        yield url.replace("http://", "http://bob:pw-SECRET@") + "/flaky?token=q-SECRET"


async def test_one_span_per_stream_with_attributes(
    telemetry: Telemetry, eventstreams_server: str, flaky_url: str
) -> None:
    async with connect(flaky_url, reconnect_on_eof=False, max_reconnects=3) as source:
        assert [e.data async for e in source] == ["e1", "e2", "e3", "e4"]
    async with SDK(server_url=eventstreams_server) as sdk:
        for _ in range(2):
            stream = await sdk.eventstreams.json()
            async with stream:
                sdk_events = [event async for event in stream]
        with pytest.raises(SDKError):
            await sdk.eventstreams.text(http_headers={"x-teapot": "json"})

    spans = telemetry.spans()
    assert len(spans) == 4  # connect (3 requests, one stream), 2 SDK streams, 1 failed call
    flaky, first_json, second_json, teapot = spans
    for span in spans:
        assert span.kind is SpanKind.CLIENT and span.attributes is not None
        for value in span.attributes.values():
            assert "SECRET" not in str(value) and "bob" not in str(value)
        for event in span.events:
            assert "SECRET" not in str(dict(event.attributes or {}))

    a = dict(flaky.attributes or {})
    port = urlsplit(flaky_url).port
    assert flaky.name == "GET"
    assert a["http.request.method"] == "GET"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == port
    assert a["url.full"] == f"http://127.0.0.1:{port}/flaky"
    assert a["http.response.status_code"] == 200
    assert (a["sse.events"], a["sse.reconnects"], a["sse.last_event_id"]) == (4, 2, "4")
    assert a["sse.bytes"] == len(b"retry: 0\n\n" + _events(1, 2)) + len(_events(3, 4))
    ttfe = a["sse.time_to_first_event"]
    assert isinstance(ttfe, float) and 0 < ttfe < 10
    assert isinstance(a["sse.max_gap"], float) and a["sse.max_gap"] > 0
    reconnects = [e for e in flaky.events if e.name == "sse.reconnect"]
    assert [(e.attributes or {})["sse.reconnect.reason"] for e in reconnects] == [
        "dropped",
        "status",
    ]
    assert (reconnects[0].attributes or {})["sse.last_event_id"] == "2"
    assert (reconnects[1].attributes or {})["error.type"] == "503"
    assert flaky.status.status_code is StatusCode.UNSET

    for span in (first_json, second_json):
        attributes = dict(span.attributes or {})
        assert span.name == "POST" and attributes["http.response.status_code"] == 200
        assert attributes["sse.events"] == len(sdk_events) and attributes["sse.reconnects"] == 0

    t = dict(teapot.attributes or {})
    assert teapot.status.status_code is StatusCode.ERROR
    assert t["http.response.status_code"] == 418 and t["error.type"] == "418"
    assert [e.name for e in teapot.events] == ["exception"]

    metrics = telemetry.metrics()
    (ttfe_points,) = [p for p in metrics["sse.client.time_to_first_event"] if p.count == 1]
    assert ttfe_points.attributes["server.port"] == port
    events_total = sum(p.value for p in metrics["sse.client.events"])
    assert events_total == 4 + 2 * len(sdk_events)
    assert sum(p.value for p in metrics["sse.client.bytes"]) > a["sse.bytes"]
    assert all(p.value == 0 for p in metrics["sse.client.open_streams"])  # all ended
    by_reason = {
        p.attributes["sse.reconnect.reason"]: p.value for p in metrics["sse.client.reconnects"]
    }
    assert by_reason == {"dropped": 1, "status": 1}
    gaps = [p for p in metrics["sse.client.event_gap"] if p.attributes["server.port"] == port]
    assert gaps and gaps[0].count >= 1  # at least the gap across the outage


async def test_open_streams_gauge_counts_streams_still_open(
    telemetry: Telemetry, eventstreams_server: str
) -> None:
    async with SDK(server_url=eventstreams_server) as sdk:
        stream = await sdk.eventstreams.json()
        async with stream:
            await stream.__anext__()
            (open_now,) = telemetry.metrics()["sse.client.open_streams"]
            assert open_now.value == 1
            assert telemetry.spans() == []  # ends with the stream
        assert len(telemetry.spans()) == 1


def test_uninstrument_goes_back_to_plain_stats() -> None:
    aiostreams.otel.instrument()
    try:
        assert aiostreams.otel.instrumented()
        assert type(new_stats("GET", "http://h/")) is not StreamStats
    finally:
        aiostreams.otel.uninstrument()
    assert not aiostreams.otel.instrumented()
    assert type(new_stats("GET", "http://h/")) is StreamStats


def test_nothing_imports_opentelemetry_unless_asked() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        import aiostreams
        from aiostreams.server import run_server

        async def main():
            async with run_server(pace=0) as url, aiostreams.SDK(server_url=url) as sdk:
                stream = await sdk.eventstreams.json()
                async with stream:
                    assert [e async for e in stream]
                assert stream.stats.events
            async with aiostreams.merge() as merged:
                merged.stats
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


async def test_a_failed_event_source_span_is_an_error(
    telemetry: Telemetry, eventstreams_server: str
) -> None:
    with pytest.raises(HTTPStatusError):
        async with connect(f"{eventstreams_server}/nowhere?token=q-SECRET") as source:
            await source.__anext__()
    (span,) = telemetry.spans()
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attributes["http.response.status_code"] == 404 and attributes["error.type"] == "404"
    assert attributes["sse.events"] == 0 and "sse.time_to_first_event" not in attributes
    (exception,) = span.events
    assert exception.name == "exception" and "q-SECRET" not in str(exception.attributes)
    (open_now,) = telemetry.metrics()["sse.client.open_streams"]
    assert open_now.value == 0
