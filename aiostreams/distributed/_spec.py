"""``StreamSpec``: a picklable description of one stream, opened inside a worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .._connect import DEFAULT_MAX_RETRY_MS, DEFAULT_RETRY_MS, EventSource, connect
from .._framing import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from .._protocol import FrameDecoder
from .._typed import EventSchema, TypedDecoder

__all__ = ["StreamSpec"]


@dataclass(frozen=True, repr=False)
class StreamSpec:
    """What a worker needs to open one stream with :func:`aiostreams.connect`.

    A plain URL string in ``distributed.merge`` means ``StreamSpec(url)``.

    Args:
        url, method, headers, params, body, json: the request, as for ``connect()``.
        schema: a zero-argument callable returning the :class:`EventSchema` of typed
            events (e.g. ``lambda: EventSchema(Token)``), called once per worker;
            ``None`` for raw ``ServerSentEvent``.  It is a callable because an
            ``EventSchema`` holds compiled msgspec decoders, which do not pickle.
        last_event_id: resume the stream after this id (a checkpoint wins over it).
        reconnect_on_eof: reconnect when the body ends cleanly.  ``False`` by default,
            unlike ``connect()``: a merge of finite streams must end.  A connection
            lost mid-body always reconnects with ``Last-Event-ID``.
        retry_ms, max_retry_ms, max_reconnects, idle_timeout, event_timeout,
        first_event_timeout, max_event_size: as for ``connect()``.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    json: Any = None
    schema: Callable[[], EventSchema[Any]] | None = None
    last_event_id: str = ""
    reconnect_on_eof: bool = False
    retry_ms: int = DEFAULT_RETRY_MS
    max_retry_ms: int = DEFAULT_MAX_RETRY_MS
    max_reconnects: int | None = None
    idle_timeout: float | None = None
    event_timeout: float | None = None
    first_event_timeout: float | None = None
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"a stream URL must be an http(s) URL string, got {self.target!r}")
        if isinstance(self.schema, EventSchema):
            raise TypeError(
                "schema= takes a zero-argument callable returning the EventSchema "
                "(e.g. schema=lambda: EventSchema(MyEvent)): an EventSchema itself does "
                "not pickle, so each worker builds its own"
            )
        if self.schema is not None and not callable(self.schema):
            raise TypeError(
                f"schema must be a callable returning an EventSchema or None, got {self.schema!r}"
            )
        if self.body is not None and self.json is not None:
            raise TypeError("pass either body= or json=, not both")

    @property
    def target(self) -> str:
        """The URL without its query string or credentials (safe to show)."""
        if not isinstance(self.url, str):
            return type(self.url).__name__
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def __repr__(self) -> str:  # never headers, query or credentials
        return f"StreamSpec({self.method} {self.target})"

    def open(
        self,
        session: aiohttp.ClientSession,
        last_event_id: str,
        schema: EventSchema[Any] | None,
        on_decoder: Callable[[FrameDecoder[Any]], None],
    ) -> EventSource[Any]:
        """The stream, resumed after ``last_event_id``; ``on_decoder`` sees each
        connection's decoder (whose ``last_event_id`` follows what it dispatched)."""
        size = self.max_event_size

        def factory(lid: str) -> FrameDecoder[Any]:
            framer = SSEDecoder(max_event_size=size, last_event_id=lid)
            decoder: FrameDecoder[Any] = framer if schema is None else TypedDecoder(schema, framer)
            on_decoder(decoder)
            return decoder

        return connect(
            self.url,
            decoder=factory,
            method=self.method,
            headers=dict(self.headers),
            params=dict(self.params),
            body=self.body,
            json=self.json,
            session=session,
            last_event_id=last_event_id,
            retry_ms=self.retry_ms,
            max_retry_ms=self.max_retry_ms,
            max_reconnects=self.max_reconnects,
            reconnect_on_eof=self.reconnect_on_eof,
            idle_timeout=self.idle_timeout,
            event_timeout=self.event_timeout,
            first_event_timeout=self.first_event_timeout,
            max_event_size=size,
        )
