"""Checkpoints: each stream's last delivered event id, kept so a restart resumes it.

A store maps a stream's key (a ``str``) to the last event id its consumer
received.  Resuming is ``connect(url, last_event_id=store.load(key))``: the
request carries ``Last-Event-ID`` and a compliant server resumes after it.

:func:`track` saves while you iterate, and only what the loop has *finished*
with: an item's id is saved when the loop asks for the next one (or leaves).
So a crash repeats at most the item being processed (plus, for
:class:`FileCheckpoints`, what arrived since its last write), and never skips
one.  ``aiostreams.distributed.merge(..., checkpoints=store)`` saves the same way.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import AsyncIterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CheckpointStore", "FileCheckpoints", "MemoryCheckpoints", "track"]

T = TypeVar("T")

#: Seconds between two writes of a :class:`FileCheckpoints` (saves in between are
#: batched): a crash repeats at most this much of each stream, never skips any.
DEFAULT_FLUSH_INTERVAL: Final = 1.0


@runtime_checkable
class CheckpointStore(Protocol):
    """Where the last delivered event id of each stream is kept."""

    def load(self, key: str) -> str:
        """The last event id saved for ``key``; ``""`` (start over) if none."""
        ...

    def save(self, key: str, last_event_id: str) -> None:
        """Record that the consumer received ``key``'s events up to ``last_event_id``."""
        ...

    def flush(self) -> None:
        """Make every save so far durable (a no-op for a store in memory)."""
        ...


class MemoryCheckpoints:
    """A :class:`CheckpointStore` in a dict: survives a lost worker, not a lost process."""

    def __init__(self, ids: Mapping[str, str] | None = None) -> None:
        self.ids: dict[str, str] = dict(ids or {})

    def load(self, key: str) -> str:
        return self.ids.get(key, "")

    def save(self, key: str, last_event_id: str) -> None:
        self.ids[key] = last_event_id

    def flush(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<MemoryCheckpoints {len(self.ids)} streams>"


class FileCheckpoints(MemoryCheckpoints):
    """A :class:`CheckpointStore` in a JSON file, replaced atomically on each write.

    Saves are kept in memory and written at most every ``flush_interval`` seconds
    (on the first save after the interval), and by :meth:`flush`; a write is a
    temporary file renamed over the old one, so a crash leaves either the old or
    the new file, never a torn one.  Use it as a context manager (or call
    :meth:`flush`) so the last saves are written.

    Args:
        path: the JSON file (``{"stream key": "last event id", ...}``); read if it exists.
        flush_interval: seconds between writes; ``0`` writes on every save (slow with
            thousands of streams).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, flush_interval: float = DEFAULT_FLUSH_INTERVAL
    ) -> None:
        if flush_interval < 0:
            raise ValueError(f"flush_interval must be >= 0 seconds, got {flush_interval}")
        self.path = Path(path)
        self.flush_interval = flush_interval
        ids: dict[str, str] = {}
        if self.path.exists():
            try:
                loaded: Any = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read checkpoints from {self.path}: {exc}") from None
            if not isinstance(loaded, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
            ):
                raise ValueError(
                    f"checkpoint file {self.path} is not a JSON object of strings to strings"
                )
            ids = loaded
        super().__init__(ids)
        self._dirty = False
        self._written = time.monotonic()

    def save(self, key: str, last_event_id: str) -> None:
        self.ids[key] = last_event_id
        self._dirty = True
        if time.monotonic() - self._written >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        fd, tmp = tempfile.mkstemp(prefix=".checkpoints-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(self.ids, file, separators=(",", ":"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False
        self._written = time.monotonic()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def __repr__(self) -> str:
        return f"<FileCheckpoints {self.path.name!r} {len(self.ids)} streams>"


def event_id(item: Any) -> str | None:
    """The SSE id an event carries (``ServerSentEvent.id``, or a Struct's ``id`` field)."""
    value = getattr(item, "id", None)
    return value if isinstance(value, str) else None


class track(Generic[T]):
    """Iterate ``items``, saving each stream's id once the loop is done with an event.

    ::

        store = FileCheckpoints("ids.json")
        sources = {name: connect(url, last_event_id=store.load(name)) for name, url in urls}
        async with merge(**sources) as merged:
            async for name, event in track(merged, store):
                ...  # saved when the loop comes back for the next event

    Args:
        items: a merge (``(key, event)`` pairs; the key is saved as ``str(key)``) or,
            with ``key=``, one stream (``connect(...)``).
        store: where ids go (:class:`MemoryCheckpoints`, :class:`FileCheckpoints`, yours).
        key: the stream's key when ``items`` is a single stream.

    An event's id is saved when the loop asks for the next item, or when the items
    end; leaving the loop early (``break``, an exception) does not save the last
    one, so it repeats after a restart (at least once, never skipped).  Events need
    an id: raw ``ServerSentEvent`` always has one; a typed Struct needs an ``id: str``
    field (filled from the SSE ``id:``); an event without one saves nothing.
    """

    def __init__(
        self, items: AsyncIterable[T], store: CheckpointStore, *, key: str | None = None
    ) -> None:
        self._items = aiter(items)
        self._store = store
        self._key = key
        self._pending: tuple[str, str] | None = None

    def __aiter__(self) -> track[T]:
        return self

    async def __anext__(self) -> T:
        if self._pending is not None:
            self._store.save(*self._pending)
            self._pending = None
        item = await anext(self._items)  # StopAsyncIteration ends this too
        key = self._key
        if key is None:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(
                    "track() without key= expects (key, event) pairs (a merge); "
                    f"got {type(item).__name__}: pass key= for a single stream"
                )
            lid = event_id(item[1])
            if lid is not None:
                self._pending = (str(item[0]), lid)
        else:
            lid = event_id(item)
            if lid is not None:
                self._pending = (key, lid)
        return item
