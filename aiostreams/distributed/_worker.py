"""The Ray actor: runs ``aiostreams.merge`` over its shard of streams on its own loop.

Each ``run()`` call is a Ray streaming generator: it yields *messages*, each a list
of ``(key, kind, payload, last_event_id)`` tuples gathered from whatever the merge
has ready (up to ``max_items`` events), so one Ray object carries many batches.
Ray pauses the generator when ``BACKPRESSURE`` messages wait unconsumed by the
caller: a slow caller slows the workers, then (through TCP) the servers.

``last_event_id`` is the stream's id right after the batch (the decoder's, which
moves only when an event is dispatched), so the caller knows exactly where to
resume the stream if this worker dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Final

import msgspec
import ray

from .._connect import EventSource
from .._events import ServerSentEvent
from .._fanin import MergeFailure, merge
from .._protocol import FrameDecoder
from .._session import create_session
from .._typed import EventSchema
from ._spec import StreamSpec

__all__ = [
    "BACKPRESSURE",
    "ENDED",
    "EVENTS",
    "FAILED",
    "PACKED",
    "RESULTS",
    "Worker",
    "unpack_events",
]

#: Seconds between two messages of a worker when events trickle in (a batching
#: delay: the most an event waits in a worker before it is sent on).
LINGER: Final = 0.005
#: Connections a worker opens at once (see _pace_opening).
OPENING: Final = 128
#: Messages a worker may have yielded that the caller has not taken yet.
BACKPRESSURE: Final = 4

EVENTS: Final = 0  # payload: the batch of events
RESULTS: Final = 1  # payload: the handler's non-None result (process-in-place)
ENDED: Final = 2  # payload: None; the stream is over
FAILED: Final = 3  # payload: (exception type name, message)
PACKED: Final = 4  # payload: raw ServerSentEvents as msgpack bytes (see below)

#: Raw events travel as msgpack bytes: ~0.03 us per event to encode against ~2 us
#: for Ray's cloudpickle of the Structs, which capped a worker near 500k events/s.
#: Typed events (the caller may not know their types) go as they are.
_encode = msgspec.msgpack.Encoder().encode
unpack_events: Final = msgspec.msgpack.Decoder(list[ServerSentEvent]).decode

Message = list[tuple[Hashable, int, Any, str]]
Handler = Callable[[Hashable, list[Any]], Awaitable[Any]]


class _End:
    __slots__ = ()


_END: Final = _End()


class _Tracked:
    """A stream for the worker's merge: each batch comes with the id after it, and
    the end of the stream comes as one ``_END`` batch (a merge tells no one)."""

    __slots__ = ("_decoder", "_ended", "_source")

    def __init__(
        self, spec: StreamSpec, last_event_id: str, session: Any, schema: EventSchema[Any] | None
    ) -> None:
        self._decoder: FrameDecoder[Any] | None = None
        self._ended = False
        self._source: EventSource[Any] = spec.open(session, last_event_id, schema, self._use)

    def _use(self, decoder: FrameDecoder[Any]) -> None:
        self._decoder = decoder

    def __aiter__(self) -> _Tracked:  # what merge() checks; it calls next_batch()
        return self

    async def __anext__(self) -> Any:  # pragma: no cover - merge uses next_batch
        raise StopAsyncIteration

    async def next_batch(self) -> list[Any] | None:
        if self._ended:
            return None
        batch = await self._source.next_batch()
        while batch is not None and not batch:  # never an empty batch downstream
            batch = await self._source.next_batch()
        if batch is None:
            self._ended = True
            return [_END]
        decoder = self._decoder
        return [(batch, decoder.last_event_id if decoder is not None else "")]

    async def aclose(self) -> None:
        await self._source.aclose()


def _pace_opening(session: Any, at_once: int) -> None:
    """At most ``at_once`` connections being opened (TCP + TLS) at a time.

    A worker opens its whole shard when the merge starts (and again after a lost
    worker): thousands of SYNs in one burst overflow a server's listen backlog
    (``somaxconn``), and every dropped one waits for TCP's retransmission timer
    (1 s, 3 s, 7 s...).  aiohttp has no public hook for this, so the connector's
    own method is wrapped, for this session only.
    """
    connector = session.connector
    create = connector._create_connection
    opening = asyncio.Semaphore(at_once)

    async def paced(*args: Any, **kwargs: Any) -> Any:
        async with opening:
            return await create(*args, **kwargs)

    connector._create_connection = paced


class Worker:
    """One worker process: ``run()`` streams its shard's events (or results) back."""

    def ping(self) -> int:
        """Ready check; returns the process id (tests kill it with it)."""
        import os

        return os.getpid()

    @ray.method(num_returns="streaming", _generator_backpressure_num_objects=BACKPRESSURE)  # type: ignore[misc, untyped-decorator, unused-ignore]
    async def run(
        self,
        streams: list[tuple[Hashable, StreamSpec, str]],
        handler: Handler | None,
        max_items: int,
    ) -> AsyncIterator[Message]:
        schemas: dict[int, EventSchema[Any]] = {}  # one per schema factory, not per stream
        session = create_session()
        _pace_opening(session, OPENING)
        try:
            async with merge(on_error="yield") as merged:
                for key, spec, last_event_id in streams:
                    schema = None
                    if spec.schema is not None:
                        schema = schemas.get(id(spec.schema))
                        if schema is None:
                            schema = schemas[id(spec.schema)] = spec.schema()
                    merged.add(_Tracked(spec, last_event_id, session, schema), key=key)
                stats = merged.statistics
                loop = asyncio.get_running_loop()
                last = loop.time()
                message: Message = []
                count = 0
                async for key, items in merged.batches():
                    for item in items:
                        if isinstance(item, _End):
                            message.append((key, ENDED, None, ""))
                        elif isinstance(item, MergeFailure):
                            error = item.error
                            message.append((key, FAILED, (type(error).__name__, str(error)), ""))
                        else:
                            events, lid = item
                            count += len(events)
                            if handler is not None:
                                message.append((key, RESULTS, await handler(key, events), lid))
                            elif type(events[0]) is ServerSentEvent:
                                message.append((key, PACKED, _encode(events), lid))
                            else:
                                message.append((key, EVENTS, events, lid))
                    if count < max_items and not stats().current_buffer_used:
                        # Nothing more ready: hand the message over, but not more often
                        # than every LINGER seconds (each Ray yield has a fixed cost:
                        # serialise, store and report an object); meanwhile the merge's
                        # buffer fills up.
                        wait = last + LINGER - loop.time()
                        if wait > 0:
                            await asyncio.sleep(wait)
                            if stats().current_buffer_used:
                                continue
                    elif count < max_items:
                        continue
                    yield message
                    message = []
                    count = 0
                    last = loop.time()
                if message:
                    yield message
        finally:
            await session.close()
