"""``merge``: fan-in of many concurrent event streams into one ``async for``.

Shape
-----
One task per source reads it and puts *batches* (the events one network read
decoded, from ``EventStream.batches()``; one event for a plain async iterable)
into one bounded anyio memory object stream.  The consumer takes batches out and,
for ``async for key, event in merged``, hands their events out one by one without
suspending.  A batch per channel operation (not an event) keeps the cost per event
low when thousands of streams deliver at once.

The source tasks are plain asyncio tasks owned by the merge, structured like a
task group (every one is cancelled and awaited before ``__aexit__`` returns) but
without anyio's per-task bookkeeping, which costs more than the rest of an idle
stream's client side (see ``Merge._spawn``).  The consumer is never inside their
scope: an exception in the loop body leaves the ``async with`` as itself, and a
failing source can stop the others without cancelling the consumer.

End of iteration is decided on the consumer side: each source task ends with an
end marker through the channel, and the consumer counts the sources it has not
seen end.  So ``add()`` from inside the loop body never races with the end of the
last source.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, overload

import anyio
from anyio.streams.memory import (
    MemoryObjectReceiveStream,
    MemoryObjectSendStream,
    MemoryObjectStreamStatistics,
)

from ._session import create_session
from ._stats import MergeStats, StreamStats

__all__ = ["DEFAULT_MAXSIZE", "Merge", "MergeFailure", "Source", "merge"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: A source: an async iterable of events (an ``EventStream``, an async generator),
#: an awaitable of one (``sdk.eventstreams.chat(...)`` not yet awaited), or a
#: zero-argument callable returning either (``lambda: sdk.eventstreams.chat(...)``).
Source: TypeAlias = (
    AsyncIterable[T]
    | Awaitable[AsyncIterable[T]]
    | Callable[[], Awaitable[AsyncIterable[T]]]
    | Callable[[], AsyncIterable[T]]
)

#: Batches that may wait between the sources and the consumer.  A batch is what one
#: read of one source decoded, so this bounds memory at about
#: ``maxsize * read window`` (256 KiB per read by default) plus one batch per
#: blocked source, while leaving room for thousands of sources to deliver at once.
DEFAULT_MAXSIZE: Final = 1024

#: Seconds a source gets to close once the merge stops it.  Closing an
#: ``EventStream`` does not wait at all; this only bounds an async generator
#: whose ``finally`` awaits something.
CLOSE_TIMEOUT: Final = 5.0


@dataclass(frozen=True, eq=False)
class MergeFailure:
    """A source failed (``on_error="yield"``): yielded in place of an event.

    It is the last item of that source; the source is closed, the others go on.

    Attributes:
        key: the failed source's key (as in the ``(key, item)`` pairs).
        error: what it raised, while opening or reading.
    """

    key: Hashable
    error: Exception

    def __str__(self) -> str:
        return f"merge source {self.key!r} failed: {type(self.error).__name__}: {self.error}"


class _End:
    """The marker a source task sends after its last batch."""

    __slots__ = ()


_END: Final = _End()


class _Stopped(BaseException):
    """The channel was closed under a source task: the merge is over, stop quietly."""


class Merge(Generic[T_co]):
    """Events from many sources as they arrive, as ``(key, event)`` pairs.

    Made by :func:`merge`; see there.  Use it inside ``async with``.
    """

    def __init__(
        self,
        sources: list[tuple[Hashable | None, Source[Any]]],
        *,
        maxsize: int,
        on_error: Literal["raise", "yield"],
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (a batch), got {maxsize}")
        if on_error not in ("raise", "yield"):
            raise ValueError(f"on_error must be 'raise' or 'yield', got {on_error!r}")
        self.maxsize = maxsize
        self.on_error = on_error
        self._send: MemoryObjectSendStream[tuple[Hashable, list[Any] | _End]]
        self._receive: MemoryObjectReceiveStream[tuple[Hashable, list[Any] | _End]]
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[Hashable, list[Any] | _End]
        ](maxsize)
        self._keys: set[Hashable] = set()
        self._next_index = 0
        #: Sources added and not yet closed by their task: closed on exit if their
        #: task never ran (the merge was left before it started).
        self._unclosed: dict[Hashable, Any] = {}
        self._pending: list[tuple[Hashable, Source[Any]]] = []
        self._stats: dict[Hashable, StreamStats] = {}  # of the sources that keep stats
        self._tasks: set[asyncio.Task[None]] = set()  # strong references, see _spawn
        self._running = 0  # sources whose end marker the consumer has not received
        #: What the consumer awaits when the buffer is empty (see _next_batch).
        self._wakeup: asyncio.Future[None] | None = None
        self._state = "new"  # new -> open -> closed
        #: What stopped every source: a source's error (on_error="raise") or a
        #: BaseException escaping a source task.
        self._error: BaseException | None = None
        # The batch being handed out event by event.
        self._key: Hashable = None
        self._batch: list[Any] = []
        self._pos = 0
        #: The session lent to ``connect()`` sources that have none (see _lend_session);
        #: an ``aiohttp.ClientSession``, typed loosely: this layer knows no transport.
        self._session: Any = None
        for key, source in sources:
            self.add(source, key=key)

    # -- sources --------------------------------------------------------------------

    def add(self, source: Source[Any], *, key: Hashable | None = None) -> Hashable:
        """Add a source, also while iterating; return its key.

        Args:
            source: as for :func:`merge`.  The merge owns it from now on and closes it.
            key: what the pairs carry for it; default: the next integer (sources
                without a key are numbered 0, 1, 2, ... in the order they were added).

        Raises:
            ValueError: ``key`` is already used in this merge.
            TypeError: ``source`` is none of the accepted kinds.
            RuntimeError: the merge is over (left, or stopped by a failure); the
                caller still owns ``source``.
        """
        if self._state == "closed" or self._error is not None:
            raise RuntimeError(
                "cannot add a source to a merge that is over (its `async with` was left, "
                "or a source failed with on_error='raise'); the source was not taken"
            )
        if not (hasattr(source, "__aiter__") or inspect.isawaitable(source) or callable(source)):
            raise TypeError(
                f"a merge source must be an async iterable of events, an awaitable of one, "
                f"or a zero-argument callable returning either; got {type(source).__name__}"
            )
        if key is None:
            while self._next_index in self._keys:
                self._next_index += 1
            key = self._next_index
            self._next_index += 1
        elif key in self._keys:
            raise ValueError(f"merge source key {key!r} is already used; keys must be unique")
        self._keys.add(key)
        self._unclosed[key] = source
        self._running += 1
        if self._state == "open":
            self._spawn(key, source)
        else:
            self._pending.append((key, source))
        return key

    @property
    def running(self) -> int:
        """Sources whose last item the consumer has not taken yet."""
        return self._running

    @property
    def stats(self) -> MergeStats:
        """Each source's :class:`~aiostreams.StreamStats` by key, and totals (events,
        bytes, reconnects...): see :class:`~aiostreams.MergeStats`.  A source appears
        once it is opened; sources that keep no stats (async generators) never do."""
        return MergeStats(self._stats)

    def statistics(self) -> MemoryObjectStreamStatistics:
        """The buffer's statistics (anyio): ``current_buffer_used`` batches of at most
        ``max_buffer_size``; ``tasks_waiting_send`` sources held back by a full buffer."""
        return self._receive.statistics()

    # -- lifetime -------------------------------------------------------------------

    async def __aenter__(self) -> Merge[T_co]:
        if self._state != "new":
            raise RuntimeError("a merge can be entered only once; make a new one with merge()")
        self._state = "open"
        pending, self._pending = self._pending, []
        for key, source in pending:
            self._spawn(key, source)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = "closed"
        # No one reads any more: a source task still sending (a failure raised while
        # it closes, into a full buffer) must stop instead of waiting forever.
        self._receive.close()
        try:
            await _cancel_and_wait(self._tasks)  # each task closes its source as it stops
        finally:
            self._batch = []
            self._send.close()
            with anyio.CancelScope(shield=True):
                await self._close_leftovers()
                session, self._session = self._session, None
                if session is not None:  # every source that used it is closed by now
                    await session.close()

    def _lend_session(self, source: object) -> None:
        """Give a ``connect()`` source that has no session the merge's one (made at the
        first such source, closed on exit): ``merge(*[connect(u) for u in urls])``
        works as written, over one connection pool."""
        if getattr(source, "wants_session", False):
            if self._session is None:
                self._session = create_session()
            source.use_session(self._session)  # type: ignore[attr-defined]

    def _spawn(self, key: Hashable, source: Source[Any]) -> None:
        # A plain asyncio task per source, not an anyio task group's: with anyio 4.16
        # ``start_soon`` costs ~4.3 KiB per task against ~1.2 KiB here, which alone
        # would put an idle merged stream over its 16 KiB budget.  The structure is
        # the same: every task is cancelled and awaited before ``__aexit__`` returns.
        task = asyncio.get_running_loop().create_task(self._run_source(key, source))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._error is None and self._state == "open":
            if task.cancelled():
                # Not by the merge (it cancels only after setting _error or closing):
                # its end marker will never come, so stop rather than wait forever.
                self._stop_all(
                    RuntimeError(
                        "a merge source task was cancelled from outside the merge; "
                        "every source was stopped"
                    )
                )
            elif (crash := task.exception()) is not None:
                self._stop_all(crash)  # a BaseException: Exceptions are handled in the task
        if self._error is not None and not self._tasks:
            # Every source is closed by now: ending the channel lets the consumer
            # drain the buffer, then see the error.
            self._send.close()
            self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _stop_all(self, error: BaseException) -> None:
        self._error = error
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def _close_leftovers(self) -> None:
        leftovers, self._unclosed = self._unclosed, {}
        for source in leftovers.values():
            await _close(source)

    # -- one task per source --------------------------------------------------------

    async def _run_source(self, key: Hashable, source: Source[Any]) -> None:
        """Open the source, move its batches into the channel, close it; report how
        it ended (end marker, or failure per ``on_error``)."""
        deliver = self._deliver
        iterable: Any = None
        iterator: Any = None
        try:
            try:
                try:
                    iterable = await _open(source)
                except BaseException:
                    _forget_awaitable(source)
                    raise
                self._unclosed[key] = iterable
                self._lend_session(iterable)
                stats = getattr(iterable, "stats", None)
                if isinstance(stats, StreamStats):
                    self._stats[key] = stats
                # Fewest frames per waiting source (memory per idle stream):
                # EventStream.next_batch, else batches(), else one event at a time.
                next_batch = getattr(iterable, "next_batch", None)
                batches = getattr(iterable, "batches", None)
                if callable(next_batch):
                    while (batch := await next_batch()) is not None:
                        if batch:
                            await deliver(key, batch)
                elif callable(batches):
                    iterator = batches()
                    async for batch in iterator:
                        if batch:
                            await deliver(key, batch)
                else:
                    iterator = aiter(iterable)
                    async for event in iterator:
                        await deliver(key, [event])
            finally:
                self._unclosed.pop(key, None)
                if iterable is not None:
                    # Bounded: a source's own cleanup must not hold the merge open.
                    with anyio.move_on_after(CLOSE_TIMEOUT):
                        if iterator is not None and iterator is not iterable:
                            await _close(iterator)
                        await _close(iterable)
        except Exception as exc:  # noqa: BLE001 - handed to the failure policy
            await self._failed(key, exc)
            return
        except _Stopped:
            return
        await self._deliver_end(key)

    async def _deliver(self, key: Hashable, batch: list[Any] | _End) -> None:
        send = self._send
        try:
            try:
                send.send_nowait((key, batch))  # no checkpoint when there is room
            except anyio.WouldBlock:
                await send.send((key, batch))  # backpressure: wait for the consumer
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise _Stopped from None
        if self._wakeup is not None:
            self._wake()

    async def _deliver_end(self, key: Hashable) -> None:
        try:
            await self._deliver(key, _END)
        except _Stopped:
            pass

    async def _failed(self, key: Hashable, exc: Exception) -> None:
        if self.on_error == "yield":
            try:
                await self._deliver(key, [MergeFailure(key, exc)])
            except _Stopped:
                return
            await self._deliver_end(key)
        elif self._error is None:
            if sys.version_info >= (3, 11):
                exc.add_note(f"raised by merge source {key!r}; the other sources were closed")
            self._stop_all(exc)

    # -- consuming ------------------------------------------------------------------

    def __aiter__(self) -> Merge[T_co]:
        return self

    async def __anext__(self) -> tuple[Hashable, T_co]:
        pos = self._pos
        batch = self._batch
        if pos < len(batch):
            self._pos = pos + 1
            return self._key, batch[pos]
        key, batch = await self._next_batch()
        self._key = key
        self._batch = batch
        self._pos = 1
        return key, batch[0]

    def batches(self) -> _Batches[T_co]:
        """Iterate over ``(key, events)``: the events of one source decoded together.

        The list is never empty; the rest of a batch already half handed out by
        ``async for`` comes first.  With ``on_error="yield"`` a failure comes as a
        one-item list ``[MergeFailure(...)]``.  One await per batch instead of one per
        event.
        """
        return _Batches(self)

    async def _take_batch(self) -> tuple[Hashable, list[Any]]:
        pos = self._pos
        batch = self._batch
        if pos < len(batch):
            self._batch = []
            self._pos = 0
            return self._key, batch[pos:]
        return await self._next_batch()

    async def _next_batch(self) -> tuple[Hashable, list[Any]]:
        if self._state != "open":
            raise RuntimeError(
                "iterate a merge inside its `async with` block: "
                "`async with merge(...) as merged: async for key, event in merged: ...`"
            )
        receive = self._receive
        while self._running:
            try:
                key, batch = receive.receive_nowait()
            except anyio.WouldBlock:
                # Wait for the buffer, not for an item: anyio's receive() loses the
                # item handed to it if the consumer is cancelled before it resumes
                # (asyncio.timeout, task.cancel), and the consumer may go on after.
                self._wakeup = asyncio.get_running_loop().create_future()
                try:
                    await self._wakeup
                finally:
                    self._wakeup = None
                continue
            except anyio.EndOfStream:
                break  # only ever closed after a failure stopped every source
            if isinstance(batch, _End):
                self._running -= 1
                continue
            return key, batch
        self._batch = []
        self._pos = 0
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration


async def _cancel_and_wait(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until they are all done, even if the caller is
    cancelled meanwhile (that cancellation is re-raised once they are done)."""
    for task in tasks:
        task.cancel()
    cancelled = False
    with anyio.CancelScope(shield=True):
        while tasks:
            cancelled |= await _wait_interrupted(set(tasks))
    if cancelled:
        raise asyncio.CancelledError


