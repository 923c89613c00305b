"""Fan-in beyond one event loop and one machine, on Ray (``pip install 'aiostreams[ray]'``).

``merge(sources, workers=N)`` shards streams over N Ray async actors; each runs
:func:`aiostreams.merge` with resume (:func:`aiostreams.connect`) on its own loop
and streams the events back in batches (Ray streaming generators, with
backpressure), or runs a handler in place and returns only its results.  The same
code runs on the cores of one machine (``ray.init()``) and on a Ray cluster
(``ray.init(address=...)``).  This is the only part of aiostreams that imports Ray.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, Final, Literal

try:
    import ray  # noqa: F401 - fail here, with the fix, not deep inside
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("aiostreams.distributed needs Ray: pip install 'aiostreams[ray]'") from exc

from .._checkpoint import CheckpointStore
from ._merge import DistributedMerge, RemoteStreamError
from ._spec import StreamSpec

__all__ = ["DistributedMerge", "RemoteStreamError", "StreamSpec", "merge"]

#: Messages (each up to ``max_items`` events) that may wait in the caller.
DEFAULT_MAXSIZE: Final = 64
#: Events a worker gathers into one Ray object at most.
DEFAULT_MAX_ITEMS: Final = 4096


def merge(
    sources: Iterable[str | StreamSpec] | Mapping[Hashable, str | StreamSpec],
    *,
    workers: int = 2,
    handler: Callable[[Hashable, list[Any]], Awaitable[Any]] | None = None,
    checkpoints: CheckpointStore | None = None,
    on_error: Literal["raise", "yield"] = "raise",
    maxsize: int = DEFAULT_MAXSIZE,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_restarts: int = 3,
    max_worker_losses: int = 10,
    actor_options: Mapping[str, Any] | None = None,
) -> DistributedMerge[Any]:
    """Merge many streams over ``workers`` Ray actors, used like :func:`aiostreams.merge`.

    ::

        async with distributed.merge(urls, workers=2) as merged:
            async for key, event in merged:      # key: the URL's position (or dict key)
                ...

    Args:
        sources: URL strings (a GET each) or :class:`StreamSpec` (method, headers,
            body, schema, resume options), as a list (keys 0, 1, 2, ...) or a
            mapping (its keys).  Each is opened inside a worker.
        workers: how many Ray actors share the streams (round robin); at most one
            per stream.
        handler: process in place: ``async def handler(key, events) -> result``
            runs inside the workers on each batch of a stream (in order, one batch
            at a time per worker).  Only results travel back: the merge yields
            ``(key, result)`` for each result that is not ``None``.
        checkpoints: a :class:`~aiostreams.CheckpointStore`: streams start from its
            ids and each stream's id is saved once the consumer is done with a batch
            (with a handler: once the handler is done with it).
        on_error: a stream that fails in its worker (HTTP error, bad event...):
            ``"raise"`` it from the iteration as :class:`RemoteStreamError`, or
            ``"yield"`` it as that stream's last item, ``(key, MergeFailure)``.
        maxsize: worker messages that may wait in the caller; then the workers wait
            (Ray pauses their generators), then the servers (TCP).
        max_items: events a worker gathers into one message at most.
        max_restarts: how often Ray restarts a dead worker process (``max_restarts``
            of the actor); past it a new actor takes over.
        max_worker_losses: lost workers per worker slot before the merge gives up.
        actor_options: more Ray actor options (``num_cpus``, ``resources``,
            ``runtime_env``, ``scheduling_strategy``; default ``"SPREAD"``).

    Guarantees: each stream's events keep their order.  A lost worker's streams are
    reopened on the restarted (or a new) worker, each from the last event id the
    caller received (``Last-Event-ID``): nothing is lost, and nothing repeats from
    a server that resumes after that id, except events that came after the stream's
    last ``id:`` (they share it).  Leaving the ``async with`` (end, ``break``, error,
    cancellation) kills every actor and so closes every connection.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if maxsize < 1 or max_items < 1:
        raise ValueError(f"maxsize and max_items must be at least 1, got {maxsize}, {max_items}")
    if max_restarts < 0 or max_worker_losses < 0:
        raise ValueError("max_restarts and max_worker_losses must be >= 0")
    if on_error not in ("raise", "yield"):
        raise ValueError(f"on_error must be 'raise' or 'yield', got {on_error!r}")
    if handler is not None and not callable(handler):
        raise TypeError(f"handler must be an async callable (key, events), got {handler!r}")
    pairs = sources.items() if isinstance(sources, Mapping) else enumerate(sources)
    specs: dict[Hashable, StreamSpec] = {}
    for key, source in pairs:
        if isinstance(source, str):
            source = StreamSpec(source)
        elif not isinstance(source, StreamSpec):
            raise TypeError(
                f"a distributed merge source must be a URL string or a StreamSpec, "
                f"got {type(source).__name__} for key {key!r}"
            )
        specs[key] = source
    return DistributedMerge(
        specs,
        workers=workers,
        handler=handler,
        checkpoints=checkpoints,
        maxsize=maxsize,
        on_error=on_error,
        max_restarts=max_restarts,
        max_worker_losses=max_worker_losses,
        max_items=max_items,
        actor_options=dict(actor_options or {}),
    )
