"""The seven eventstreams operations as data: method, path, event schema, request type.

Nothing here sends anything; ``_sdk.SDK.invoke`` is the one call path for all of
them and ``_eventstreams.Eventstreams`` exposes them as methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

import msgspec

from .._typed import EventSchema
from ..models import operations as schemas
from ..models import shared

__all__ = [
    "CHAT",
    "CHAT_SKIP_SENTINEL",
    "DIFFERENT_DATA_SCHEMAS",
    "JSON",
    "MULTILINE",
    "OPERATIONS",
    "RICH",
    "TEXT",
    "Operation",
]

T = TypeVar("T")
J = TypeVar("J")


@dataclass(frozen=True)
class Operation(Generic[T, J]):
    """One operation of the API.

    Attributes:
        name: the SDK method name.
        method, path: the HTTP request line (``path`` is appended to the server URL).
        schema: how the ``text/event-stream`` answer is decoded into ``T``.
        request_type: the Struct of the JSON request body, or ``None`` (no body).
        json_type: the msgspec type of an ``application/json`` answer (``J``), or
            ``None`` when the operation only streams.
    """

    name: str
    method: str
    path: str
    schema: EventSchema[T]
    request_type: type[msgspec.Struct] | None = None
    json_type: Any = None


CHAT: Operation[shared.ChatCompletionEvent | shared.SentinelEvent, list[shared.ChatCompletionEvent]]
CHAT = Operation(
    "chat",
    "POST",
    "/eventstreams/chat",
    schemas.CHAT,
    request_type=shared.ChatRequest,
    json_type=schemas.CHAT_JSON_RESPONSE,
)
CHAT_SKIP_SENTINEL: Operation[shared.ChatCompletionEvent, NoReturn] = Operation(
    "chat_skip_sentinel",
    "POST",
    "/eventstreams/chat-chunked",
    schemas.CHAT_SKIP_SENTINEL,
    request_type=shared.ChatRequest,
)
DIFFERENT_DATA_SCHEMAS: Operation[shared.DifferentDataSchemas, NoReturn] = Operation(
    "different_data_schemas",
    "POST",
    "/eventstreams/differentdataschemas",
    schemas.DIFFERENT_DATA_SCHEMAS,
)
JSON: Operation[shared.JSONEvent, NoReturn] = Operation(
    "json", "POST", "/eventstreams/json", schemas.JSON
)
MULTILINE: Operation[shared.TextEvent, NoReturn] = Operation(
    "multiline", "POST", "/eventstreams/multiline", schemas.MULTILINE
)
RICH: Operation[shared.RichCompletionEvent | shared.HeartbeatEvent, NoReturn] = Operation(
    "rich", "POST", "/eventstreams/rich", schemas.RICH
)
TEXT: Operation[shared.TextEvent, NoReturn] = Operation(
    "text", "POST", "/eventstreams/text", schemas.TEXT
)

OPERATIONS: tuple[Operation[Any, Any], ...] = (
    CHAT,
    CHAT_SKIP_SENTINEL,
    DIFFERENT_DATA_SCHEMAS,
    JSON,
    MULTILINE,
    RICH,
    TEXT,
)
