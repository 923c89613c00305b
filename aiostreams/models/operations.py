"""What each eventstreams operation yields: one :class:`~aiostreams.EventSchema` each.

These declarations are the whole typed surface of the seven operations (design.md
§4); the SDK pairs each with its HTTP method and path.
"""

from __future__ import annotations

from .._typed import EventSchema
from .shared import (
    ChatCompletionEvent,
    DifferentDataSchemas,
    HeartbeatEvent,
    JSONEvent,
    MessageEvent,
    RichCompletionEvent,
    SentinelEvent,
    TextEvent,
    URLEvent,
)

__all__ = [
    "CHAT",
    "CHAT_JSON_RESPONSE",
    "CHAT_SKIP_SENTINEL",
    "DIFFERENT_DATA_SCHEMAS",
    "JSON",
    "MULTILINE",
    "RICH",
    "TEXT",
]

#: chat: the chat events, then the ``[DONE]`` sentinel yielded as a SentinelEvent.
CHAT: EventSchema[ChatCompletionEvent | SentinelEvent] = EventSchema(
    ChatCompletionEvent, sentinel="[DONE]", sentinel_type=SentinelEvent
)

#: chat with ``"stream": false``: the JSON answer's type.
CHAT_JSON_RESPONSE = list[ChatCompletionEvent]

#: chat_skip_sentinel: ``[DONE]`` ends the stream; nothing after it is decoded.
CHAT_SKIP_SENTINEL: EventSchema[ChatCompletionEvent] = EventSchema(
    ChatCompletionEvent, sentinel="[DONE]"
)

#: different_data_schemas: one Struct, the data type picked by the event name.
DIFFERENT_DATA_SCHEMAS: EventSchema[DifferentDataSchemas] = EventSchema(
    DifferentDataSchemas,
    data_types={
        "message": MessageEvent,
        "url": URLEvent,
        "array": list[int],
        "primitive": bool | float,
    },
)

JSON: EventSchema[JSONEvent] = EventSchema(JSONEvent)

#: multiline: data lines joined with ``\n``, taken as text.
MULTILINE: EventSchema[TextEvent] = EventSchema(TextEvent)

RICH: EventSchema[RichCompletionEvent | HeartbeatEvent] = EventSchema(
    RichCompletionEvent, HeartbeatEvent
)

TEXT: EventSchema[TextEvent] = EventSchema(TextEvent)