async def _wait_interrupted(tasks: set[asyncio.Task[None]]) -> bool:
    """Wait for ``tasks``; True if the wait itself was cancelled."""
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError:
        return True
    return False


class _Batches(Generic[T_co]):
    __slots__ = ("_merge",)

    def __init__(self, merge: Merge[T_co]) -> None:
        self._merge = merge

    def __aiter__(self) -> _Batches[T_co]:
        return self

    async def __anext__(self) -> tuple[Hashable, list[T_co]]:
        return await self._merge._take_batch()


# -- sources of every kind ------------------------------------------------------------


async def _open(source: Source[T]) -> AsyncIterable[T]:
    """The async iterable behind ``source`` (calling and awaiting as needed)."""
    if hasattr(source, "__aiter__"):
        return source  # type: ignore[return-value]
    value: Any = source
    if not inspect.isawaitable(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    if not hasattr(value, "__aiter__"):
        raise TypeError(
            f"a merge source factory must return an async iterable of events (or an "
            f"awaitable of one); got {type(value).__name__}"
        )
    return value  # type: ignore[no-any-return]


def _forget_awaitable(source: object) -> None:
    """A coroutine given as a source and never awaited: close it, so Python does not
    warn that it was never awaited."""
    if inspect.iscoroutine(source) and inspect.getcoroutinestate(source) == "CORO_CREATED":
        source.close()


async def _close(obj: object) -> None:
    """Release ``obj`` whatever it is: ``aclose()`` if it has one, a coroutine never
    started is closed, anything else (a factory) holds nothing."""
    if inspect.iscoroutine(obj):
        _forget_awaitable(obj)
        return
    aclose = getattr(obj, "aclose", None)
    if callable(aclose):
        await aclose()


# -- the entry point ------------------------------------------------------------------


@overload
def merge(
    *sources: Source[T],
    maxsize: int = ...,
    on_error: Literal["raise"] = ...,
    **named_sources: Source[T],
) -> Merge[T]: ...


@overload
def merge(
    *sources: Source[T],
    maxsize: int = ...,
    on_error: Literal["yield"],
    **named_sources: Source[T],
) -> Merge[T | MergeFailure]: ...


def merge(
    *sources: Source[Any],
    maxsize: int = DEFAULT_MAXSIZE,
    on_error: Literal["raise", "yield"] = "raise",
    **named_sources: Source[Any],
) -> Merge[Any]:
    """Merge many event streams into one, as ``(key, event)`` pairs as they arrive.

    ::

        async with merge(
            *(lambda p=p: sdk.eventstreams.chat(request={"prompt": p}) for p in prompts)
        ) as merged:
            async for key, event in merged:        # key: 0, 1, 2, ... (position)
                ...
            # or, one await per network read:  async for key, events in merged.batches()

    Args:
        *sources: each an async iterable of events (an ``EventStream``, an async
            generator), an awaitable of one (an SDK call not yet awaited), or a
            zero-argument callable returning either.  Prefer callables or awaitables:
            then the connection is opened inside the merge, concurrently with the
            others, and an error opening it follows ``on_error`` like any other.
            Keyed by position: 0, 1, 2, ...
        **named_sources: the same, keyed by their name (``merge(a=..., b=...)``).
        maxsize: how many batches (what one read of one source decoded; a single
            event for a source without ``batches()``) may wait for the consumer.
            When it is full, the sources wait: a slow consumer slows the producers
            (and, through TCP, the servers) instead of growing memory.
        on_error: what a source raising an ``Exception`` (opening or reading) does:

            * ``"raise"`` (default): every other source is cancelled and closed; the
              consumer gets the items already buffered, then the error itself (same
              exception object, with a note naming the source's key) is raised from
              the iteration.  Leaving the loop before reaching it discards it.
            * ``"yield"``: the other sources go on; the failure arrives as the failed
              source's last item, ``(key, MergeFailure(key, error))``.

    Returns:
        A :class:`Merge`: enter it with ``async with`` (the sources start then), then
        iterate it (``async for``, or ``.batches()``), and ``add()`` sources at any
        time while it is open.  Iteration ends when every source has ended.

    Guarantees: each source's events keep their order; nothing is dropped or
    repeated.  The merge owns its sources: leaving the ``async with`` (after the end,
    ``break``, an exception, cancellation) cancels every source task, closes every
    stream and releases every connection before ``__aexit__`` returns; no task is
    left behind.  Cancellation and any other ``BaseException`` is never turned into a
    failure: one escaping a source stops every source and is raised as with
    ``"raise"``.

    Memory: at most ``maxsize`` batches in the buffer plus one held by each source
    waiting for room; aiohttp's read window then stops reading the sockets, and TCP
    flow control slows the servers.
    """
    named: list[tuple[Hashable | None, Source[Any]]] = [(None, s) for s in sources]
    named += list(named_sources.items())
    return Merge(named, maxsize=maxsize, on_error=on_error)
