"""User-side schemas for the realistic corpora: what a user of aiostreams declares
(msgspec Structs in an ``EventSchema``) and what a peer's user writes instead
(``json.loads`` of each event's data).  Each corpus also says how to read the
"last value" the harness checks, on both sides, so a wrong decode cannot pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from aiostreams import EventSchema

__all__ = ["TYPED", "TypedCorpus"]


# -- OpenAI chat.completion.chunk --------------------------------------------------------


class Delta(msgspec.Struct):
    content: str | None = None
    role: str | None = None


class Choice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]


class OpenAIEvent(msgspec.Struct):
    data: ChatCompletionChunk


OPENAI: EventSchema[OpenAIEvent] = EventSchema(OpenAIEvent, sentinel="[DONE]")


# -- Anthropic messages ------------------------------------------------------------------


class TextDelta(msgspec.Struct):
    type: str
    text: str = ""


class BlockDelta(msgspec.Struct):
    type: str
    index: int
    delta: TextDelta


class ContentBlockDelta(msgspec.Struct):
    data: BlockDelta
    event: Literal["content_block_delta"] = "content_block_delta"


class Ping(msgspec.Struct):
    data: dict[str, Any]
    event: Literal["ping"] = "ping"


class Other(msgspec.Struct):
    """message_start, content_block_start/stop, message_delta, message_stop."""

    event: str
    data: dict[str, Any]


_OTHER_EVENTS = (
    "message_start",
    "content_block_start",
    "content_block_stop",
    "message_delta",
    "message_stop",
)
ANTHROPIC: EventSchema[Any] = EventSchema(
    ContentBlockDelta,
    Ping,
    Other,
    data_types=dict.fromkeys(_OTHER_EVENTS, dict[str, Any]),
)


# -- chat tokens (uniform and heartbeat) ----------------------------------------------------


class Content(msgspec.Struct):
    content: str


class ChatEvent(msgspec.Struct):
    data: Content


CHAT: EventSchema[ChatEvent] = EventSchema(ChatEvent)


# -- Wikimedia recentchange ------------------------------------------------------------------


class Meta(msgspec.Struct):
    uri: str
    id: str
    domain: str


class RecentChange(msgspec.Struct):
    meta: Meta
    id: int
    type: str
    title: str
    comment: str
    timestamp: int
    user: str
    bot: bool


class WikiEvent(msgspec.Struct):
    id: str
    data: RecentChange
    event: Literal["message"] = "message"


WIKIMEDIA: EventSchema[WikiEvent] = EventSchema(WikiEvent)


# -- multi-line text -------------------------------------------------------------------------


class TextEvent(msgspec.Struct):
    data: str


TEXT: EventSchema[TextEvent] = EventSchema(TextEvent)


@dataclass(frozen=True)
class TypedCorpus:
    """How each side decodes one corpus family and reads its last value."""

    schema: EventSchema[Any]
    ours: Callable[[Any], str]  # Struct -> the checked value
    theirs: Callable[[str, str], Any]  # (event name, data) -> decoded value (None: skip)
    value: Callable[[Any], str]  # peer's decoded value -> the checked value
    sentinel: str | None = None


def _openai_content(chunk: Any) -> str:
    return str(chunk.choices[0].finish_reason or chunk.choices[0].delta.content)


def _openai_peer(value: Any) -> str:
    choice = value["choices"][0]
    return str(choice["finish_reason"] or choice["delta"].get("content"))


def _loads(event: str, data: str) -> Any:
    return json.loads(data)


def _text(event: str, data: str) -> Any:
    return data


TYPED: dict[str, TypedCorpus] = {
    "openai": TypedCorpus(
        OPENAI, lambda e: _openai_content(e.data), _loads, _openai_peer, sentinel="[DONE]"
    ),
    "anthropic": TypedCorpus(
        ANTHROPIC, lambda e: str(e.data["type"]), _loads, lambda v: str(v["type"])
    ),
    "chat": TypedCorpus(CHAT, lambda e: e.data.content, _loads, lambda v: str(v["content"])),
    "wikimedia": TypedCorpus(WIKIMEDIA, lambda e: e.data.title, _loads, lambda v: str(v["title"])),
    "multiline": TypedCorpus(TEXT, lambda e: e.data, _text, str),
}
