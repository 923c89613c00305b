"""Typed decoding: the seven eventstreams operations from their exact reference bytes
(../shared/reference-streams.md), split at every byte boundary, and every bad-input path."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest

from aiostreams import EventSchema, ServerSentEvent
from aiostreams.errors import ResponseValidationError, StreamError
from aiostreams.models import operations as ops
from aiostreams.models.shared import (
    ChatCompletionEvent,
    ChatCompletionEventData,
    DifferentDataSchemas,
    HeartbeatEvent,
    JSONEvent,
    JSONEventData,
    MessageEvent,
    RichCompletionEvent,
    RichCompletionEventData,
    SentinelEvent,
    TextEvent,
    URLEvent,
)

# The writes of the reference service, per operation (one bullet = one write).
JSON_WRITES = [
    b'data: {"content": "Hello"}\n\n',
    b'data: {"content": " "}\n\n',
    b'data: {"content": "world"}\n\n',
    b'data: {"content": "!"}\n\n',
]
CHAT_WRITES = [*JSON_WRITES, b"data: [DONE]\n\n"]
CHAT_CHUNKED_WRITES = [
    b'data: {"content": ',
    b'"Hello"}\n\ndata: {"content": " "}\n\n',
    b'data: {"content": "world"}\n\n',
    b'data: {"content": "!"}\n\ndata: [DONE]\n',
    b'\ndata: {"content": "Post sentinel data"}\n\n',
]
TEXT_WRITES = [b"data: Hello\n\n", b"data:  \n\n", b"data: world\n\n", b"data: !\n\n"]
MULTILINE_WRITES = [b"data: YHOO\ndata: +2\ndata: 10\n\n"]
RICH_WRITES = [
    (
        b'id: job-1\nevent: completion\ndata: {"completion": "Hello", "stop_reason": null, '
        b'"model": "jeeves-1"}\n\n'
    ),
    b"event: heartbeat\ndata: ping\nretry: 3000\n\n",
    (
        b'id: job-1\nevent: completion\ndata: {"completion": "world!", "stop_reason": '
        b'"stop_sequence", "model": "jeeves-1"}\n\n'
    ),
]
DDS_WRITES = [
    b'id: event-1\nevent: message\ndata: {"id": 123, "content": "Here is your url"}\n\n',
    b'id: event-2\nevent: url\ndata: {"url": "https://example.com"}\n\n',
    b'id: event-3\nevent: message\ndata: {"content": "Have a great day!"}\n\n',
    b"id: event-4\nevent: array\ndata: [1, 2, 3, 4]\n\n",
    b"id: event-5\nevent: primitive\ndata: true\n\n",
    b"id: event-6\nevent: primitive\ndata: 3.14159\n\n",
]

CHAT_EVENTS = [
    ChatCompletionEvent(data=ChatCompletionEventData(content=c))
    for c in ("Hello", " ", "world", "!")
]

CASES: dict[str, tuple[EventSchema[Any], list[bytes], list[Any]]] = {
    "chat": (ops.CHAT, CHAT_WRITES, [*CHAT_EVENTS, SentinelEvent(data="[DONE]")]),
    "chat_skip_sentinel": (ops.CHAT_SKIP_SENTINEL, CHAT_CHUNKED_WRITES, CHAT_EVENTS),
    "json": (
        ops.JSON,
        JSON_WRITES,
        [JSONEvent(data=JSONEventData(content=c)) for c in ("Hello", " ", "world", "!")],
    ),
    "text": (ops.TEXT, TEXT_WRITES, [TextEvent(data=d) for d in ("Hello", " ", "world", "!")]),
    "multiline": (ops.MULTILINE, MULTILINE_WRITES, [TextEvent(data="YHOO\n+2\n10")]),
    "rich": (
        ops.RICH,
        RICH_WRITES,
        [
            RichCompletionEvent(
                id="job-1",
                data=RichCompletionEventData(
                    completion="Hello", stop_reason=None, model="jeeves-1"
                ),
            ),
            HeartbeatEvent(data="ping", retry=3000),
            RichCompletionEvent(
                id="job-1",
                data=RichCompletionEventData(
                    completion="world!", stop_reason="stop_sequence", model="jeeves-1"
                ),
            ),
        ],
    ),
    "different_data_schemas": (
        ops.DIFFERENT_DATA_SCHEMAS,
        DDS_WRITES,
        [
            DifferentDataSchemas(
                id="event-1", event="message", data=MessageEvent(content="Here is your url", id=123)
            ),
            DifferentDataSchemas(
                id="event-2", event="url", data=URLEvent(url="https://example.com")
            ),
            DifferentDataSchemas(
                id="event-3", event="message", data=MessageEvent(content="Have a great day!")
            ),
            DifferentDataSchemas(id="event-4", event="array", data=[1, 2, 3, 4]),
            DifferentDataSchemas(id="event-5", event="primitive", data=True),
            DifferentDataSchemas(id="event-6", event="primitive", data=3.14159),
        ],
    ),
}


def feed_all(schema: EventSchema[Any], chunks: list[bytes]) -> list[Any]:
    decoder = schema.decoder()
    out: list[Any] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    decoder.close()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_operation_reference_writes(name: str) -> None:
    schema, writes, expected = CASES[name]
    assert feed_all(schema, writes) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_operation_split_at_every_byte_boundary(name: str) -> None:
    schema, writes, expected = CASES[name]
    body = b"".join(writes)
    for cut in range(len(body) + 1):
        assert feed_all(schema, [body[:cut], body[cut:]]) == expected, cut
    assert feed_all(schema, [body[i : i + 1] for i in range(len(body))]) == expected


def test_types_and_field_names_of_the_api() -> None:
    event = ops.RICH.decode_all(RICH_WRITES[2])[0]
    assert isinstance(event, RichCompletionEvent)
    assert event.data.stop_reason == "stop_sequence"
    assert msgspec.json.encode(event.data) == (
        b'{"completion":"world!","stop_reason":"stop_sequence","model":"jeeves-1"}'
    )
    primitive = ops.DIFFERENT_DATA_SCHEMAS.decode_all(DDS_WRITES[4] + DDS_WRITES[5])
    assert [type(e.data) for e in primitive] == [bool, float]


def test_sentinel_ends_the_stream_and_nothing_after_is_decoded() -> None:
    decoder = ops.CHAT_SKIP_SENTINEL.decoder()
    events = decoder.feed(b'data: {"content": "a"}\n\ndata: [DONE]\n\ndata: not json\n\n')
    assert events == [ChatCompletionEvent(data=ChatCompletionEventData(content="a"))]
    assert decoder.finished
    # Invalid data after the sentinel is never decoded: no error, nothing yielded.
    assert decoder.feed(b'data: {"content": 1}\n\n') == []


def test_sentinel_in_the_general_path() -> None:
    # An id line forces the per-block path; the sentinel must end it the same way.
    decoder = ops.CHAT.decoder()
    events = decoder.feed(b'id: 1\ndata: {"content": "a"}\n\ndata: [DONE]\n\nid: 2\ndata: x\n\n')
    assert events == [
        ChatCompletionEvent(data=ChatCompletionEventData(content="a")),
        SentinelEvent(),
    ]
    assert decoder.finished and decoder.last_event_id == "1"


# -- bad input: clear errors, nothing lost ------------------------------------------------


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk-path", "per-block-path"])
def test_invalid_data_raises_in_order_and_iteration_continues(bulk: bool) -> None:
    prefix = b"" if bulk else b"id: 7\n"
    body = prefix + b'data: {"content": "a"}\n\ndata: {"content": 1}\n\ndata: {"content": "c"}\n\n'
    decoder = ops.JSON.decoder()
    assert decoder.feed(body) == [JSONEvent(data=JSONEventData(content="a"))]
    assert decoder.has_backlog
    with pytest.raises(ResponseValidationError) as info:
        decoder.feed(b"")
    error = info.value
    assert error.event == ServerSentEvent("message", '{"content": 1}', "7" if not bulk else "")
    assert error.expected == "JSONEventData"
    assert "Expected `str`, got `int`" in error.cause_message
    assert "$.content" in str(error)
    assert decoder.feed(b"") == [JSONEvent(data=JSONEventData(content="c"))]
    assert not decoder.has_backlog


def test_malformed_json_is_a_validation_error_not_a_msgspec_error() -> None:
    decoder = ops.JSON.decoder()
    with pytest.raises(ResponseValidationError) as info:
        decoder.feed(b"data: {not json\n\n")
    assert not isinstance(info.value, msgspec.MsgspecError)
    assert "malformed" in info.value.cause_message.lower() or "JSON" in info.value.cause_message


def test_first_event_bad_raises_at_once_and_keeps_the_rest() -> None:
    decoder = ops.JSON.decoder()
    with pytest.raises(ResponseValidationError):
        decoder.feed(b'data: []\n\ndata: {"content": "b"}\n\n')
    assert decoder.feed(b'data: {"content": "c"}\n\n') == [
        JSONEvent(data=JSONEventData(content="b")),
        JSONEvent(data=JSONEventData(content="c")),
    ]


def test_unknown_event_name_raises_or_is_skipped_when_asked() -> None:
    body = b"event: surprise\ndata: {}\n\nevent: heartbeat\ndata: ping\n\n"
    decoder = ops.RICH.decoder()
    with pytest.raises(ResponseValidationError) as info:
        decoder.feed(body)
    assert "no type is declared for event name 'surprise'" in str(info.value)
    assert "unknown='skip'" in str(info.value)
    assert decoder.feed(b"") == [HeartbeatEvent(data="ping")]

    skipping: EventSchema[Any] = EventSchema(RichCompletionEvent, HeartbeatEvent, unknown="skip")
    assert skipping.decode_all(body) == [HeartbeatEvent(data="ping")]


class ErrorPayload(msgspec.Struct):
    code: int
    message: str


def test_error_event_raises_stream_error_with_payload_and_id() -> None:
    schema: EventSchema[JSONEvent] = EventSchema(JSONEvent, errors={"error": ErrorPayload})
    decoder = schema.decoder()
    body = (
        b'data: {"content": "a"}\n\n'
        b'id: 42\nevent: error\ndata: {"code": 503, "message": "overloaded"}\n\n'
        b'data: {"content": "b"}\n\n'
    )
    assert decoder.feed(body) == [JSONEvent(data=JSONEventData(content="a"))]
    with pytest.raises(StreamError) as info:
        decoder.feed(b"")
    assert info.value.payload == ErrorPayload(503, "overloaded")
    assert info.value.event_id == "42"
    assert decoder.feed(b"") == [JSONEvent(data=JSONEventData(content="b"))]


def test_error_event_whose_payload_does_not_parse_keeps_the_raw_text() -> None:
    schema: EventSchema[JSONEvent] = EventSchema(JSONEvent, errors={"error": ErrorPayload})
    with pytest.raises(StreamError) as info:
        schema.decode_all(b"event: error\ndata: upstream exploded\n\n")
    assert info.value.payload == "upstream exploded"


# -- bring your own Structs ----------------------------------------------------------------


class Delta(msgspec.Struct):
    text: str


class Tagged(msgspec.Struct, tag_field="event", tag="delta"):
    data: Delta
    id: str = ""


class Done(msgspec.Struct):
    event: Literal["done"]
    data: str


def test_user_structs_with_msgspec_tags_literals_and_per_name_data_types() -> None:
    schema: EventSchema[Tagged | Done] = EventSchema(Tagged, Done)
    body = b'id: 1\nevent: delta\ndata: {"text": "hi"}\n\nevent: done\ndata: bye\n\n'
    assert schema.decode_all(body) == [Tagged(data=Delta("hi"), id="1"), Done("done", "bye")]


def test_schema_declaration_errors_are_clear() -> None:
    class NoData(msgspec.Struct):
        value: int

    with pytest.raises(TypeError, match="no 'data' field"):
        EventSchema(NoData)
    with pytest.raises(TypeError, match="more than one type"):
        EventSchema(TextEvent, JSONEvent)
    with pytest.raises(TypeError, match="msgspec.Struct"):
        EventSchema(dict)
    with pytest.raises(TypeError, match="needs a sentinel"):
        EventSchema(TextEvent, sentinel_type=SentinelEvent)
    with pytest.raises(ValueError, match="unknown must be"):
        EventSchema(TextEvent, unknown="drop")  # type: ignore[arg-type]


def test_large_payload_is_decoded_through_a_memoryview() -> None:
    content = "x" * 100_000
    body = b'id: 1\ndata: {"content": "' + content.encode() + b'"}\n\n'
    chunks = [body[i : i + 1536] for i in range(0, len(body), 1536)]
    assert feed_all(ops.JSON, chunks) == [JSONEvent(data=JSONEventData(content=content))]


def test_typed_decoder_tracks_stream_state() -> None:
    decoder = ops.RICH.decoder(last_event_id="job-0")
    assert decoder.last_event_id == "job-0"
    decoder.feed(RICH_WRITES[1])
    assert decoder.retry == 3000
    decoder.feed(b"id: job-9\n\n")  # no data: state changes, no event
    assert decoder.last_event_id == "job-9"
    decoder.feed(b"data: partial")
    assert decoder.pending_bytes == len(b"data: partial")
