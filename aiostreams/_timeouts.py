"""A deadline around one await, on every supported Python (3.10 has no ``asyncio.timeout``).

Used by the event-level timeouts of ``EventStream`` and by ``connect()``: one
deadline per *read* (per chunk), never a timer per event.  The byte-level idle
timeout needs none of this: aiohttp's ``sock_read`` enforces it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DeadlineExceeded", "await_by"]

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """Internal: the deadline of :func:`await_by` passed.  Callers turn it into a
    :class:`~aiostreams.errors.StreamTimeout` naming which bound it was.

    Deliberately not a ``TimeoutError``: that is an ``OSError`` (which the
    transport reports as a lost connection) and aiohttp's own read timeout is one.
    """


if sys.version_info >= (3, 11):
    import asyncio

    async def await_by(deadline: float, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()``, cancelled at event-loop time ``deadline``.

        Whatever is ready without suspending is returned even past the deadline
        (buffered bytes win over a timeout that would discard them).

        Raises:
            DeadlineExceeded: the deadline passed first.
        """
        scope = asyncio.timeout_at(deadline)
        try:
            async with scope:
                return await make()
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded from None
            raise  # e.g. aiohttp's own read timeout: not ours to rename

else:  # pragma: no cover - exercised on Python 3.10 only
    import anyio

    async def await_by(deadline: float, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()``, cancelled at event-loop time ``deadline`` (see above)."""
        with anyio.CancelScope(deadline=deadline) as scope:
            return await make()
        assert scope.cancelled_caught
        raise DeadlineExceeded
