"""aiostreams: fast, typed, asyncio-native Server-Sent Events."""

from ._encoding import encode_event, encode_sse
from ._events import ServerSentEvent
from ._framing import SSEDecoder
from ._typed import EventSchema, TypedDecoder

__all__ = [
    "EventSchema",
    "SSEDecoder",
    "ServerSentEvent",
    "TypedDecoder",
    "encode_event",
    "encode_sse",
]
__version__ = "0.1.0"
