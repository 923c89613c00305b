"""aiostreams: fast, typed, asyncio-native Server-Sent Events.

The sans-IO layer (``SSEDecoder``, ``EventSchema``, the encoder) is imported
eagerly and needs only msgspec; everything that does I/O (aiohttp, anyio) is
imported on first use, so ``from aiostreams import SSEDecoder`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._encoding import encode_event, encode_sse
from ._events import ServerSentEvent
from ._framing import SSEDecoder
from ._typed import EventSchema, TypedDecoder

if TYPE_CHECKING:
    from ._checkpoint import CheckpointStore, FileCheckpoints, MemoryCheckpoints, track
    from ._connect import EventSource, Reconnect, ResumeRequest, connect
    from ._fanin import Merge, MergeFailure, merge
    from ._request import DEFAULT_SENSITIVE_HEADERS
    from ._retry import BackoffStrategy, RetryConfig
    from ._session import create_session
    from ._stats import MergeStats, StreamStats
    from ._stream import EventStream
    from .sdk import SDK

__all__ = [
    "DEFAULT_SENSITIVE_HEADERS",
    "SDK",
    "BackoffStrategy",
    "CheckpointStore",
    "EventSchema",
    "EventSource",
    "EventStream",
    "FileCheckpoints",
    "MemoryCheckpoints",
    "Merge",
    "MergeFailure",
    "MergeStats",
    "Reconnect",
    "ResumeRequest",
    "RetryConfig",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamStats",
    "TypedDecoder",
    "connect",
    "create_session",
    "encode_event",
    "encode_sse",
    "merge",
    "track",
]
__version__ = "0.1.0"

#: Public names of the I/O layers, and the module each is imported from on first use.
_LAZY = {
    "CheckpointStore": "._checkpoint",
    "FileCheckpoints": "._checkpoint",
    "MemoryCheckpoints": "._checkpoint",
    "track": "._checkpoint",
    "EventSource": "._connect",
    "Reconnect": "._connect",
    "ResumeRequest": "._connect",
    "connect": "._connect",
    "Merge": "._fanin",
    "MergeFailure": "._fanin",
    "merge": "._fanin",
    "DEFAULT_SENSITIVE_HEADERS": "._request",
    "BackoffStrategy": "._retry",
    "RetryConfig": "._retry",
    "create_session": "._session",
    "EventStream": "._stream",
    "MergeStats": "._stats",
    "StreamStats": "._stats",
    "SDK": ".sdk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiostreams' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
