"""The framer's bulk paths agree with the standard.

``SSEDecoder`` takes three routes: chunks of single-line ``data:`` events, regions
whose blocks all share one shape of ``id:``/``event:``/``data:`` lines (decoded
column-wise), and block-by-block parsing for everything else.  These properties
generate streams aimed at the first two — long enough (≥ 512 bytes) to use them —
and check them against ``reference_decode``, a line-by-line transcription of the
standard that shares no code with the decoder.  Values include empty strings, NUL,
CR, a BOM, non-ASCII and invalid UTF-8, where the fast paths must step aside or
agree.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_framing_properties import decode, reference_decode

from aiostreams import EventSchema, ServerSentEvent, SSEDecoder
from aiostreams.errors import EventTooLarge
from aiostreams.models import operations as ops

SETTINGS = settings(max_examples=100, deadline=None)

CHARS = ["a", "z", " ", ":", "é", "😀", "\ufeff", "{", '"']
value_text = st.text(alphabet=st.sampled_from(CHARS), max_size=12)
value_bytes = value_text.map(lambda s: s.encode()) | st.sampled_from(
    [b"\xff", b"\xe2\x82", b"ok", b""]
)
FIELDS = ("id", "event", "data")
STRAYS = [b": comment", b"retry: 5", b"data", b"data:x", b"id: a\x00b"]


@st.composite
def uniform_streams(draw: st.DrawFn) -> bytes:
    """Many blocks with the same field lines; in half of them one block breaks the
    pattern (a comment, retry, a NUL in an id...), which must divert to the parser."""
    shape = draw(st.permutations(FIELDS).flatmap(lambda p: st.sampled_from([p, p[1:], p[2:]])))
    if "data" not in shape:
        shape = (*shape, "data")
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    count = draw(st.integers(20, 60))
    blocks = [[name.encode() + b": " + draw(value_bytes) for name in shape] for _ in range(count)]
    if draw(st.booleans()):
        draw(st.sampled_from(blocks)).append(draw(st.sampled_from(STRAYS)))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + b"".join(newline.join(lines) + newline + newline for lines in blocks)


@SETTINGS
@given(uniform_streams(), st.integers(1, 5000))
def test_uniform_blocks_match_the_standard(stream: bytes, chunk_size: int) -> None:
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    assert decode(chunks) == reference_decode(stream)
    assert decode([stream]) == reference_decode(stream)


@st.composite
def data_only_streams(draw: st.DrawFn) -> bytes:
    payloads = draw(st.lists(value_bytes, min_size=30, max_size=120))
    tail = draw(st.sampled_from([b"", b"data: partial", b"data: [DONE]\n\n", b"id: 1\n\n"]))
    return b"".join(b"data: " + p + b"\n\n" for p in payloads) + tail


@SETTINGS
@given(data_only_streams(), st.integers(1, 5000))
def test_data_only_chunks_match_the_standard(stream: bytes, chunk_size: int) -> None:
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    assert decode(chunks) == reference_decode(stream)


def test_one_huge_event_in_small_chunks() -> None:
    payload = b"x" * (2 * 1024 * 1024)
    stream = b"data: " + payload + b"\n\ndata: next\n\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 1536):
        events += decoder.feed(stream[i : i + 1536])
    assert [len(e.data) for e in events] == [len(payload), 4]


def test_typed_bulk_path_matches_the_per_event_path() -> None:
    # Same events whether the chunk is one uniform run of data lines (bulk path) or
    # starts with an id line (block-by-block path).
    body = b"".join(b'data: {"content": "tok%d"}\n\n' % i for i in range(500))
    bulk = ops.CHAT_SKIP_SENTINEL.decode_all(body)
    per_event = ops.CHAT_SKIP_SENTINEL.decode_all(b"id: 0\n" + body)
    assert bulk == per_event
    assert [e.data.content for e in bulk] == [f"tok{i}" for i in range(500)]


def test_event_too_large_keeps_the_events_before_it() -> None:
    # The events completed in the same chunk before an oversized one are delivered;
    # the error comes from the next feed (has_backlog says so).
    decoder = SSEDecoder(max_event_size=1000)
    assert decoder.feed(b"data: a\n\ndata: " + b"x" * 2000 + b"\n\ndata: b\n\n") == [
        ServerSentEvent(data="a")
    ]
    assert decoder.has_backlog
    with pytest.raises(EventTooLarge, match="limit is 1000 bytes"):
        decoder.feed(b"")
    assert not decoder.has_backlog


def test_event_too_large_in_the_unfinished_rest_after_good_events() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    assert decoder.feed(b"data: a\n\ndata: " + b"x" * 2000) == [ServerSentEvent(data="a")]
    with pytest.raises(EventTooLarge):
        decoder.feed(b"")
    assert decoder.pending_bytes == 0  # the buffer was freed


def test_event_too_large_first_raises_at_once() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"x" * 2000 + b"\n\ndata: b\n\n")


def test_typed_decoder_delivers_before_raising_event_too_large() -> None:
    decoder = ops.TEXT.decoder(max_event_size=1000)
    events = decoder.feed(b"data: a\n\ndata: " + b"x" * 2000 + b"\n\n")
    assert [e.data for e in events] == ["a"]
    assert decoder.has_backlog
    with pytest.raises(EventTooLarge):
        decoder.feed(b"")


class Named(msgspec.Struct):
    event: str  # a free event name: the Struct takes every name of data_types
    data: str
    id: str


NAMED: EventSchema[Named] = EventSchema(Named, data_types={"a": str, "b": str, "message": str})


@st.composite
def uniform_named_streams(draw: st.DrawFn) -> bytes:
    """Same-shaped id/event/data blocks whose event names the schema declares."""
    shape = draw(st.permutations(FIELDS).flatmap(lambda p: st.sampled_from([p, p[1:], p[2:]])))
    if "data" not in shape:
        shape = (*shape, "data")
    # Per stream: ids all ASCII, all valid UTF-8, or anything (an id that is not
    # UTF-8 diverts the typed decoder to the parser).
    ids = draw(st.sampled_from(["ascii", "utf-8", "bytes"]))
    values = {
        "event": st.sampled_from([b"a", b"b", b""]),
        "id": {
            "ascii": st.text(alphabet="az :", max_size=12).map(str.encode),
            "utf-8": value_text.map(str.encode),
            "bytes": value_bytes,
        }[ids],
        "data": value_bytes,
    }
    count = draw(st.integers(20, 60))
    blocks = [[name.encode() + b": " + draw(values[name]) for name in shape] for _ in range(count)]
    if draw(st.integers(0, 3)) == 0:  # now and then one block breaks the pattern
        draw(st.sampled_from(blocks)).append(draw(st.sampled_from(STRAYS)))
    return b"".join(b"\n".join(lines) + b"\n\n" for lines in blocks)


@SETTINGS
@given(uniform_named_streams(), st.integers(256, 8192))
def test_typed_column_path_matches_the_standard(stream: bytes, chunk_size: int) -> None:
    expected_events, last_event_id, _ = reference_decode(stream)
    decoder = NAMED.decoder()
    got: list[Named] = []
    for i in range(0, len(stream), chunk_size):
        got += decoder.feed(stream[i : i + chunk_size])
    assert got == [Named(e.event, e.data, e.id) for e in expected_events]
    assert decoder.last_event_id == last_event_id
