"""OpenTelemetry traces and metrics of aiostreams' streams (optional extra ``otel``).

::

    import aiostreams.otel
    aiostreams.otel.instrument()      # the global tracer and meter providers, or pass your own

Off by default, and free when off: until :func:`instrument` is called nothing here
is imported and streams keep plain :class:`~aiostreams.StreamStats`.  Once on,
every stream opened afterwards (``connect()``, the SDK's operations, ``EventStream``)
gets one span and feeds the metrics below; :func:`uninstrument` turns it off for
streams opened afterwards.  Needs only ``opentelemetry-api``; without an SDK
configured, the API's no-op providers make it cost next to nothing.

One span per stream (an ``EventSource`` is one span across its reconnects), kind
CLIENT, named after the HTTP method as the HTTP semantic conventions name a client
span without a URL template.  It starts when the first request is sent and ends
when the stream ends.  Attributes, HTTP conventions first:

=================================  ============================================
``http.request.method``            ``GET``, ``POST``...
``server.address``, ``server.port``  from the URL
``url.full``                       the URL without credentials nor query string
``http.response.status_code``      of the last response (of the error if it failed)
``error.type``                     the exception's class (the status code for
                                   an HTTP error), if the stream failed
``sse.events``, ``sse.bytes``      events decoded, body bytes received
``sse.reconnects``                 reconnects, all reasons
``sse.replayed``                   replayed events recognised and skipped
``sse.time_to_first_byte``         seconds from the request to the first body byte
``sse.time_to_first_event``        seconds from the request to the first event
``sse.max_gap``                    longest wait between events, seconds
``sse.last_event_id``              the last event id (what a resume would send)
=================================  ============================================

Span events: ``sse.reconnect`` per reconnect (``sse.reconnect.reason``,
``sse.reconnect.delay``, ``sse.reconnect.attempt``, ``sse.last_event_id``,
``error.type``); an ``exception`` event per bad event and for the error that ended
the stream, whose status is then ERROR.

Metrics (attributes ``http.request.method``, ``server.address``, ``server.port``):

====================================  =============  ==================================
``sse.client.time_to_first_event``    histogram, s   per stream
``sse.client.event_gap``              histogram, s   between reads that brought events
``sse.client.events``                 counter        events decoded
``sse.client.bytes``                  counter, By    body bytes received
``sse.client.open_streams``           up-down        streams open now
``sse.client.reconnects``             counter        by ``sse.reconnect.reason``
====================================  =============  ==================================

Cost when on: one span and a few metric updates per stream, plus the counters and
the gap histogram once per network read (never per event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import __version__
from ._log import describe_error, redact_text
from ._stats import StreamStats, set_stats_type
from .errors import HTTPStatusError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._protocol import FrameDecoder

__all__ = ["instrument", "instrumented", "uninstrument"]

#: Histogram buckets in seconds: the HTTP conventions' duration buckets, then longer
#: ones, because a first event (an LLM's first token) or a gap can take a minute.
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
_BUCKETS_LONG: Final = (*_BUCKETS, 7.5, 10.0, 30.0, 60.0, 300.0)


class _Telemetry:
    """The tracer and the instruments, made once per :func:`instrument`."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter) -> None:
        self.tracer = tracer
        self.time_to_first_event = meter.create_histogram(
            "sse.client.time_to_first_event",
            unit="s",
            description="Time from sending the request to the first event of a stream.",
            explicit_bucket_boundaries_advisory=_BUCKETS_LONG,
        )
        self.event_gap = meter.create_histogram(
            "sse.client.event_gap",
            unit="s",
            description="Time between two network reads that delivered events.",
            explicit_bucket_boundaries_advisory=_BUCKETS_LONG,
        )
        self.events = meter.create_counter(
            "sse.client.events", unit="{event}", description="Events decoded."
        )
        self.bytes = meter.create_counter(
            "sse.client.bytes", unit="By", description="Response body bytes received."
        )
        self.open_streams = meter.create_up_down_counter(
            "sse.client.open_streams", unit="{stream}", description="Streams open now."
        )
        self.reconnects = meter.create_counter(
            "sse.client.reconnects",
            unit="{reconnect}",
            description="Reconnects, by reason (sse.reconnect.reason).",
        )


