"""Mixed-shape reads agree with the standard (issue 12).

Real servers mix shapes inside one network read: keep-alive comments between
token events, ``event: ping`` among deltas, multi-line data, ids on every event,
CRLF, a large event among small ones.  The framer decodes such a read as *runs*
of same-shaped blocks, drops comment-only blocks, cuts keep-alives off its
single-line path, has a multi-line ``data`` path and walks large events LF by LF.
These properties generate reads that mix every shape (often several KiB, so every
path is reached) and check the raw and the typed decoder against
``reference_decode``, the line-by-line transcription of the standard.
"""

from __future__ import annotations

import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_framing_properties import decode, reference_decode

from aiostreams import EventSchema, SSEDecoder
from aiostreams._framing import _STR_FIELDS, runs
from aiostreams.errors import ResponseValidationError

#: More examples for a long check: AIOSTREAMS_MIXED_EXAMPLES=20000 pytest --timeout 0 ...
SETTINGS = settings(
    max_examples=int(os.environ.get("AIOSTREAMS_MIXED_EXAMPLES", "300")), deadline=None
)

_value = st.text(
    alphabet=st.sampled_from(["a", "z", " ", ":", "é", "😀", "{", '"', "7"]), max_size=10
)
value_bytes = _value.map(str.encode) | st.sampled_from([b"\xff", b"\x00", b"", b"ok", b"data: x"])


def _block(kind: str, value: bytes, big: bytes) -> list[bytes]:
    """The lines of one block of the given shape."""
    return {
        "data": [b"data: " + value],
        "data2": [b"data: " + value, b"data: " + value[::-1]],
        "data3": [b"data: " + value, b"data: ", b"data: z"],
        "event": [b"event: delta", b"data: " + value],
        "ping": [b"event: ping", b'data: {"type": "ping"}'],
        "id": [b"id: " + value, b"event: e", b"data: " + value],
        "idonly": [b"id: " + value],
        "empty-event": [b"event: ", b"data: " + value],
        "comment": [b": keep-alive"],
        "comments": [b":ok", b": more"],
        "comment-inside": [b": note", b"data: " + value],
        "retry": [b"retry: 3000", b"data: " + value],
        "nospace": [b"data:" + value],
        "other": [b"other: x", b"data: " + value],
        "blank": [],  # an extra blank line
        "large": [b"data: " + big],
        "large-event": [b"event: big", b"data: " + big],
    }[kind]


KINDS = [
    "data", "data2", "data3", "event", "ping", "id", "idonly", "empty-event", "comment",
    "comments", "comment-inside", "retry", "nospace", "other", "blank", "large", "large-event",
]  # fmt: skip


@st.composite
def mixed_streams(draw: st.DrawFn) -> bytes:
    """Runs of blocks, each run of one shape, the shape changing every 1-30 blocks."""
    newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    big = b"x" * draw(st.sampled_from([1, 1100, 3000]))
    blocks: list[list[bytes]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(KINDS))
        count = draw(st.integers(1, 30))
        blocks += [_block(kind, draw(value_bytes), big) for _ in range(count)]
    body = b"".join(b"".join(line + newline for line in lines) + newline for lines in blocks)
    return body + draw(st.sampled_from([b"", b"data: unfinished", b"id: 9\n"]))


_no_nul = value_bytes.filter(lambda value: b"\x00" not in value)


@st.composite
def short_run_streams(draw: st.DrawFn) -> bytes:
    """The shape changing every 1-3 blocks over many runs: the framer hands such a
    region's rest to its line loop (``runs(bail=True)``).  No NUL: a region with
    one is walked block by block before any run is looked for."""
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    blocks: list[list[bytes]] = []
    for _ in range(draw(st.integers(8, 40))):
        kind = draw(st.sampled_from([k for k in KINDS if not k.startswith("large")]))
        count = draw(st.integers(1, 3))
        blocks += [_block(kind, draw(_no_nul), b"") for _ in range(count)]
    body = b"".join(b"".join(line + newline for line in lines) + newline for lines in blocks)
    return body + draw(st.sampled_from([b"", b"data: unfinished", b"id: 9\n"]))


def _chunks(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)] or [b""]


@SETTINGS
@given(mixed_streams(), st.sampled_from([7, 100, 1536, 16384, 1 << 20]))
def test_mixed_reads_match_the_standard(stream: bytes, chunk_size: int) -> None:
    assert decode(_chunks(stream, chunk_size)) == reference_decode(stream)


@SETTINGS
@given(short_run_streams(), st.sampled_from([1536, 1 << 20]))
def test_short_runs_match_the_standard(stream: bytes, chunk_size: int) -> None:
    assert decode(_chunks(stream, chunk_size)) == reference_decode(stream)


def test_short_runs_reach_the_line_loop() -> None:
    kinds = ["data", "event", "id", "retry", "comment-inside", "data2"] * 4
    blocks = [_block(k, b"v%d" % i, b"") for i, k in enumerate(kinds)]
    body = b"".join(b"".join(line + b"\n" for line in lines) + b"\n" for lines in blocks)
    lines = body.decode().split("\n")[:-1]
    assert runs(lines, _STR_FIELDS, bail=True)[-1][2] == -1  # the rest: line by line
    assert runs(lines, _STR_FIELDS)[-1][2] != -1
    assert decode([body]) == reference_decode(body)


