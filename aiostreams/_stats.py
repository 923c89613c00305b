"""``StreamStats``: what happened to one stream, always on, and ``MergeStats`` for a merge.

Cost: the transport calls :meth:`StreamStats.read` once per network read (not per
event): two integer additions, one ``None`` check, and one clock read when the read
completed events.  Everything else (the response, a reconnect, the end) happens
once per connection and is where the logging (``aiostreams._log``) and, when
turned on, OpenTelemetry (``aiostreams.otel``) hook in.

Times are ``time.monotonic()`` seconds; durations are in seconds.  Gaps are
measured between reads that completed events: events decoded from one read arrive
together, so the gap between them is zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._log import connect_log, describe_error, redact_url, stream_log

if TYPE_CHECKING:
    from ._protocol import FrameDecoder

__all__ = ["MergeStats", "StreamStats", "new_stats", "raised_through", "set_stats_type"]

_monotonic: Final = time.monotonic
_DEBUG: Final = logging.DEBUG
_INFO: Final = logging.INFO


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


class StreamStats:
    """What happened to one stream: counters and times, updated as it runs.

    ``stream.stats`` on :class:`~aiostreams.EventStream`, :class:`~aiostreams.EventSource`
    (across all its connections) and the SDK's streams.  Read it at any time, also
    after the stream ended.

    Attributes:
        method, url: the request (the URL without credentials or query string).
        status: the HTTP status of the last response (``None`` before one).
        events: events delivered (decoded; replayed copies skipped after a
            reconnect and the events after an ``until`` event are not counted).
        bytes: body bytes received (all connections).
        connections: responses that opened a stream (2xx event stream).
        started_at: when the first request was sent (``time.monotonic()``).
        last_event_at: when the last event arrived (monotonic), ``None`` before one.
        max_gap: the longest wait, in seconds, between two reads that delivered
            events (a reconnect's downtime included).
        reconnects_by_reason: reconnects per reason (``"dropped"``, ``"eof"``,
            ``"timeout"``, ``"status"``, ``"connect"``), a copy.
        error: the error that ended the stream, if one did.
        ended_at: when it ended (monotonic), ``None`` while open.

    A stream you drive yourself (your own read loop) can keep one too:
    ``stats = StreamStats("GET", url)``, then ``stats.read(len(chunk), len(events))``
    per read.
    """

    __slots__ = (
        "_began",
        "_decoder",
        "_last_event_id",
        "_logical",
        "_reasons",
        "_replayed",
        "bytes",
        "connections",
        "ended_at",
        "error",
        "events",
        "first_byte_at",
        "first_event_at",
        "last_event_at",
        "max_gap",
        "method",
        "response_at",
        "started_at",
        "status",
        "url",
    )

    def __init__(self, method: str = "GET", url: str = "", *, logical: bool = False) -> None:
        self.method = method
        self.url = redact_url(url)
        self.started_at = _monotonic()
        self.response_at: float | None = None
        self.first_byte_at: float | None = None
        self.first_event_at: float | None = None
        self.last_event_at: float | None = None
        self.ended_at: float | None = None
        self.events = 0
        self.bytes = 0
        self.max_gap = 0.0
        self.status: int | None = None
        self.connections = 0
        self._reasons: dict[str, int] | None = None  # made at the first reconnect
        self.error: BaseException | None = None
        # An EventSource's stats outlive its connections: a connection's end is not
        # the stream's, and its errors are reported as reconnects by the source.
        self._logical = logical
        self._began = not logical
        self._decoder: FrameDecoder[Any] | None = None
        self._last_event_id = ""
        self._replayed = 0

    # -- the hot path: once per network read ------------------------------------------

    def read(self, nbytes: int, nevents: int) -> None:
        """Count one network read of ``nbytes`` that completed ``nevents`` events."""
        self.bytes += nbytes
        if self.first_byte_at is None:
            self.first_byte_at = _monotonic()
        if nevents:
            now = _monotonic()
            self.events += nevents
            last = self.last_event_at
            if last is None:
                self.first_event_at = now
            elif now - last > self.max_gap:
                self.max_gap = now - last
            self.last_event_at = now

    # -- derived ----------------------------------------------------------------------

    @property
    def time_to_headers(self) -> float | None:
        """Seconds from the first request to its response headers."""
        at = self.response_at
        return None if at is None else at - self.started_at

    @property
    def time_to_first_byte(self) -> float | None:
        """Seconds from the first request to the first byte of a body."""
        at = self.first_byte_at
        return None if at is None else at - self.started_at

    @property
    def time_to_first_event(self) -> float | None:
        """Seconds from the first request to the first event (time to first token)."""
        at = self.first_event_at
        return None if at is None else at - self.started_at

    @property
    def since_last_event(self) -> float:
        """Seconds since the last event (since the start if none came); frozen at the end.
        The stalled streams are the open ones where this is large."""
        end = self.ended_at if self.ended_at is not None else _monotonic()
        last = self.last_event_at
        return end - (self.started_at if last is None else last)

    @property
    def duration(self) -> float:
        """Seconds from the first request to the end (to now while open)."""
        end = self.ended_at if self.ended_at is not None else _monotonic()
        return end - self.started_at

    @property
    def reconnects_by_reason(self) -> dict[str, int]:
        """Reconnects per reason (a copy): ``"dropped"``, ``"eof"``, ``"timeout"``,
        ``"status"``, ``"connect"``."""
        return dict(self._reasons) if self._reasons else {}

    @property
    def reconnects(self) -> int:
        """Reconnects of every reason."""
        return sum(self._reasons.values()) if self._reasons else 0

    @property
    def replayed(self) -> int:
        """Events a server replayed after a reconnect, recognised and skipped."""
        decoder = self._decoder
        return self._replayed + (getattr(decoder, "skipped", 0) if decoder is not None else 0)

    @property
    def last_event_id(self) -> str:
        """The current last event id (what a reconnect sends as ``Last-Event-ID``)."""
        decoder = self._decoder
        return decoder.last_event_id if decoder is not None else self._last_event_id

    @property
    def closed(self) -> bool:
        return self.ended_at is not None

    def as_dict(self) -> dict[str, Any]:
        """A snapshot: plain values (seconds, counts), e.g. to log as JSON."""
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "events": self.events,
            "bytes": self.bytes,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "reconnects_by_reason": self.reconnects_by_reason,
            "replayed": self.replayed,
            "last_event_id": self.last_event_id,
            "time_to_headers": self.time_to_headers,
            "time_to_first_byte": self.time_to_first_byte,
            "time_to_first_event": self.time_to_first_event,
            "max_gap": self.max_gap,
            "since_last_event": self.since_last_event,
            "duration": self.duration,
            "closed": self.closed,
            "error": None if self.error is None else describe_error(self.error),
        }

    def summary(self) -> str:
        """A few aligned lines for a human (``aiostreams stream --stats``)."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reconnects_by_reason.items()))
        rows = [
            ("stream", f"{self.method} {self.url}" + ("" if self.closed else " (open)")),
            ("status", "-" if self.status is None else str(self.status)),
            ("events", str(self.events)),
            ("bytes", str(self.bytes)),
            ("time to headers", _ms(self.time_to_headers)),
            ("time to first byte", _ms(self.time_to_first_byte)),
            ("time to first event", _ms(self.time_to_first_event)),
            ("largest gap", _ms(self.max_gap)),
            ("since last event", _ms(self.since_last_event)),
            ("duration", _ms(self.duration)),
            ("reconnects", f"{self.reconnects}" + (f" ({reasons})" if reasons else "")),
            ("replayed, skipped", str(self.replayed)),
            ("last event id", repr(self.last_event_id)),
        ]
        if self.error is not None:
            rows.append(("error", describe_error(self.error)))
        return "\n".join(f"{name:<20} {value}" for name, value in rows)

    def __repr__(self) -> str:
        return (
            f"<StreamStats {self.method} {self.url}: {self.events} events, {self.bytes} bytes, "
            f"first event {_ms(self.time_to_first_event)}, {self.reconnects} reconnects"
            f"{'' if self.closed else ', open'}>"
        )

    # -- lifecycle: once per stream or connection, called by the library ---------------

    def _begin(self) -> None:
        """The first request is being sent (an EventSource's stats start here)."""
        if not self._began:
            self._began = True
            self.started_at = _monotonic()

    def _attach(self, decoder: FrameDecoder[Any], status: int) -> None:
        """A response opened a stream read by ``decoder``."""
        self._decoder = decoder
        self.status = status
        self.connections += 1
        if self.response_at is None:
            self.response_at = _monotonic()
        if stream_log.isEnabledFor(_DEBUG):
            stream_log.debug(
                "%s %s: HTTP %d, stream open (connection %d, %s after the first request)",
                self.method,
                self.url,
                status,
                self.connections,
                _ms(_monotonic() - self.started_at),
            )

    def _connection_closed(self, how: str) -> None:
        """The current connection ended: ``"eof"``, ``"sentinel"`` or ``"closed"``."""
        self._detach()
        if self._logical:
            if stream_log.isEnabledFor(_DEBUG):
                stream_log.debug(
                    "%s %s: connection %d ended (%s); %d events so far",
                    self.method,
                    self.url,
                    self.connections,
                    how,
                    self.events,
                )
        else:
            self._end(None, how)

    def _connection_error(self, error: BaseException) -> None:
        """The current connection failed with ``error`` (it is being closed).  An
        EventSource reports it itself, as a reconnect or its end."""
        if not self._logical and isinstance(error, Exception):
            self.error = error

    def _event_error(self, error: BaseException) -> None:
        """One event was bad (``ResponseValidationError``...); the stream goes on."""
        if stream_log.isEnabledFor(_INFO):
            stream_log.info(
                "%s %s: bad event after %d events (the stream goes on): %s",
                self.method,
                self.url,
                self.events,
                describe_error(error),
            )

    def _reconnect(
        self,
        reason: str,
        delay: float,
        attempt: int,
        last_event_id: str,
        error: BaseException | None,
    ) -> None:
        """An EventSource is about to wait ``delay`` s and reconnect."""
        by_reason = self._reasons
        if by_reason is None:
            self._reasons = by_reason = {}
        by_reason[reason] = by_reason.get(reason, 0) + 1
        if connect_log.isEnabledFor(_INFO):
            connect_log.info(
                "%s %s: reconnecting in %.3g s (reason %s, attempt %d, Last-Event-ID %r)%s",
                self.method,
                self.url,
                delay,
                reason,
                attempt,
                last_event_id,
                "" if error is None else ": " + describe_error(error),
            )

    def _end(self, error: BaseException | None = None, how: str = "closed") -> None:
        """The stream is over for good (idempotent)."""
        if self.ended_at is not None:
            return
        self.ended_at = _monotonic()
        self._detach()
        if error is not None and isinstance(error, Exception):
            self.error = error
        error = self.error
        log = connect_log if self._logical else stream_log
        if error is not None:
            if log.isEnabledFor(_INFO):
                what = "hit a size limit" if _is_limit(error) else "failed"
                log.info(
                    "%s %s: %s after %d events, %d bytes, %d reconnects: %s",
                    self.method,
                    self.url,
                    what,
                    self.events,
                    self.bytes,
                    self.reconnects,
                    describe_error(error),
                )
        elif log.isEnabledFor(_DEBUG):
            log.debug(
                "%s %s: ended (%s) after %d events, %d bytes, %d reconnects; first event %s",
                self.method,
                self.url,
                how,
                self.events,
                self.bytes,
                self.reconnects,
                _ms(self.time_to_first_event),
            )

    def _detach(self) -> None:
        """Keep what the connection's decoder knows (its last id, replays skipped)."""
        decoder = self._decoder
        if decoder is not None:
            self._decoder = None
            self._last_event_id = decoder.last_event_id
            self._replayed += getattr(decoder, "skipped", 0)


def raised_through(
    error: BaseException | None, owner: object, kind: type[BaseException]
) -> BaseException | None:
    """``error`` if it is a ``kind`` that passed through a method of ``owner`` (a frame
    of its traceback has ``self is owner``), else ``None``.  Walks the traceback only
    when there is an error."""
    if error is None or not isinstance(error, kind):
        return None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_locals.get("self") is owner:
            return error
        tb = tb.tb_next
    return None


def _is_limit(error: BaseException) -> bool:
    from .errors import EventTooLarge

    return isinstance(error, EventTooLarge)


# -- the stats of every stream the library makes ----------------------------------------

_stats_type: type[StreamStats] = StreamStats


def new_stats(method: str, url: str, *, logical: bool = False) -> StreamStats:
    """The stats object of a stream the library opens: plain, or traced by
    ``aiostreams.otel`` when it is turned on."""
    return _stats_type(method, url, logical=logical)


def set_stats_type(stats_type: type[StreamStats]) -> None:
    """What :func:`new_stats` makes from now on (``aiostreams.otel`` swaps it)."""
    global _stats_type
    _stats_type = stats_type


# -- fan-in -------------------------------------------------------------------------------


class MergeStats(Mapping[Hashable, StreamStats]):
    """The stats of a merge: a mapping of source key to that source's
    :class:`StreamStats` (sources that keep none, e.g. plain async generators, are
    absent), plus totals.

    A snapshot of the totals is taken when it is made (``merged.stats``); the
    per-source stats are live.
    """

    def __init__(self, streams: Mapping[Hashable, StreamStats]) -> None:
        self._streams = dict(streams)
        values = self._streams.values()
        self.events = sum(s.events for s in values)
        self.bytes = sum(s.bytes for s in values)
        self.replayed = sum(s.replayed for s in values)
        self.open = sum(not s.closed for s in values)
        self.max_gap = max((s.max_gap for s in values), default=0.0)
        by_reason: dict[str, int] = {}
        for s in values:
            for reason, count in s.reconnects_by_reason.items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        self.reconnects_by_reason = by_reason
        self.reconnects = sum(by_reason.values())

    def __getitem__(self, key: Hashable) -> StreamStats:
        return self._streams[key]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._streams)

    def __len__(self) -> int:
        return len(self._streams)

    def slowest(self, n: int = 10) -> list[tuple[Hashable, StreamStats]]:
        """The ``n`` sources with the longest time to first event (no event yet: first)."""
        inf = float("inf")

        def ttfe(item: tuple[Hashable, StreamStats]) -> float:
            value = item[1].time_to_first_event
            return inf if value is None else value

        return sorted(self._streams.items(), key=ttfe, reverse=True)[:n]

    def stalled(self, seconds: float) -> list[tuple[Hashable, StreamStats]]:
        """Open sources without an event for at least ``seconds``, longest first."""
        found = [
            (key, s)
            for key, s in self._streams.items()
            if not s.closed and s.since_last_event >= seconds
        ]
        return sorted(found, key=lambda item: item[1].since_last_event, reverse=True)

    def __repr__(self) -> str:
        return (
            f"<MergeStats {len(self)} streams ({self.open} open): {self.events} events, "
            f"{self.bytes} bytes, {self.reconnects} reconnects>"
        )
