"""The eventstreams API's types: request bodies, security, and every streamed event.

Event Structs mirror the SSE fields they use (``data``, and ``id``, ``event``,
``retry`` where the API has them); a fixed ``event`` default is the SSE event name
that selects the Struct (see :class:`aiostreams.EventSchema`).  Field names are
the API's own (``stop_reason``, not ``stopReason``).

``gc=False``: these objects only hold str/int/float/bool/None, lists of those and
other such Structs, so they cannot form reference cycles; untracked by the cyclic
GC they are cheaper to create, which matters at a million events per second.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import msgspec

__all__ = [
    "ChatCompletionEvent",
    "ChatCompletionEventData",
    "ChatListRequest",
    "ChatRequest",
    "ChatStreamRequest",
    "DifferentDataSchemas",
    "HeartbeatEvent",
    "JSONEvent",
    "JSONEventData",
    "MessageEvent",
    "RichCompletionEvent",
    "RichCompletionEventData",
    "Security",
    "SentinelEvent",
    "StopReason",
    "TextEvent",
    "URLEvent",
]


class Security(msgspec.Struct, kw_only=True):
    """Credentials; ``api_key_auth`` is sent verbatim as the ``Authorization`` header."""

    api_key_auth: str | None = None

    def __repr__(self) -> str:  # never print a credential
        return f"Security(api_key_auth={'<redacted>' if self.api_key_auth else None})"


class ChatRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of ``chat`` and ``chat_skip_sentinel``; ``stream`` is omitted when ``None``."""

    prompt: str
    stream: bool | None = None


# What a type checker knows of ``chat(request={...})``: a dict literal without
# ``"stream": False`` opens a stream, with it the answer is a list (the SDK's
# overloads pick the return type from these; at run time they are plain dicts).


class _ChatPrompt(TypedDict):
    prompt: str


class ChatStreamRequest(_ChatPrompt, total=False):
    """``chat``'s request as a dict that streams: ``stream`` absent, ``True`` or ``None``."""

    stream: Literal[True] | None


class ChatListRequest(TypedDict):
    """``chat``'s request as a dict that asks for one JSON answer: ``"stream": False``."""

    prompt: str
    stream: Literal[False]


# -- chat, chat_skip_sentinel, json ---------------------------------------------------


class ChatCompletionEventData(msgspec.Struct, kw_only=True, gc=False):
    content: str


class ChatCompletionEvent(msgspec.Struct, kw_only=True, gc=False):
    """One token of a chat completion (``data: {"content": ...}``)."""

    data: ChatCompletionEventData


class SentinelEvent(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The end-of-stream marker ``data: [DONE]`` (yielded by ``chat`` only; frozen,
    so one instance can be shared by every stream)."""

    data: Literal["[DONE]"] = "[DONE]"


class JSONEventData(msgspec.Struct, kw_only=True, gc=False):
    content: str


class JSONEvent(msgspec.Struct, kw_only=True, gc=False):
    data: JSONEventData


# -- text, multiline ------------------------------------------------------------------


class TextEvent(msgspec.Struct, kw_only=True, gc=False):
    """Plain-text data, taken as is (multi-line data joined with ``\\n``)."""

    data: str


# -- different_data_schemas -------------------------------------------------------------


class MessageEvent(msgspec.Struct, kw_only=True, gc=False):
    content: str
    id: int | None = None


class URLEvent(msgspec.Struct, kw_only=True, gc=False):
    url: str


class DifferentDataSchemas(msgspec.Struct, kw_only=True, gc=False):
    """One event whose ``data`` type depends on its event name:
    message → :class:`MessageEvent`, url → :class:`URLEvent`, array → ``list[int]``,
    primitive → ``bool`` or ``float``."""

    id: str
    event: str
    data: MessageEvent | URLEvent | list[int] | bool | float


# -- rich -----------------------------------------------------------------------------

StopReason = Literal["stop_sequence", "max_tokens"]


class RichCompletionEventData(msgspec.Struct, kw_only=True, gc=False):
    completion: str
    stop_reason: StopReason | None
    model: str | None = None


class RichCompletionEvent(msgspec.Struct, kw_only=True, gc=False):
    id: str
    event: Literal["completion"] = "completion"
    data: RichCompletionEventData


class HeartbeatEvent(msgspec.Struct, kw_only=True, gc=False):
    event: Literal["heartbeat"] = "heartbeat"
    data: str
    retry: int | None = None