class Any_(msgspec.Struct):
    event: str
    data: str
    id: str


ANY: EventSchema[Any_] = EventSchema(
    Any_, data_types=dict.fromkeys(["message", "delta", "ping", "e", "big"], str)
)


@SETTINGS
@given(mixed_streams(), st.sampled_from([100, 1536, 16384, 1 << 20]))
def test_typed_mixed_reads_match_the_standard(stream: bytes, chunk_size: int) -> None:
    events, last_event_id, retry = reference_decode(stream)
    decoder = ANY.decoder()
    got: list[Any_] = []
    for chunk in _chunks(stream, chunk_size):
        got += decoder.feed(chunk)
    decoder.close()
    assert got == [Any_(e.event, e.data, e.id) for e in events]
    assert (decoder.last_event_id, decoder.retry) == (last_event_id, retry)


ANY_UNTIL_DONE: EventSchema[Any_] = EventSchema(
    Any_, data_types=dict.fromkeys(["message", "delta", "ping", "e", "big"], str), sentinel="[DONE]"
)


@SETTINGS
@given(mixed_streams(), st.sampled_from([b"data: [DONE]\n\n", b"data: [DONE]\r\n\r\n"]), st.data())
def test_typed_text_reads_stop_at_the_sentinel(
    stream: bytes, done: bytes, data: st.DataObject
) -> None:
    """Text data is decoded region-wise (``text_data``); the sentinel still stops it."""
    cut = data.draw(st.sampled_from([0] + [i + 2 for i in _blank_lines(stream)]))
    stream = stream[:cut] + done + stream[cut:]
    events, _, _ = reference_decode(stream)
    upto = [e.data for e in events].index("[DONE]")
    decoder = ANY_UNTIL_DONE.decoder()
    got: list[Any_] = []
    for chunk in _chunks(stream, data.draw(st.sampled_from([100, 16384, 1 << 20]))):
        got += decoder.feed(chunk)
        if decoder.finished:
            break
    assert decoder.finished
    assert got == [Any_(e.event, e.data, e.id) for e in events[:upto]]


def _blank_lines(stream: bytes) -> list[int]:
    """Where a block ends (LF line ends only: other streams get the sentinel first)."""
    return [i for i in range(len(stream) - 1) if stream[i : i + 2] == b"\n\n"][:50]


class Doc(msgspec.Struct):
    n: int


class Tagged(msgspec.Struct):
    event: str
    data: Doc


TAGGED: EventSchema[Tagged] = EventSchema(Tagged, data_types={"message": Doc, "delta": Doc})


@st.composite
def json_streams(draw: st.DrawFn) -> bytes:
    """Events whose data is mostly valid for the schema, sometimes not, in runs of shapes."""
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["data", "event", "comment", "bad", "unknown", "multi"]))
        for i in range(draw(st.integers(1, 25))):
            doc = b'{"n": %d}' % i
            lines = {
                "data": [b"data: " + doc],
                "event": [b"event: delta", b"data: " + doc],
                "comment": [b": keep-alive"],
                "bad": [b"data: " + draw(st.sampled_from([b"{", b'{"n": "x"}', b"\xff"]))],
                "unknown": [b"event: nope", b"data: " + doc],
                "multi": [b'data: {"n":', b"data: %d}" % i],
            }[kind]
            out.append(b"".join(line + newline for line in lines) + newline)
    return b"".join(out)


def _expected(stream: bytes) -> list[object]:
    """What the typed decoder must yield, in order: a Struct, or the error type."""
    out: list[object] = []
    for e in reference_decode(stream)[0]:
        if e.event not in ("message", "delta"):
            out.append(ResponseValidationError)
            continue
        try:
            out.append(Tagged(e.event, msgspec.json.decode(e.data, type=Doc)))
        except (msgspec.ValidationError, msgspec.DecodeError):
            out.append(ResponseValidationError)
    return out


@SETTINGS
@given(json_streams(), st.sampled_from([64, 1536, 16384, 1 << 20]))
def test_typed_errors_come_in_stream_order_and_nothing_is_lost(
    stream: bytes, chunk_size: int
) -> None:
    decoder = TAGGED.decoder()
    got: list[object] = []
    for chunk in _chunks(stream, chunk_size):
        pending = True
        feed = chunk
        while pending:
            try:
                got += decoder.feed(feed)
            except ResponseValidationError:
                got.append(ResponseValidationError)
            feed = b""
            pending = decoder.has_backlog
    assert got == _expected(stream)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_keep_alive_between_token_events_in_one_read(ending: bytes) -> None:
    body = b"".join(
        (b'data: {"n": %d}' % i + ending + ending)
        + ((b": keep-alive" + ending + ending) if i % 3 == 0 else b"")
        for i in range(300)
    )
    assert decode([body]) == reference_decode(body)
    assert [e.data for e in SSEDecoder().feed(body)] == [f'{{"n": {i}}}' for i in range(300)]
