"""Garbage in, documented errors out: the framer and a typed decoder under hostile bytes.

* Hypothesis feeds arbitrary bytes, and SSE-shaped garbage (field names, colons,
  CR/LF soup, invalid UTF-8, broken JSON), in arbitrary chunks.  The framer may only
  raise ``EventTooLarge`` (``LineTooLong`` is one); a typed decoder may also raise
  ``ResponseValidationError`` and ``StreamError`` for one bad event, and must then
  go on (its backlog drains), without losing the well-formed events around it.
* ``max_line_length``: boundaries, line endings split across chunks, and the fact
  that it is only measured where bytes are buffered.
"""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostreams import EventSchema, ServerSentEvent, SSEDecoder
from aiostreams.errors import (
    AiostreamsError,
    EventTooLarge,
    LineTooLong,
    ResponseValidationError,
    StreamError,
)

SETTINGS = settings(max_examples=300, deadline=None)

# -- strategies -------------------------------------------------------------------------

#: Pieces SSE garbage is made of: real field names and separators, near misses,
#: invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong form),
#: NUL, a BOM, JSON fragments and the sentinel.
_PIECES = [
    b"data:",
    b"data: ",
    b"id:",
    b"id: 7",
    b"event:",
    b"event: error",
    b"event: nope",
    b"retry: 5",
    b"retry: x",
    b":",
    b": comment",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b" ",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\x80",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"{",
    b"}",
    b'{"n": 1}',
    b'{"n": "x"}',
    b'{"n": 1, "s": "\xff"}',
    b'"\xfe"',
    b'{"\xff": 1}',
    b'{"message": "\xfe"}',
    b"[DONE]",
    b"DATA:",
]
sse_garbage = st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=8)), max_size=60).map(
    b"".join
)
any_bytes = st.binary(max_size=2000)
#: Garbage with an event's shape: lines ``<field>: <value>``, blocks ending in a blank
#: line, so bad values actually reach the JSON decoder.
_line = st.one_of(
    st.builds(
        lambda value: b"data: " + value,
        st.one_of(
            st.sampled_from(
                [b'{"n": 1}', b'{"n": "x"}', b'{"\xff": 1}', b'{"message": "\xfe"}', b"[DONE]"]
            ),
            st.sampled_from(_PIECES),
            st.binary(max_size=6),
        ),
    ),
    st.sampled_from([b"event: text", b"event: error", b"event: nope", b"id: 1", b"retry: 1"]),
    st.builds(lambda value: b"x" + value, st.binary(max_size=6)),
)
sse_events = st.lists(st.lists(_line, min_size=1, max_size=4).map(b"\n".join), max_size=12).map(
    lambda blocks: b"".join(block + b"\n\n" for block in blocks)
)


@st.composite
def chunked(draw: st.DrawFn, body: st.SearchStrategy[bytes]) -> list[bytes]:
    """``body`` cut at arbitrary points (including empty chunks)."""
    data = draw(body)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- the framer -------------------------------------------------------------------------


def _frame_all(chunks: list[bytes], decoder: SSEDecoder) -> list[ServerSentEvent]:
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    decoder.close()
    return events


@SETTINGS
@given(chunked(st.one_of(any_bytes, sse_garbage, sse_events)))
def test_framer_never_raises_on_garbage(chunks: list[bytes]) -> None:
    events = _frame_all(chunks, SSEDecoder())
    assert all(isinstance(e, ServerSentEvent) for e in events)
    # Garbage or not, events are what feeding the whole body at once gives.
    assert events == _frame_all([b"".join(chunks)], SSEDecoder())


@SETTINGS
@given(chunked(st.one_of(any_bytes, sse_garbage)), st.integers(1, 64), st.integers(1, 64))
def test_framer_under_small_limits_raises_only_the_limit_errors(
    chunks: list[bytes], max_event_size: int, max_line_length: int
) -> None:
    decoder = SSEDecoder(max_event_size=max_event_size, max_line_length=max_line_length)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            # Memory bound: what is buffered never exceeds the event limit.
            assert decoder.pending_bytes <= max_event_size
    except LineTooLong as exc:
        assert exc.limit == max_line_length and exc.size > max_line_length
        assert "max_line_length" in str(exc)
    except EventTooLarge as exc:
        assert exc.limit == max_event_size and exc.size > max_event_size
        assert "max_event_size" in str(exc)


# -- a typed decoder --------------------------------------------------------------------


class Item(msgspec.Struct):
    data: dict[str, int]


class Text(msgspec.Struct, tag_field="event", tag="text"):
    data: str


class Failure(msgspec.Struct):
    message: str


SCHEMA: EventSchema[Item | Text] = EventSchema(
    Item, Text, sentinel="[DONE]", errors={"error": Failure}
)
_DOCUMENTED = (ResponseValidationError, StreamError, EventTooLarge)


