"""Property tests of SSEDecoder and the encoder (hypothesis).

* However a stream is cut into chunks, the events are those of feeding it whole,
  and both agree with :func:`reference_decode`, a direct, line-by-line transcription
  of the standard on the decoded text (no blocks, no hot paths, no buffering).
* ``encode_event`` then ``SSEDecoder`` gives back the events that were encoded.
* Arbitrary bytes in arbitrary chunks never raise (except ``EventTooLarge`` when a
  small limit is set) and still agree with the reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from aiostreams import ServerSentEvent, SSEDecoder, encode_event, encode_sse
from aiostreams.errors import EventTooLarge

SETTINGS = settings(max_examples=200, deadline=None)

# -- the reference: WHATWG HTML 9.2.6 "Interpreting an event stream", transcribed ------

_LINE_END = re.compile(r"\r\n|\r|\n")  # CRLF first: it is one line ending
_ASCII_DIGITS = frozenset("0123456789")

State = tuple[list[ServerSentEvent], str, "int | None"]


def reference_decode(stream: bytes) -> State:
    """(events, last event id, reconnection time) after the whole stream and its end."""
    # "Streams must be decoded using the UTF-8 decode algorithm" (which strips one BOM).
    text = stream.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    # The last piece is a line without its end: discarded at end of stream.
    *lines, _unterminated = _LINE_END.split(text)
    data = event_type = ""
    id_buffer = last_event_id = ""
    reconnection_time: int | None = None
    block_retry: int | None = None  # aiostreams reports a block's own retry on its event
    events: list[ServerSentEvent] = []
    for line in lines:
        if line == "":  # dispatch
            last_event_id = id_buffer
            if data != "":
                data = data.removesuffix("\n")
                events.append(
                    ServerSentEvent(event_type or "message", data, last_event_id, block_retry)
                )
            data = event_type = ""
            block_retry = None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\x00" not in value:
                id_buffer = value
        elif name == "retry" and value and set(value) <= _ASCII_DIGITS:
            reconnection_time = block_retry = int(value)
    return events, last_event_id, reconnection_time


def decode(chunks: Sequence[bytes], max_event_size: int = 16 * 1024 * 1024) -> State:
    decoder = SSEDecoder(max_event_size=max_event_size)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    decoder.close()
    return events, decoder.last_event_id, decoder.retry


def test_reference_follows_the_standard_on_a_known_stream() -> None:
    """The oracle itself must be right, or agreeing with it proves nothing."""
    stream = (
        b"\xef\xbb\xbfid: 1\r\nretry: 5\rdata: a\n\ndata\nevent: e\n\nid: 2\nretry: 9\ndata: b\n"
    )
    assert reference_decode(stream) == (
        [ServerSentEvent("message", "a", "1", 5), ServerSentEvent("e", "", "1", None)],
        "1",
        9,
    )


# -- strategies ------------------------------------------------------------------------

_VALUE_TOKENS = [
    b"a",
    b"0",
    b"7",
    b" ",
    b":",
    b"\x00",
    b"\xef\xbb\xbf",  # BOM
    "é".encode(),
    "€".encode(),
    "😀".encode(),
    "١".encode(),  # a non-ASCII digit
    b"\xff",  # invalid UTF-8
    b"\xe2\x82",  # truncated UTF-8
    b"\r",
    b"\n",
    b"\r\n",
    b"data",
]
_NAMES = [b"data", b"event", b"id", b"retry", b"unknown", b"Data", b""]  # b"" + ":" = comment
_SEPARATORS = [b":", b": ", b":  ", b""]
_LINE_ENDINGS = [b"\n", b"\r", b"\r\n"]

values = st.lists(st.sampled_from(_VALUE_TOKENS), max_size=6).map(b"".join)
lines = st.one_of(
    st.just(b""),  # a blank line: dispatch
    st.builds(lambda v: b":" + v, values),  # a comment
    st.builds(
        lambda n, s, v: n + s + v, st.sampled_from(_NAMES), st.sampled_from(_SEPARATORS), values
    ),
    # The fields whose effect outlives a block, in well-formed shapes often enough:
    st.builds(lambda v: b"id: " + v, values),
    st.builds(lambda a, b: b"id: " + a + b"\x00" + b, values, values),  # ignored
    st.integers(0, 99999).map(lambda n: b"retry: %d" % n),
    st.builds(lambda v: b"data: " + v, values),
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf"]))
    body = b"".join(
        line + ending
        for line, ending in draw(
            st.lists(st.tuples(lines, st.sampled_from(_LINE_ENDINGS)), max_size=25)
        )
    )
    unterminated = draw(st.one_of(st.just(b""), lines))
    return bom + body + unterminated


@st.composite
def cut(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """``stream`` cut at random offsets (repeats give empty chunks)."""
    offsets = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *offsets, len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


@st.composite
def cut_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(streams())
    return stream, draw(cut(stream))


# -- (a) re-splitting never changes the events ------------------------------------------


@SETTINGS
@given(cut_streams())
def test_any_cut_gives_the_events_of_the_whole_stream(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    whole = decode([stream])
    assert decode(chunks) == whole
    assert whole == reference_decode(stream)


@SETTINGS
@given(streams())
def test_byte_by_byte_gives_the_events_of_the_whole_stream(stream: bytes) -> None:
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == reference_decode(stream)


_plain_values = st.lists(
    st.sampled_from([b"a", b"7", b" ", b":", "é".encode(), "😀".encode(), b"\x00", b"\xff"]),
    max_size=8,
).map(b"".join)


@st.composite
def uniform_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """Many events of one shape (the same fields in the same order), as real servers
    send them: long enough (often several KiB) to reach size-gated fast paths."""
    # Mostly distinct id/event/data lines (the common shapes); sometimes an extra
    # line that no column-wise shortcut may accept (retry, comment, repeated field).
    shape = list(draw(st.permutations([b"id", b"event", b"data"]))[: draw(st.integers(1, 3))])
    if draw(st.integers(0, 2)) == 0:
        extra = draw(st.sampled_from([b"retry", b":", b"data", b"id", b"event", b"other"]))
        shape.insert(draw(st.integers(0, len(shape))), extra)
    separator = draw(st.sampled_from([b": ", b": ", b":"]))
    ending = draw(st.sampled_from(_LINE_ENDINGS))
    pool = draw(st.lists(_plain_values, min_size=1, max_size=6))
    pick = draw(st.randoms(use_true_random=False)).choice  # cheap per-field choice
    count = draw(st.integers(1, 150))
    stream = b"".join(
        b"".join(name + separator + pick(pool) + ending for name in shape) + ending
        for _ in range(count)
    )
    return stream, draw(cut(stream))


@SETTINGS
@given(uniform_streams())
def test_long_uniform_streams_match_the_reference(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    assert decode([stream]) == reference_decode(stream)
    assert decode(chunks) == reference_decode(stream)


# -- (b) encode → decode round trip -----------------------------------------------------

# Any character, and often the ones the wire format cares about ("\r\n" comes from
# adjacent "\r" and "\n").
_text_chars = st.characters(codec="utf-8") | st.sampled_from(
    ["\r", "\n", "\x00", "\ufeff", ":", " ", "é", "😀"]
)
texts = st.text(_text_chars, max_size=16)
single_line = texts.map(lambda t: t.replace("\r", "").replace("\n", ""))


@dataclass(frozen=True)
class Encoded:
    data: str | None
    event: str | None
    id: str | None
    retry: int | None
    comment: str | None

    def wire(self) -> bytes:
        return encode_event(
            self.data, event=self.event, id=self.id, retry=self.retry, comment=self.comment
        )


encoded_events = st.builds(
    Encoded,
    data=st.none() | texts,
    event=st.none() | single_line,
    id=st.none() | single_line.map(lambda t: t.replace("\x00", "")),
    retry=st.none() | st.integers(0, 2**40),
    comment=st.none() | single_line,
)


def expected_after(sent: list[Encoded]) -> State:
    """What a decoder must report for ``sent``, from the fields alone."""
    events: list[ServerSentEvent] = []
    last_event_id, retry = "", None
    for item in sent:
        if item.id is not None:
            last_event_id = item.id
        if item.retry is not None:
            retry = item.retry
        if item.data is not None:  # data=None writes no data line: nothing is dispatched
            data = item.data.replace("\r\n", "\n").replace("\r", "\n")
            events.append(ServerSentEvent(item.event or "message", data, last_event_id, item.retry))
    return events, last_event_id, retry


@st.composite
def encoded_streams(draw: st.DrawFn) -> tuple[list[Encoded], list[bytes]]:
    sent = draw(st.lists(encoded_events, max_size=6))
    return sent, draw(cut(b"".join(item.wire() for item in sent)))


@SETTINGS
@given(encoded_streams())
def test_encode_then_decode_gives_the_events_back(
    case: tuple[list[Encoded], list[bytes]],
) -> None:
    sent, chunks = case
    assert decode(chunks) == expected_after(sent)


sse_events = st.builds(
    ServerSentEvent,
    event=single_line.filter(bool),  # a decoder never produces an empty type
    data=texts.map(lambda t: t.replace("\r\n", "\n").replace("\r", "\n")),
    id=single_line.map(lambda t: t.replace("\x00", "")),
    retry=st.none() | st.integers(0, 2**40),
)


@SETTINGS
@given(sse_events)
def test_encode_sse_then_decode_gives_the_event_back(event: ServerSentEvent) -> None:
    assert decode([encode_sse(event)])[0] == [event]


# -- (c) arbitrary bytes never raise ----------------------------------------------------


@st.composite
def cut_binary(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(st.binary(max_size=300))
    return stream, draw(cut(stream))


@SETTINGS
@given(cut_binary())
def test_arbitrary_bytes_never_raise(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    assert decode(chunks) == reference_decode(stream)


@SETTINGS
@given(cut_binary())
def test_arbitrary_bytes_with_a_small_limit_raise_only_event_too_large(
    case: tuple[bytes, list[bytes]],
) -> None:
    stream, chunks = case
    try:
        result = decode(chunks, max_event_size=32)
    except EventTooLarge as exc:
        assert exc.limit == 32
        assert exc.size > 32
    else:
        assert result == reference_decode(stream)