class _TracedStats(StreamStats):
    """``StreamStats`` that also feed a span and the metrics."""

    __slots__ = ("_attrs", "_span", "_t")

    telemetry: ClassVar[_Telemetry | None] = None

    def __init__(self, method: str = "GET", url: str = "", *, logical: bool = False) -> None:
        super().__init__(method, url, logical=logical)
        telemetry = type(self).telemetry
        assert telemetry is not None  # set by instrument() before this class is used
        self._t = telemetry
        self._span: trace.Span | None = None
        parts = urlsplit(self.url)
        self._attrs: dict[str, Any] = {"http.request.method": method}
        if parts.hostname:
            self._attrs["server.address"] = parts.hostname
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if port is not None:
            self._attrs["server.port"] = port
        if not logical:
            self._start()

    def _start(self) -> None:
        self._span = self._t.tracer.start_span(
            self.method,
            kind=SpanKind.CLIENT,
            attributes={**self._attrs, "url.full": self.url},
        )
        self._t.open_streams.add(1, self._attrs)

    # -- per read -----------------------------------------------------------------------

    def read(self, nbytes: int, nevents: int) -> None:
        previous = self.last_event_at
        super().read(nbytes, nevents)
        t = self._t
        attrs = self._attrs
        if nbytes:
            t.bytes.add(nbytes, attrs)
        if nevents:
            t.events.add(nevents, attrs)
            last = self.last_event_at
            assert last is not None
            if previous is None:
                t.time_to_first_event.record(last - self.started_at, attrs)
            else:
                t.event_gap.record(last - previous, attrs)

    # -- lifecycle ------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._began:
            super()._begin()
            self._start()

    def _attach(self, decoder: FrameDecoder[Any], status: int) -> None:
        super()._attach(decoder, status)
        if self._span is not None:
            self._span.set_attribute("http.response.status_code", status)

    def _event_error(self, error: BaseException) -> None:
        super()._event_error(error)
        if self._span is not None and isinstance(error, Exception):
            message = redact_text(str(error))
            self._span.record_exception(error, attributes={"exception.message": message})

    def _reconnect(
        self,
        reason: str,
        delay: float,
        attempt: int,
        last_event_id: str,
        error: BaseException | None,
    ) -> None:
        super()._reconnect(reason, delay, attempt, last_event_id, error)
        self._t.reconnects.add(1, {**self._attrs, "sse.reconnect.reason": reason})
        if self._span is not None:
            attributes: dict[str, Any] = {
                "sse.reconnect.reason": reason,
                "sse.reconnect.delay": delay,
                "sse.reconnect.attempt": attempt,
                "sse.last_event_id": last_event_id,
            }
            if error is not None:
                attributes["error.type"] = _error_type(error)
                attributes["exception.message"] = describe_error(error)
            self._span.add_event("sse.reconnect", attributes)

    def _end(self, error: BaseException | None = None, how: str = "closed") -> None:
        if self.ended_at is not None:
            return
        super()._end(error, how)
        span, self._span = self._span, None
        if span is None:  # an EventSource closed before its first request
            return
        self._t.open_streams.add(-1, self._attrs)
        error = self.error
        attributes: dict[str, Any] = {
            "sse.events": self.events,
            "sse.bytes": self.bytes,
            "sse.reconnects": self.reconnects,
            "sse.replayed": self.replayed,
            "sse.max_gap": self.max_gap,
            "sse.last_event_id": self.last_event_id,
        }
        times = {
            "sse.time_to_first_byte": self.time_to_first_byte,
            "sse.time_to_first_event": self.time_to_first_event,
        }
        attributes.update({name: value for name, value in times.items() if value is not None})
        if isinstance(error, HTTPStatusError):
            attributes["http.response.status_code"] = error.status_code
        span.set_attributes(attributes)
        if error is not None:
            span.set_attribute("error.type", _error_type(error))
            # The message is the library's own (URLs redacted); the stack names no values.
            message = redact_text(str(error))
            span.record_exception(error, attributes={"exception.message": message})
            span.set_status(Status(StatusCode.ERROR, describe_error(error)))
        span.end()


def _error_type(error: BaseException) -> str:
    """``error.type`` as the HTTP conventions say: the status code of an HTTP error,
    else the exception's fully qualified class name."""
    if isinstance(error, HTTPStatusError) and error.status_code >= 400:
        return str(error.status_code)
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure every stream opened from now on.

    Args:
        tracer_provider, meter_provider: default: the global ones
            (``opentelemetry.trace.set_tracer_provider`` ...).

    Calling it again replaces the providers (for streams opened afterwards).
    """
    tracer = trace.get_tracer("aiostreams", __version__, tracer_provider)
    meter = metrics.get_meter("aiostreams", __version__, meter_provider)
    _TracedStats.telemetry = _Telemetry(tracer, meter)
    set_stats_type(_TracedStats)


def uninstrument() -> None:
    """Stop tracing streams opened from now on (those open keep their span to the end)."""
    set_stats_type(StreamStats)


def instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    from . import _stats

    return _stats._stats_type is _TracedStats
