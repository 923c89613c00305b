"""aiostreams: fast, typed, asyncio-native Server-Sent Events."""

from ._connect import EventSource, Reconnect, connect
from ._encoding import encode_event, encode_sse
from ._events import ServerSentEvent
from ._fanin import Merge, MergeFailure, merge
from ._framing import SSEDecoder
from ._retry import BackoffStrategy, RetryConfig
from ._session import create_session
from ._stream import EventStream
from ._typed import EventSchema, TypedDecoder
from .sdk import SDK

__all__ = [
    "SDK",
    "BackoffStrategy",
    "EventSchema",
    "EventSource",
    "EventStream",
    "Merge",
    "MergeFailure",
    "Reconnect",
    "RetryConfig",
    "SSEDecoder",
    "ServerSentEvent",
    "TypedDecoder",
    "connect",
    "create_session",
    "encode_event",
    "encode_sse",
    "merge",
]
__version__ = "0.1.0"
