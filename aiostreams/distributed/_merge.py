"""``distributed.merge``: the caller's side (one pump task per worker, one queue).

Each pump drives one worker's ``run()`` streaming generator, notes the id after
every batch it *receives* (what a replacement resumes from) and puts the
messages in one bounded queue that the consumer empties.  When the worker dies
the generator raises; the pump waits for Ray to restart the actor (or makes a new
one once its restarts are spent) and calls ``run()`` again with the streams that
have not ended, each resuming from the last id the caller received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeVar

import ray
from ray.exceptions import (
    ActorUnavailableError,
    ObjectLostError,
    OwnerDiedError,
    RayActorError,
)

from .._checkpoint import CheckpointStore
from .._fanin import MergeFailure
from ._spec import StreamSpec
from ._worker import ENDED, EVENTS, FAILED, PACKED, RESULTS, Handler, Message, Worker, unpack_events

__all__ = ["DistributedMerge", "RemoteStreamError"]

T = TypeVar("T")

#: What a dead or unreachable worker looks like from the caller.
_WORKER_LOST: Final = (RayActorError, ActorUnavailableError, ObjectLostError, OwnerDiedError)
#: Seconds a restarted (or new) worker gets to answer before the pump gives up.
READY_TIMEOUT: Final = 60.0

_RemoteWorker: Any = ray.remote(Worker)


class RemoteStreamError(Exception):
    """A stream failed inside a worker (its exception, by type name and message).

    Attributes:
        key: the stream's key.
        type_name: the name of the exception the worker saw (e.g. ``"SDKError"``).
    """

    def __init__(self, key: Hashable, type_name: str, message: str) -> None:
        super().__init__(f"stream {key!r} failed in a worker: {type_name}: {message}")
        self.key = key
        self.type_name = type_name


class _PumpFailed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class DistributedMerge(Generic[T]):
    """Events (or handler results) from streams spread over Ray workers.

    Made by :func:`aiostreams.distributed.merge`; see there.

    Attributes:
        worker_losses: how many times a worker was lost and its streams reopened.
        actors: the Ray actor handles (one per worker slot; replaced if one is gone).
    """

    def __init__(
        self,
        streams: dict[Hashable, StreamSpec],
        *,
        workers: int,
        handler: Handler | None,
        checkpoints: CheckpointStore | None,
        maxsize: int,
        on_error: Literal["raise", "yield"],
        max_restarts: int,
        max_worker_losses: int,
        max_items: int,
        actor_options: dict[str, Any],
    ) -> None:
        self._specs = streams
        self._handler = handler
        self._checkpoints = checkpoints
        self._on_error = on_error
        self._max_restarts = max_restarts
        self._max_worker_losses = max_worker_losses
        self._max_items = max_items
        self._actor_options = {"scheduling_strategy": "SPREAD", **actor_options}
        self.workers = max(1, min(workers, len(streams)))
        self.worker_losses = 0
        self.actors: list[Any] = []
        self._resume: dict[Hashable, str] = {}
        for key, spec in streams.items():
            saved = checkpoints.load(str(key)) if checkpoints is not None else ""
            self._resume[key] = saved or spec.last_event_id
        self._queue: asyncio.Queue[Message | _PumpFailed] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = len(streams)
        self._state = "new"
        # The message being handed out, and the batch within it.
        self._message: Message = []
        self._mpos = 0
        self._key: Hashable = None
        self._items: list[Any] = []
        self._ipos = 0
        self._pending_id: tuple[str, str] | None = None  # the current batch's stream, id
        self._save: tuple[str, str] | None = None  # saved once the consumer is back

    # -- lifetime -----------------------------------------------------------------

    async def __aenter__(self) -> DistributedMerge[T]:
        if self._state != "new":
            raise RuntimeError("a distributed merge can be entered only once")
        self._state = "open"
        keys = list(self._specs)
        self.actors = [self._new_actor() for _ in range(self.workers)]
        loop = asyncio.get_running_loop()
        for index in range(self.workers):
            shard = keys[index :: self.workers]
            self._tasks.append(loop.create_task(self._pump(index, shard)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = "closed"
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))
        for actor in self.actors:
            ray.kill(actor, no_restart=True)  # ends its run() and its connections
        if self._checkpoints is not None:
            self._checkpoints.flush()

    def _new_actor(self) -> Any:
        return _RemoteWorker.options(
            max_restarts=self._max_restarts, max_task_retries=0, **self._actor_options
        ).remote()

    # -- one pump per worker --------------------------------------------------------

    async def _pump(self, index: int, keys: list[Hashable]) -> None:
        try:
            await self._pump_shard(index, keys)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            await self._queue.put(_PumpFailed(exc))

    async def _pump_shard(self, index: int, keys: list[Hashable]) -> None:
        remaining = set(keys)
        losses = 0
        while remaining:
            streams = [(k, self._specs[k], self._resume[k]) for k in keys if k in remaining]
            generator = self.actors[index].run.remote(streams, self._handler, self._max_items)
            try:
                async for ref in generator:
                    message: Message = await ref
                    for key, kind, _, lid in message:
                        if kind == EVENTS or kind == RESULTS or kind == PACKED:
                            self._resume[key] = lid  # received: a replacement resumes here
                        else:
                            remaining.discard(key)
                    await self._queue.put(message)
            except _WORKER_LOST as exc:
                losses += 1
                self.worker_losses += 1
                if losses > self._max_worker_losses:
                    raise RuntimeError(
                        f"worker {index} was lost {losses} times; gave up on its "
                        f"{len(remaining)} streams"
                    ) from exc
                await self._ready(index)
                continue
            if remaining:
                raise RuntimeError(
                    f"worker {index} ended without ending {len(remaining)} of its streams"
                )

    async def _ready(self, index: int) -> None:
        """Wait for Ray to restart worker ``index``; replace it if it is gone for good."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while True:
            try:
                await asyncio.wait_for(self.actors[index].ping.remote(), deadline - loop.time())
                return
            except ActorUnavailableError:  # noqa: PERF203 - restarting: ask again shortly
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(0.1)
            except (RayActorError, asyncio.TimeoutError):  # gone for good (or hung)
                break
        ray.kill(self.actors[index], no_restart=True)
        self.actors[index] = self._new_actor()

    # -- consuming ------------------------------------------------------------------

    def __aiter__(self) -> DistributedMerge[T]:
        return self

    async def __anext__(self) -> tuple[Hashable, T]:
        items = self._items
        pos = self._ipos
        if pos < len(items):
            self._ipos = pos + 1
            if self._ipos == len(items):
                self._commit()
            return self._key, items[pos]
        key, batch = await self._take_batch()
        self._items = batch
        self._ipos = 1
        if len(batch) == 1:
            self._commit()
        return key, batch[0]

    def batches(self) -> _Batches[T]:
        """Iterate over ``(key, events)`` (or ``(key, [result])``), one list per batch."""
        return _Batches(self)

    def _commit(self) -> None:
        # The consumer has the batch's last item: its id is saved when it comes back.
        pending = self._pending_id
        if pending is not None:
            self._save = pending

    async def _take_batch(self) -> tuple[Hashable, list[Any]]:
        if self._state != "open":
            raise RuntimeError(
                "iterate a distributed merge inside its `async with` block: "
                "`async with distributed.merge(...) as merged: async for ...`"
            )
        save, self._save = self._save, None
        if save is not None and self._checkpoints is not None:
            self._checkpoints.save(*save)
        items = self._items
        if self._ipos < len(items):  # the rest of a batch half handed out
            self._items = []
            return self._key, items[self._ipos :]
        self._pending_id = None
        while True:
            message = self._message
            while self._mpos < len(message):
                key, kind, payload, lid = message[self._mpos]
                self._mpos += 1
                if kind == PACKED:
                    kind, payload = EVENTS, unpack_events(payload)
                if kind == EVENTS or kind == RESULTS:
                    batch = payload if kind == EVENTS else [payload]
                    if kind == RESULTS and payload is None:  # an acknowledgement only
                        if self._checkpoints is not None:
                            self._checkpoints.save(str(key), lid)
                        continue
                    self._key = key
                    self._pending_id = (str(key), lid)
                    return key, batch
                if kind == ENDED:
                    self._running -= 1
                elif kind == FAILED:
                    self._running -= 1
                    error = RemoteStreamError(key, *payload)
                    if self._on_error == "raise":
                        raise error
                    self._key = key
                    return key, [MergeFailure(key, error)]
            if not self._running:
                raise StopAsyncIteration
            got = await self._queue.get()
            if isinstance(got, _PumpFailed):
                raise got.error
            self._message = got
            self._mpos = 0


class _Batches(Generic[T]):
    __slots__ = ("_merge",)

    def __init__(self, merge: DistributedMerge[T]) -> None:
        self._merge = merge

    def __aiter__(self) -> _Batches[T]:
        return self

    async def __anext__(self) -> tuple[Hashable, list[T]]:
        merge = self._merge
        key, batch = await merge._take_batch()
        merge._items = []
        merge._ipos = 0
        merge._commit()
        return key, batch
