"""SSEDecoder against the WHATWG HTML Living Standard, section 9.2.6 "Interpreting
an event stream", one case per rule, each quoting the rule's words.

Cases that mirror a web-platform-tests ``eventsource/format-*`` test name that file
in their id.  The WPT ``resources/message.py`` writes ``message``, then ``newline``
(``"\\n\\n"`` unless ``newline=none``), then one more ``"\\n"``: the bytes below
include those trailers.  The ``format-mime-*`` tests are about the Content-Type
header, which a byte-level parser never sees; they belong to the transport.

Every case is decoded whole, one byte at a time and split in two at every offset
(:func:`assert_decodes`); the decoder's ``last_event_id`` and ``retry`` after
``close()`` are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from aiostreams import ServerSentEvent, SSEDecoder
from aiostreams.errors import EventTooLarge


def ev(
    data: str, event: str = "message", id: str = "", retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


def decode(
    chunks: Sequence[bytes | bytearray | memoryview],
    *,
    max_event_size: int = 16 * 1024 * 1024,
    last_event_id: str = "",
) -> tuple[list[ServerSentEvent], SSEDecoder]:
    """Feed ``chunks`` then ``close()``: the events and the decoder (for its state)."""
    decoder = SSEDecoder(max_event_size=max_event_size, last_event_id=last_event_id)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    decoder.close()
    return events, decoder


def cuts(stream: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """The same bytes cut every way that matters for a streaming parser."""
    yield "whole", [stream]
    yield "one byte at a time", [stream[i : i + 1] for i in range(len(stream))]
    for i in range(len(stream) + 1):  # i == 0 and i == len feed an empty chunk too
        yield f"split at {i}", [stream[:i], stream[i:]]


def assert_decodes(
    stream: bytes,
    events: list[ServerSentEvent],
    *,
    last_event_id: str = "",
    retry: int | None = None,
    initial_last_event_id: str = "",
) -> None:
    """``stream`` gives ``events`` and leaves this state, however it is cut."""
    for how, chunks in cuts(stream):
        got, decoder = decode(chunks, last_event_id=initial_last_event_id)
        assert got == events, how
        assert decoder.last_event_id == last_event_id, how
        assert decoder.retry == retry, how


@dataclass(frozen=True)
class Case:
    id: str
    stream: bytes
    events: list[ServerSentEvent]
    last_event_id: str = ""
    retry: int | None = None
    initial_last_event_id: str = ""


CASES = [
    # -- "Streams must be decoded using the UTF-8 decode algorithm." -----------------
    Case(
        "format-utf-8: always UTF-8",
        b"data:ok\xe2\x80\xa6\n\n\n",
        [ev("ok\u2026")],
    ),
    Case(
        "UTF-8 decode: invalid bytes become U+FFFD, never an error",
        b"data: a\xffb\xe2\x82\n\nevent: \xc3\ndata: \xed\xa0\x80\n\n",
        [ev("a\ufffdb\ufffd"), ev("\ufffd\ufffd\ufffd", event="\ufffd")],
    ),
    Case(
        "UTF-8 decode: 2-, 3- and 4-byte sequences (cut inside them by the splits)",
        "data: é€😀\nid: ü\n\n".encode(),
        [ev("é€😀", id="ü")],
        last_event_id="ü",
    ),
    # -- "The UTF-8 decode algorithm strips one leading UTF-8 Byte Order Mark (BOM)" --
    Case(
        "format-bom: one leading BOM stripped, a BOM later is part of the line",
        b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n\n",
        [ev("1"), ev("3")],
    ),
    Case(
        "format-bom-2: only one BOM is stripped, the second one is kept",
        b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n\n",
        [ev("2"), ev("3")],
    ),
    Case(
        "BOM: two bytes of a BOM are not a BOM (garbage field name, ignored)",
        b"\xef\xbbdata:1\n\ndata:2\n\n",
        [ev("2")],
    ),
    Case(
        "BOM: a BOM inside a value is data",
        b"data: \xef\xbb\xbfx\n\n",
        [ev("\ufeffx")],
    ),
    # -- "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a single
    #    U+000A LINE FEED (LF) character not preceded by a U+000D CARRIAGE RETURN (CR)
    #    character, and a single U+000D CARRIAGE RETURN (CR) character not followed by
    #    a U+000A LINE FEED (LF) character being the ways in which a line can end." --
    Case("line ending: LF", b"data: a\ndata: b\n\n", [ev("a\nb")]),
    Case("line ending: CRLF", b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")]),
    Case("line ending: CR", b"data: a\rdata: b\r\r", [ev("a\nb")]),
    Case(
        "line ending: CR then CRLF is a line end then a blank line",
        b"data: a\r\r\ndata: b\r\n\r\n",
        [ev("a"), ev("b")],
    ),
    Case(
        "line ending: LF then CR is a line end then a blank line",
        b"data: a\n\rdata: b\n\r",
        [ev("a"), ev("b")],
    ),
    Case(
        "format-newlines: newline fest",
        b"data:test\r\ndata\ndata:test\r\n\r\n",
        [ev("test\n\ntest")],
    ),
    # -- "If the line is empty (a blank line): Dispatch the event" -------------------
    Case(
        "blank line dispatches; extra blank lines dispatch nothing",
        b"\n\r\ndata: a\n\n\n\r\n\rdata: b\n\n\n",
        [ev("a"), ev("b")],
    ),
    # -- "If the line starts with a U+003A COLON character (:): Ignore the line." -----
    Case(
        "format-comments: comment fest",
        b"data:1\r:\x00\n:\r\ndata:2\n:"
        + b"x" * 2048
        + b"\rdata:3\n:data:fail\r:"
        + b"x" * 2048
        + b"\ndata:4\n\n",
        [ev("1\n2\n3\n4")],
    ),
    Case(
        "comment: a block of only comments dispatches nothing",
        b": keep-alive\n\n:\n\n:data: x\n\n",
        [],
    ),
    # -- "Collect the characters on the line before the first U+003A COLON character
    #    (:), and let field be that string. Collect the characters on the line after
    #    the first U+003A COLON character (:), and let value be that string." -------
    Case(
        "field/value split at the first colon",
        b"data:a:b: c\nevent:x:y\n\n",
        [ev("a:b: c", event="x:y")],
    ),
    # -- "If value starts with a U+0020 SPACE character, remove it from value." -------
    Case(
        "format-leading-space: only a space is removed, not a tab",
        b"data:\ttest\rdata: \ndata:test\n\n\n",
        [ev("\ttest\n\ntest")],
    ),
    Case(
        "leading space: only one space is removed",
        b"data:  two\nid:  x\nevent:  e\n\n",
        [ev(" two", event=" e", id=" x")],
        last_event_id=" x",
    ),
    Case(
        "leading space: none needed (the reference service's two-space data)",
        b"data:x\n\ndata:  \n\n",
        [ev("x"), ev(" ")],
    ),
    # -- "Otherwise, the string is not empty but does not contain a U+003A COLON
    #    character (:): Process the field using the steps described below, using the
    #    whole line as the field name, and the empty string as the field value." -----
    Case(
        "line without colon: 'data' alone is an empty data line (dispatches '')",
        b"data\n\n",
        [ev("")],
    ),
    Case(
        "format-field-data: data field parsing",
        b"data:\n\ndata\ndata\n\ndata:test\n\n\n",
        [ev(""), ev("\n"), ev("test")],
    ),
    Case(
        "line without colon: 'id' alone resets the last event id",
        b"id\ndata: x\n\n",
        [ev("x")],
        initial_last_event_id="before",
    ),
    Case(
        "line without colon: 'event' alone leaves the type 'message'",
        b"event\ndata: x\n\n",
        [ev("x")],
    ),
    Case(
        "format-field-retry-empty: 'retry' alone is ignored",
        b"retry\ndata:test\n\n\n",
        [ev("test")],
    ),
    # -- "Field names must be compared literally, with no case folding performed." ----
    Case(
        "field names are case-sensitive",
        b"Data: x\n\nDATA: y\n\nEvent: e\nID: 1\nRetry: 5\ndata: z\n\n",
        [ev("z")],
    ),
    Case(
        "format-field-parsing: field parsing",
        b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\r"
        b"data_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
        [ev("\x00\n 2\n1\n3\n\n4")],
    ),
    # -- "event": "Set the event type buffer to field value." -------------------------
    Case(
        "format-field-event: custom event name",
        b"event:test\ndata:x\n\ndata:x\n\n\n",
        [ev("x", event="test"), ev("x")],
    ),
    Case(
        "format-field-event-empty: empty event field gives 'message'",
        b"event: \ndata:data\n\n\n",
        [ev("data")],
    ),
    Case(
        "event: the last event field of a block wins",
        b"event: a\nevent: b\ndata: x\n\n",
        [ev("x", event="b")],
    ),
    # -- "data": "Append the field value to the data buffer, then append a single
    #    U+000A LINE FEED (LF) character to the data buffer." + "If the data buffer's
    #    last character is a U+000A LINE FEED (LF) character, then remove the last
    #    character from the data buffer." ---------------------------------------------
    Case(
        "data: lines joined with LF (the reference service's multiline)",
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [ev("YHOO\n+2\n10")],
    ),
    Case(
        "data: only the one final LF is removed",
        b"data: a\ndata:\n\n",
        [ev("a\n")],
    ),
    Case(
        "format-null-character: NUL in data",
        b"data:\x00\n\n\n",
        [ev("\x00")],
    ),
    # -- "id": "If the field value does not contain U+0000 NULL, then set the last
    #    event ID buffer to the field value. Otherwise, ignore the field." -----------
    *(
        Case(
            f"format-field-id-null: id {value!r} is ignored",
            b"id: " + value + b"\nretry: 200\ndata: hello\n\n",
            [ev("hello", retry=200)],
            retry=200,
        )
        for value in (b"\x00\x00", b"x\x00", b"\x00x", b"x\x00x", b" \x00")
    ),
    Case(
        "id with NUL keeps the previous id",
        b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
        last_event_id="1",
    ),
    Case(
        "format-field-id: Last-Event-ID",
        "id: …\nretry: 200\ndata: hello\n\n".encode(),
        [ev("hello", id="…", retry=200)],
        last_event_id="…",
        retry=200,
    ),
    Case(
        "format-field-id-2: after reconnecting, the id given to the constructor",
        "data: …\n\ndata: …\n\n".encode(),
        [ev("…", id="…"), ev("…", id="…")],
        last_event_id="…",
        initial_last_event_id="…",
    ),
    # -- "Set the last event ID string of the event source to the value of the last
    #    event ID buffer. The buffer does not get reset, so the last event ID string of
    #    the event source remains set to this value until the next time it is set by
    #    the server." -----------------------------------------------------------------
    Case(
        "format-field-id-3: lastEventId persists",
        b"id: 1\ndata: 1\n\ndata:2\n\n",
        [ev("1", id="1"), ev("2", id="1")],
        last_event_id="1",
    ),
    Case(
        "format-field-id-3: lastEventId changes and persists",
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [ev("1", id="1"), ev("2", id="2"), ev("3", id="2")],
        last_event_id="2",
    ),
    Case(
        "format-field-id-3: lastEventId resets (empty id)",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [ev("1", id="1"), ev("2"), ev("3")],
        last_event_id="",
    ),
    # -- "retry": "If the field value consists of only ASCII digits, then interpret
    #    the field value as an integer in base ten, and set the event stream's
    #    reconnection time to that integer. Otherwise, ignore the field." ------------
    Case(
        "format-field-retry: base ten, leading zero is not octal",
        b"retry:02000\ndata:x\n\n\n",
        [ev("x", retry=2000)],
        retry=2000,
    ),
    Case(
        "format-field-retry-bogus: a bogus retry does not override a good one",
        b"retry:2000\nretry:1000x\ndata:x\n\n\n",
        [ev("x", retry=2000)],
        retry=2000,
    ),
    *(
        Case(
            f"retry {value!r} is not only ASCII digits: ignored",
            b"retry: 1000\n\nretry:" + value + b"\ndata: x\n\n",
            [ev("x")],
            retry=1000,
        )
        for value in (
            b" 1a",
            b" -1",
            b" +1",
            b" 1.5",
            b" 1e3",
            b" ",
            b"",
            b"  5",  # after removing one space: " 5"
            b" 5 ",
            " ١".encode(),  # ARABIC-INDIC DIGIT ONE: a digit, but not ASCII
            " ５".encode(),  # FULLWIDTH DIGIT FIVE
            b" \xb2",  # invalid UTF-8 (U+FFFD)
        )
    ),
    Case(
        "retry in a block without data still sets the reconnection time",
        b"retry: 3000\n\n",
        [],
        retry=3000,
    ),
    # -- "Otherwise: The field is ignored." ------------------------------------------
    Case(
        "format-field-unknown: unknown fields and parsing fun",
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
        [ev("test\n\ntest")],
    ),
    # -- Dispatch: "If the data buffer is an empty string, set the data buffer and the
    #    event type buffer to the empty string and return." (no phantom empty event)
    Case(
        "no data: nothing dispatched, but id and retry are taken",
        b"id: 7\nretry: 5\nevent: ping\n: hi\n\ndata: x\n\n",
        [ev("x", id="7")],
        last_event_id="7",
        retry=5,
    ),
    # -- "Set the data buffer and the event type buffer to the empty string." --------
    Case(
        "event type is reset to 'message' after each dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\ndata: 3\n\n",
        [ev("1", event="a"), ev("2"), ev("3", event="b")],
    ),
    Case(
        "retry is reported only on the event whose block carried it",
        b"retry: 10\ndata: 1\n\ndata: 2\n\n",
        [ev("1", retry=10), ev("2")],
        retry=10,
    ),
    # -- "Once the end of the file is reached, any pending data must be discarded.
    #    (If the file ends in the middle of an event, before the final empty line,
    #    the incomplete event is not dispatched.)" -------------------------------------
    Case(
        "format-data-before-final-empty-line: the incomplete event's id is not taken",
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n",
        [ev("test1", retry=1000)],
        retry=1000,
    ),
    Case(
        "end of stream: an unterminated line is discarded",
        b"data: a\n\ndata: b",
        [ev("a")],
    ),
    Case(
        "end of stream: a complete retry line of the discarded event was processed",
        b"data: a\n\nid: 9\nretry: 7000\ndata: b\nretry: 8",
        [ev("a")],
        retry=7000,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_interpreting_an_event_stream(case: Case) -> None:
    assert_decodes(
        case.stream,
        case.events,
        last_event_id=case.last_event_id,
        retry=case.retry,
        initial_last_event_id=case.initial_last_event_id,
    )


def test_the_split_helper_catches_a_wrong_answer() -> None:
    with pytest.raises(AssertionError):
        assert_decodes(b"data: a\n\n", [ev("b")])


# -- chunk boundaries named explicitly (the splits above cover them too) ---------------


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [b"data: a\r", b"", b"\ndata: b\r\n", b"", b"\r", b"", b"\n"],
        [b"data: a\r\n", b"data: b\r\n\r\n"],
    ],
    ids=["CRLF split across chunks", "CRLF split by empty chunks", "CRLF at chunk end"],
)
def test_crlf_split_across_chunks_is_one_line_ending(chunks: list[bytes]) -> None:
    assert decode(chunks)[0] == [ev("a\nb")]


def test_cr_at_end_of_chunk_then_a_non_lf_ends_the_line() -> None:
    events, _ = decode([b"data: a\r", b"data: b\r", b"\r"])
    assert events == [ev("a\nb")]


def test_bom_split_across_chunks_is_stripped() -> None:
    events, _ = decode([b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"])
    assert events == [ev("x")]


def test_bom_is_stripped_again_after_close_for_a_new_connection() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb\xbfdata: 1\n\n") == [ev("1")]
    decoder.close()
    assert decoder.feed(b"\xef\xbb\xbfdata: 2\n\n") == [ev("2")]


def test_events_are_returned_by_the_feed_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [ev("a")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [ev("b")]


def test_close_discards_the_incomplete_event_and_keeps_stream_state() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\nretry: 500\ndata: a\n\nid: 2\ndata: lost")
    decoder.close()
    assert (decoder.last_event_id, decoder.retry, decoder.pending_bytes) == ("1", 500, 0)
    # A new connection of the same stream starts clean (no "lost" prefix) with the id.
    assert decoder.feed(b"data: b\n\n") == [ev("b", id="1")]


def test_format_data_before_final_empty_line_reconnect() -> None:
    """The WPT test checks the second connection: test1 arrives again with id ''."""
    stream = b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n"
    decoder = SSEDecoder()
    first = decoder.feed(stream)
    decoder.close()
    second = decoder.feed(stream)
    assert first == second == [ev("test1", retry=1000)]


# -- EventTooLarge ----------------------------------------------------------------------


def test_default_limit_is_16_mib() -> None:
    decoder = SSEDecoder()
    assert decoder.max_event_size == 16 * 1024 * 1024
    assert decoder.feed(b"data: " + b"x" * (16 * 1024 * 1024 - 100)) == []
    with pytest.raises(EventTooLarge) as info:
        decoder.feed(b"x" * 200)
    assert info.value.limit == 16 * 1024 * 1024
    assert "16777216" in str(info.value)


def _feed_until_raise(decoder: SSEDecoder, chunk: bytes, max_feeds: int) -> EventTooLarge:
    """Feed ``chunk`` until EventTooLarge (bounded: fails if it never comes)."""
    with pytest.raises(EventTooLarge) as info:  # the loop is the point
        for _ in range(max_feeds):
            assert decoder.feed(chunk) == []
    return info.value


def test_endless_line_raises() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    decoder.feed(b"data: ")
    exc = _feed_until_raise(decoder, b"x" * 100, max_feeds=11)
    assert exc.limit == 1000
    assert exc.size > 1000
    assert "1000" in str(exc)
    assert "max_event_size" in str(exc)


def test_endless_multi_line_event_raises() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    exc = _feed_until_raise(decoder, b"data: " + b"y" * 44 + b"\n", max_feeds=21)
    assert exc.limit == 1000


def test_endless_event_with_crlf_raises() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    exc = _feed_until_raise(decoder, b"data: zz\r\n", max_feeds=200)
    assert exc.limit == 1000


def test_event_too_large_in_one_chunk_raises() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLarge, match="limit is 1000 bytes"):
        decoder.feed(b"data: " + b"x" * 2000 + b"\n\n")


def test_events_before_the_limit_are_returned_by_earlier_feeds() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    before = decoder.feed(b"id: 1\ndata: a\n\ndata: b\n\n")
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"x" * 2000)
    assert before == [ev("a", id="1"), ev("b", id="1")]
    assert decoder.last_event_id == "1"


def test_events_near_the_limit_pass() -> None:
    event = b"data: " + b"x" * 900 + b"\n\n"
    for how, chunks in cuts(event * 3):
        assert decode(chunks, max_event_size=1000)[0] == [ev("x" * 900)] * 3, how


def test_many_small_events_in_one_chunk_do_not_count_together() -> None:
    events, _ = decode([b"data: abcdefgh\n\n" * 1000], max_event_size=100)
    assert events == [ev("abcdefgh")] * 1000


@pytest.mark.parametrize("limit", [0, -1])
def test_non_positive_limit_is_rejected(limit: int) -> None:
    with pytest.raises(ValueError, match="max_event_size must be positive"):
        SSEDecoder(max_event_size=limit)


# -- input types ------------------------------------------------------------------------

STREAM = "id: 5\nevent: e\ndata: hé\ndata: llo\n\ndata: x\n\n".encode()
STREAM_EVENTS = [ev("hé\nllo", event="e", id="5"), ev("x", id="5")]


@pytest.mark.parametrize(
    "convert",
    [bytes, bytearray, memoryview, lambda b: memoryview(b"pre" + b + b"post")[3:-4]],
    ids=["bytes", "bytearray", "memoryview", "memoryview slice"],
)
def test_input_types(convert: object) -> None:
    for how, chunks in cuts(STREAM):
        converted = [convert(c) for c in chunks]  # type: ignore[operator]
        assert decode(converted)[0] == STREAM_EVENTS, how


def test_mutating_a_fed_bytearray_does_not_change_later_events() -> None:
    decoder = SSEDecoder()
    buffer = bytearray(b"data: hel")
    assert decoder.feed(buffer) == []
    buffer[:] = b"XXXXXXXXX"
    view_source = bytearray(b"lo\ndata: w")
    assert decoder.feed(memoryview(view_source)) == []
    view_source[:] = b"YYYYYYYYYY"
    assert decoder.feed(b"orld\n\n") == [ev("hello\nworld")]


def test_mutating_a_bytearray_after_an_event_completed_in_it() -> None:
    decoder = SSEDecoder()
    buffer = bytearray(b"data: a\n\ndata: b")
    assert decoder.feed(buffer) == [ev("a")]
    buffer[:] = b"Z" * len(buffer)
    assert decoder.feed(b"\n\n") == [ev("b")]


# -- attributes -------------------------------------------------------------------------


def test_initial_state() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry, decoder.pending_bytes) == ("", None, 0)
    assert decoder.finished is False
    assert decoder.has_backlog is False


def test_last_event_id_from_constructor_is_used_until_the_server_sets_one() -> None:
    decoder = SSEDecoder(last_event_id="41")
    assert decoder.last_event_id == "41"
    assert decoder.feed(b"data: a\n\nid: 42\ndata: b\n\n") == [ev("a", id="41"), ev("b", id="42")]
    assert decoder.last_event_id == "42"


def test_pending_bytes_counts_the_event_in_progress() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: abc")
    assert decoder.pending_bytes == 9
    decoder.feed(b"\n")
    assert decoder.pending_bytes == 10
    decoder.feed(b"\ndata: b")
    assert decoder.pending_bytes == len(b"data: b")
    decoder.feed(b"\n\n")
    assert decoder.pending_bytes == 0


def test_retry_attribute_follows_the_last_valid_retry() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 100\ndata: a\n\n")
    assert decoder.retry == 100
    decoder.feed(b"retry: x\ndata: b\n\nretry: 250\n\n")
    assert decoder.retry == 250


def test_feed_blocks_and_parse_block() -> None:
    """The building blocks the typed decoders use: LF-normalised blocks, raw frames."""
    decoder = SSEDecoder()
    blocks = decoder.feed_blocks(b"event: e\r\ndata: 1\r\ndata: 2\r\n\r\nid: 3\n\ndata: x")
    assert blocks == [b"event: e\ndata: 1\ndata: 2", b"id: 3"]
    assert decoder.parse_block(blocks[0]) == ("e", b"1\n2", None)
    assert decoder.parse_block(blocks[1]) is None
    assert decoder.last_event_id == "3"


# -- linear time (structural, no timing) -----------------------------------------------


def test_two_mib_event_in_small_chunks() -> None:
    payload = b"z" * (2 * 1024 * 1024)
    stream = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    fed = 0
    for start in range(0, len(stream), 1536):
        chunk = stream[start : start + 1536]
        events += decoder.feed(chunk)
        fed += len(chunk)
        if fed < len(stream) - 1:
            # Nothing completes before the final blank line: every chunk is parked.
            assert events == []
            assert decoder.pending_bytes == fed
    assert events == [ev(payload.decode())]
    assert decoder.pending_bytes == 0


def test_two_mib_multi_line_event_with_crlf_in_small_chunks() -> None:
    line = b"data: " + b"q" * 1018 + b"\r\n"
    stream = line * 2048 + b"\r\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(stream), 1536):
        events += decoder.feed(stream[start : start + 1536])
    assert events == [ev("\n".join(["q" * 1018] * 2048))]
