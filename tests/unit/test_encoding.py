"""encode_event / encode_sse: exact wire bytes, and the fields that cannot be encoded."""

from __future__ import annotations

import pytest

from aiostreams import ServerSentEvent, SSEDecoder, encode_event, encode_sse


@pytest.mark.parametrize(
    ("kwargs", "wire"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": " "}, b"data:  \n\n"),  # the reference service's one-space event
        ({"data": '{"content": "Hello"}'}, b'data: {"content": "Hello"}\n\n'),
        ({"data": "YHOO\n+2\n10"}, b"data: YHOO\ndata: +2\ndata: 10\n\n"),
        ({"data": "a\r\nb\rc\n"}, b"data: a\ndata: b\ndata: c\ndata: \n\n"),
        ({"data": "hé 😀"}, "data: hé 😀\n\n".encode()),
        ({"data": "x", "event": "update"}, b"event: update\ndata: x\n\n"),
        ({"data": "x", "id": "job-1"}, b"id: job-1\ndata: x\n\n"),
        ({"data": "x", "id": ""}, b"id: \ndata: x\n\n"),  # resets the last event id
        ({"data": "ping", "retry": 3000}, b"retry: 3000\ndata: ping\n\n"),
        ({"data": "x", "retry": 0}, b"retry: 0\ndata: x\n\n"),
        ({"data": "x", "comment": "keep-alive"}, b":keep-alive\ndata: x\n\n"),
        ({"id": "7"}, b"id: 7\n\n"),  # no data line: a decoder dispatches nothing
        ({"comment": ""}, b":\n\n"),
        ({}, b"\n"),
        (
            {
                "data": '{"completion": "Hello"}',
                "event": "completion",
                "id": "job-1",
                "retry": 10,
                "comment": "c",
            },
            b':c\nid: job-1\nevent: completion\nretry: 10\ndata: {"completion": "Hello"}\n\n',
        ),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_wire_bytes(kwargs: dict[str, object], wire: bytes) -> None:
    assert encode_event(**kwargs) == wire  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "a\nb"}, "event must be a single line"),
        ({"event": "a\rb"}, "event must be a single line"),
        ({"id": "1\n2"}, "id must be a single line"),
        ({"id": "1\r\n2"}, "id must be a single line"),
        ({"comment": "one\ntwo"}, "comment must be a single line"),
        ({"comment": "one\rtwo"}, "comment must be a single line"),
        ({"id": "a\x00b"}, "id must not contain NUL"),
        ({"retry": -1}, "retry must be a non-negative number of ms, got -1"),
    ],
    ids=repr,
)
def test_unencodable_fields_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_event("data", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry", [True, 1.5, "100"], ids=repr)
def test_retry_that_is_not_an_int_raises_type_error(retry: object) -> None:
    # f"retry: {True}" would put "retry: True" on the wire, which decoders ignore.
    with pytest.raises(TypeError, match="retry must be an int"):
        encode_event("x", retry=retry)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent(data="x"), b"id: \ndata: x\n\n"),
        (ServerSentEvent(event="message", data="x", id="", retry=None), b"id: \ndata: x\n\n"),
        (
            ServerSentEvent(event="heartbeat", data="ping", id="", retry=3000),
            b"id: \nevent: heartbeat\nretry: 3000\ndata: ping\n\n",
        ),
        (
            ServerSentEvent(event="url", data='{"url": "https://example.com"}', id="event-2"),
            b'id: event-2\nevent: url\ndata: {"url": "https://example.com"}\n\n',
        ),
        (ServerSentEvent(data="a\nb"), b"id: \ndata: a\ndata: b\n\n"),
    ],
    ids=["plain", "message type is implicit", "retry", "id and event", "multi-line"],
)
def test_encode_sse_wire_bytes(event: ServerSentEvent, wire: bytes) -> None:
    assert encode_sse(event) == wire
    assert SSEDecoder().feed(wire) == [event]


def test_encode_sse_keeps_an_id_reset_in_a_sequence() -> None:
    # The empty id is written ("id: "), so the event after an id'd one decodes with "".
    events = [ServerSentEvent(data="a", id="1"), ServerSentEvent(data="b", id="")]
    assert SSEDecoder().feed(b"".join(map(encode_sse, events))) == events


def test_encoded_stream_decodes_to_the_reference_rich_stream() -> None:
    """The reference service's rich stream, built with the encoder, byte for byte."""
    wire = b"".join(
        [
            encode_event(
                '{"completion": "Hello", "stop_reason": null, "model": "jeeves-1"}',
                id="job-1",
                event="completion",
            ),
            encode_event("ping", event="heartbeat", retry=3000),
        ]
    )
    assert wire == (
        b'id: job-1\nevent: completion\ndata: {"completion": "Hello", "stop_reason": null,'
        b' "model": "jeeves-1"}\n\nevent: heartbeat\nretry: 3000\ndata: ping\n\n'
    )
    events = SSEDecoder().feed(wire)
    assert [(e.event, e.id, e.retry) for e in events] == [
        ("completion", "job-1", None),
        ("heartbeat", "job-1", 3000),
    ]