def _decode_typed(chunks: list[bytes], max_event_size: int = 1 << 20) -> tuple[list[object], int]:
    """Every event and the count of documented errors; any other exception escapes."""
    decoder = SCHEMA.decoder(max_event_size=max_event_size)
    events: list[object] = []
    errors = 0
    pending = list(chunks)
    for _ in range(10_000):  # bounded: each pass consumes a chunk or drains a backlog
        if decoder.finished or not (pending or decoder.has_backlog):
            break
        try:
            events += decoder.feed(b"" if decoder.has_backlog else pending.pop(0))
        except EventTooLarge:
            errors += 1
            break  # the stream cannot go on
        except (ResponseValidationError, StreamError):
            errors += 1
    else:  # pragma: no cover - a decoder that never drains would be the bug
        pytest.fail("the typed decoder did not drain its backlog")
    decoder.close()
    return events, errors


@SETTINGS
@given(chunked(st.one_of(sse_garbage, sse_events)))
def test_typed_decoder_raises_only_documented_errors_and_goes_on(chunks: list[bytes]) -> None:
    try:
        events, _ = _decode_typed(chunks)
    except Exception as exc:  # noqa: BLE001 - anything else escaping is the bug looked for
        # Any other exception is a bug: fail with a readable reproduction.
        pytest.fail(f"{exc.__class__.__name__} escaped the typed decoder: {exc!r}")
    assert all(isinstance(e, Item | Text) for e in events)


@SETTINGS
@given(chunked(st.one_of(sse_garbage, sse_events)), st.integers(1, 64))
def test_typed_decoder_under_a_small_limit(chunks: list[bytes], limit: int) -> None:
    try:
        _decode_typed(chunks, max_event_size=limit)
    except Exception as exc:  # noqa: BLE001 - anything else escaping is the bug looked for
        pytest.fail(f"{exc.__class__.__name__} escaped the typed decoder: {exc!r}")


def test_good_events_around_bad_ones_are_all_delivered_in_order() -> None:
    body = (
        b'data: {"n": 1}\n\n'
        b"data: not json\n\n"
        b'event: error\ndata: {"message": "boom"}\n\n'
        b"event: text\ndata: \xff\xfe\n\n"  # text: invalid UTF-8 is replaced, not an error
        b'data: {"n": 2}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"n": 3}\n\n'  # after the sentinel: never decoded
    )
    for size in (1, 2, 3, 7, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        events, errors = _decode_typed(chunks)
        assert events == [Item({"n": 1}), Text("\ufffd\ufffd"), Item({"n": 2})]
        assert errors == 2


def test_invalid_utf8_inside_json_is_a_validation_error() -> None:
    decoder = SCHEMA.decoder()
    with pytest.raises(ResponseValidationError) as info:
        decoder.feed(b'data: {"n": 1, "\xff": 2}\n\n')
    assert isinstance(info.value, AiostreamsError)


# -- max_line_length --------------------------------------------------------------------


def test_max_line_length_boundary_and_message() -> None:
    decoder = SSEDecoder(max_line_length=10)
    assert decoder.feed(b"data: 0123") == []  # exactly 10 bytes: fine
    with pytest.raises(LineTooLong) as info:
        decoder.feed(b"4")
    assert (info.value.size, info.value.limit) == (11, 10)
    assert isinstance(info.value, EventTooLarge)  # handled wherever the size limit is
    assert "max_line_length" in str(info.value) and "10 bytes" in str(info.value)
    assert "connect(..., max_line_length=...)" in str(info.value)


def test_many_short_lines_never_trip_the_line_limit() -> None:
    decoder = SSEDecoder(max_line_length=16)
    chunks = [b"data: abc\n", b"data: de", b"f\nda", b"ta: g\r", b"\n", b"\r\n"] * 50
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    # The event is ~2.5 KiB, far over the line limit; no single line is.
    assert len(events) == 50
    assert events[0].data == "abc\ndef\ng"


def test_line_limit_counts_across_chunks_and_resets_at_a_line_break() -> None:
    decoder = SSEDecoder(max_line_length=8)
    decoder.feed(b"data: ab")  # 8
    decoder.feed(b"\r")  # line ends (CR)
    decoder.feed(b"\ndata:")  # the LF of the CRLF, then 5 bytes of a new line
    decoder.feed(b"123")  # 8
    with pytest.raises(LineTooLong):
        decoder.feed(b"4")


def test_a_line_arriving_whole_in_one_chunk_is_not_measured() -> None:
    # Documented: the check runs only where bytes are parked, so a long line inside
    # one chunk that also completes its event costs no buffering and passes.
    decoder = SSEDecoder(max_line_length=8)
    assert decoder.feed(b"data: " + b"x" * 100 + b"\n\n") == [ServerSentEvent(data="x" * 100)]


def test_max_line_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line_length"):
        SSEDecoder(max_line_length=0)
