"""Sans-IO Server-Sent Events framing: bytes in, events out.  No I/O, no asyncio.

This is the WHATWG HTML Living Standard, section 9.2.6 "Interpreting an event
stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
implemented on bytes.

Strategy
--------
The stream is a sequence of lines; every *empty* line dispatches.  So once
line endings are normalised to LF, ``b"\n\n"`` marks exactly "end of a line,
then an empty line", and the stream splits into *blocks*: each block is the
lines of one event, followed by a dispatch.  Blocks are independent except for
the last-event-id and reconnection time, so:

* ``feed_region`` finds the last blank line in the new bytes (C speed): what is
  before it is the completed *region*, what follows is kept for the next chunk.
* Real servers mix shapes in one read (keep-alives between tokens, pings among
  deltas), so a region is decoded by the first of these that applies:

  0. a region that starts with a long line (a large event) is walked block by
     block with ``find(b"\n")``, a memchr (``walk_blocks``): CPython's ``split``,
     ``count`` and multi-byte ``find`` scan JSON byte by byte;
  1. every block is one ``data: <line>`` (LLM token streams): one UTF-8 decode
     and one ``split("\n\ndata: ")`` for the whole region, checked exact by a
     count of LFs; comment-only blocks in between are proven so and cut off
     (``cut_comments``); ``single_line_data`` is the same on bytes;
  1b. every block is only ``data:`` lines: path 1's pieces when every extra LF
      starts a ``data:`` line (``_inner_data_lines``), else ``multi_line_data``;
  2. anything else: *runs* of same-shaped blocks (``runs``), each decoded
     column-wise with C-level ``map``; a block of another shape alone through
     the line-by-line parser of the standard (``parse_block``).  When the runs
     of a region turn out short (the shape changes every few blocks), the rest
     of it goes through one plain line loop (``_line_events``).

  Comment-only blocks opening a region are dropped first (``drop_comment_blocks``).
  The property tests check every path against a transcription of the standard,
  on reads that mix every shape.

Invariants
----------
* ``_tail`` (+ ``_parts``) never contains ``b"\\n\\n"``: it is the bytes since the
  last dispatch.  A new chunk is scanned once; if it completes no block it is
  parked in ``_parts`` (O(1)) and joined only when a block completes, so a
  2 MiB event arriving in 1536-byte chunks costs O(n), not O(n^2).
* CR and CRLF are rewritten to LF before scanning (only in chunks that contain a
  CR; ``bytes.splitlines`` + join).  A CR at the very end of a chunk is a complete line ending already; an LF
  at the start of the next chunk is then the second half of that CRLF and is
  dropped (``_after_cr``).
* UTF-8 is decoded per field or per region with ``errors="replace"``.  CR, LF
  and ":" are ASCII and can never sit inside a multi-byte sequence, so decoding
  a field or a region alone gives exactly what decoding the whole stream would
  (the standard's "UTF-8 decode"), however the chunks were cut.
* One leading BOM (EF BB BF) is stripped, even when split across chunks.

Complexity: every byte is scanned a constant number of times; memory is bounded
by ``max_event_size`` (the bytes since the last dispatch).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress, repeat
from operator import itemgetter
from typing import AnyStr, Final

from ._events import ServerSentEvent
from .errors import EventTooLarge, LineTooLong

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder"]

#: 16 MiB.  Far above any real event (LLM token streams send tens of bytes, large
#: JSON documents a few MiB) yet small enough that a runaway server cannot exhaust
#: memory.  aiohttp caps a single header/line at 8 KiB and Node's EventSource
#: has no cap at all; we pick a generous, explicit middle.
DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024

_BOM: Final = b"\xef\xbb\xbf"
_LINE_ENDS: Final = (0x0A, 0x0D)
_DATA_PREFIX: Final = b"data: "
_SSE = ServerSentEvent
#: A region whose first line is longer than this starts with a large event: it is
#: walked block by block (``walk_blocks``) instead of split in bulk.
_LARGE_LINE: Final = 1024
#: ``runs(bail=True)`` hands the rest of a region to a line loop once this many
#: runs average fewer than ``_BAIL_BLOCKS`` blocks (short runs cost more to find
#: than to parse line by line).
_BAIL_RUNS: Final = 4
_BAIL_BLOCKS: Final = 6
#: The field lines path 2 understands (see ``runs``).
_STR_FIELDS: Final = ("data: ", "event: ", "id: ", ":")
_BYTES_FIELDS: Final = (b"data: ", b"event: ", b"id: ", b":")
_strip_data = itemgetter(slice(6, None))
_strip_event = itemgetter(slice(7, None))
_strip_id = itemgetter(slice(4, None))
#: Payloads shorter than this are sliced (a small copy costs less than a
#: memoryview); longer ones are handed on as zero-copy memoryviews.
_COPY_BELOW: Final = 2048


#: (event type, data bytes, retry) of a block that dispatches an event.
RawFrame = tuple[str, bytes, "int | None"]


class SSEDecoder:
    """Incremental, sans-IO decoder of a ``text/event-stream`` body.

    Feed it the body's bytes in chunks of any size, cut anywhere (inside a line,
    inside a CRLF, inside a UTF-8 sequence); it returns each event as soon as
    the empty line that dispatches it has arrived.

    Args:
        max_event_size: the most bytes kept for one not-yet-dispatched event
            (including comments and field names).  Past it, :meth:`feed` raises
            :class:`~aiostreams.errors.EventTooLarge`.
        last_event_id: the initial last event id (e.g. when resuming a stream).
        max_line_length: the most bytes kept for one unfinished line, or ``None``
            (only ``max_event_size`` bounds it).  Past it, :meth:`feed` raises
            :class:`~aiostreams.errors.LineTooLong`.  Checked only where bytes are buffered (a chunk
            that completes no event): a line that arrives whole inside one chunk
            costs no buffering and is not measured, so the check adds nothing to
            the per-event path.

    Attributes:
        last_event_id: the stream's last event id string, updated at each
            dispatch (also by blocks that carry only ``id:``).  Settable.
        retry: the reconnection time in ms from the last valid ``retry:``
            field, or ``None``.  Updated when the field's event completes, and by
            :meth:`close` for the complete lines of a discarded final event.
    """

    __slots__ = (
        "_after_cr",
        "_bom",
        "_error",
        "_keepalives",
        "_line",
        "_parts",
        "_size",
        "_tail",
        "last_event_id",
        "max_event_size",
        "max_line_length",
        "retry",
    )

    def __init__(
        self,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        last_event_id: str = "",
        max_line_length: int | None = None,
    ) -> None:
        if max_event_size <= 0:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        if max_line_length is not None and max_line_length <= 0:
            raise ValueError(f"max_line_length must be positive or None, got {max_line_length}")
        self.max_event_size = max_event_size
        self.max_line_length = max_line_length
        self._line = 0  # length of the unfinished last line; valid only while _parts is non-empty
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._tail = b""  # bytes since the last dispatch (no b"\n\n" inside)
        self._parts: list[bytes] = []  # chunks parked after _tail, none completing a block
        self._size = 0  # len(_tail) + sum(len(p) for p in _parts)
        self._after_cr = False  # previous chunk ended in CR: a leading LF is its pair
        self._bom: bytes | None = b""  # bytes seen while a BOM is still possible; None once decided
        self._error: EventTooLarge | None = None  # raised by the next feed (see has_backlog)
        self._keepalives = False  # the last single-line region had comment blocks

    # -- public API -----------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Take the next piece of the body; return the events it completed (maybe none).

        Raises:
            EventTooLarge: the pending event exceeded ``max_event_size``.
        """
        region = self.feed_region(chunk)
        if region is None:
            return []
        buf, end = region
        # A long first line (a large event): walk the region LF by LF (memchr speed)
        # rather than split it in bulk (a scan per byte, see walk_blocks).
        if buf.find(b"\n", 0, _LARGE_LINE) < 0:
            return self._walk_events(buf, end)
        if buf[:1] == b":":  # e.g. a ":ok" or keep-alive opening the region
            buf, end = drop_comment_blocks(buf, end)
        if buf[:6] == _DATA_PREFIX:
            events = self._data_events(buf, end)
            if events is not None:
                return events
            events = self._multi_line_data_events(buf, end)
            if events is not None:
                return events
        if not end:
            return []
        if buf.find(b"\x00", 0, end) >= 0:  # an id with NUL is ignored: parse_block knows
            return self._walk_events(buf, end)
        text = str(memoryview(buf)[:end], "utf-8", "replace")
        lines = text.split("\n")
        del lines[-1]  # the empty item after the region's final LF
        return self._run_events(lines)

    def _data_events(self, buf: bytes, end: int) -> list[ServerSentEvent] | None:
        """Path 1: every block is one "data: ..." line (LLM token streams): one UTF-8
        decode and one split for the whole region, checked exact by the LF count
        (see ``single_line_data``); ``None`` for any other shape."""
        pieces = str(memoryview(buf)[6 : end - 2], "utf-8", "replace").split("\n\ndata: ")
        # With keep-alives seen last time, cut_comments alone is the proof: no LF count.
        lfs = -1 if self._keepalives else buf.count(b"\n", 0, end)
        if lfs != 2 * len(pieces):
            if lfs >= 3 * len(pieces) and _inner_data_lines(buf, end, len(pieces), lfs):
                # Only data lines (text events): the pieces are already the blocks.
                lid = self.last_event_id
                values = map(str.replace, pieces, repeat("\ndata: "), repeat("\n"))
                return [_SSE("message", value, lid, None) for value in values]
            # Keep-alives between the events (or, last time, some): one pass over
            # the pieces proves the shape and cuts them, instead of the LF count.
            cuts = cut_comments(pieces, "\n", ":")
            if cuts < 0:
                return None
            self._keepalives = cuts > 0
        lid = self.last_event_id
        return [_SSE("message", data, lid, None) for data in pieces]

    def _multi_line_data_events(self, buf: bytes, end: int) -> list[ServerSentEvent] | None:
        """Path 1b: every block is only ``data:`` lines, one or more (text events).

        Why this is exact: every block starts with ``data: `` (checked), and every
        LF inside a block is followed by ``data: ``: the blocks hold ``count(LF) -
        2 * blocks`` inner LFs, and ``"\\ndata: "`` occurs once per inner LF plus
        once per block after the first (checked equal).
        """
        text = str(memoryview(buf)[:end], "utf-8", "replace")
        blocks = text.split("\n\n")
        del blocks[-1]  # the empty item after the region's final blank line
        if not all(map(str.startswith, blocks, repeat("data: "))):
            return None
        inner = buf.count(b"\n", 0, end) - 2 * len(blocks)
        if text.count("\ndata: ") != inner + len(blocks) - 1:
            return None
        data = map(str.replace, map(_strip_data, blocks), repeat("\ndata: "), repeat("\n"))
        lid = self.last_event_id
        return [_SSE("message", value, lid, None) for value in data]

    def _run_events(self, lines: list[str]) -> list[ServerSentEvent]:
        """Path 2 (see the module doc): each run of same-shaped blocks decoded
        column-wise with C-level ``map``; any other block through ``parse_block``."""
        out: list[ServerSentEvent] = []
        for start, count, period, data_at, je, ji in runs(lines, _STR_FIELDS, bail=True):
            if period < 0:  # short runs: the rest of the region line by line
                out += self._line_events(lines[start:])
                break
            if not period:  # a block of another shape: the standard, line by line
                block = "\n".join(lines[start : start + count]).encode()
                frame = self.parse_block(block)
                if frame is not None:
                    event, raw, retry = frame
                    out.append(_SSE(event, raw.decode(), self.last_event_id, retry))
                continue
            if count == 1 and len(data_at) == 1:  # a short run: no columns to build
                lid = lines[start + ji][4:] if ji >= 0 else self.last_event_id
                self.last_event_id = lid
                name = lines[start + je][7:] or "message" if je >= 0 else "message"
                out.append(_SSE(name, lines[start + data_at[0]][6:], lid))
                continue
            stop = start + count * period
            data = data_column(lines, start, stop, period, data_at, "\n")
            if ji >= 0:
                ids: Iterable[str] = list(map(_strip_id, lines[start + ji : stop : period]))
                self.last_event_id = ids[-1]  # type: ignore[index]
            else:
                ids = repeat(self.last_event_id, count)
            if je >= 0:
                names: Iterable[str] = list(map(_strip_event, lines[start + je : stop : period]))
                if "" in names:  # "event:" with an empty value dispatches as "message"
                    names = [name or "message" for name in names]
            else:
                names = repeat("message", count)
            out += map(_SSE, names, data, ids)
        return out

    def _line_events(self, lines: list[str]) -> list[ServerSentEvent]:
        """Path 2 for short runs: the standard's line processing in one loop over the
        region's decoded lines (the region ends in a blank line, so every block
        dispatches inside the loop).  Cheaper than ``runs`` when the shape changes
        every few blocks; the common fields are recognised by their first character."""
        out: list[ServerSentEvent] = []
        append = out.append
        data: list[str] = []
        event = ""
        retry: int | None = None
        lid = self.last_event_id  # the last event ID buffer
        for line in lines:
            if not line:  # dispatch
                if data:
                    value = data[0] if len(data) == 1 else "\n".join(data)
                    append(_SSE(event or "message", value, lid, retry))
                    data.clear()
                event = ""
                retry = None
                continue
            head = line[:6]  # the common fields in their usual spelling, without partition
            if head == "data: ":
                data.append(line[6:])
                continue
            if head[0] == ":":
                continue
            if head == "event:" and line[6:7] == " ":
                event = line[7:]
                continue
            if head[:4] == "id: ":
                if "\x00" not in line:
                    lid = line[4:]
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\x00" not in value:
                    lid = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = self.retry = _retry_ms(value)
        self.last_event_id = lid
        return out

    def _walk_events(self, buf: bytes, end: int) -> list[ServerSentEvent]:
        """Block by block, for regions of large events: a single-line ``data:``
        block is decoded straight from the buffer (one copy), any other through
        ``parse_block``."""
        out: list[ServerSentEvent] = []
        append = out.append
        for start, stop, one_line in walk_blocks(buf, end):
            if one_line and buf.startswith(_DATA_PREFIX, start):
                data = str(memoryview(buf)[start + 6 : stop], "utf-8", "replace")
                append(_SSE("message", data, self.last_event_id, None))
                continue
            frame = self.parse_block(buf[start:stop])
            if frame is not None:
                event, raw, retry = frame
                append(_SSE(event, raw.decode("utf-8", "replace"), self.last_event_id, retry))
        return out

    def close(self) -> None:
        """Signal end of stream: an incomplete final event is discarded, per the standard.

        The decoder is reset for a new connection of the same stream:
        ``last_event_id`` and ``retry`` persist (they are what a reconnect needs).
        """
        # The standard processes each line as it arrives, so a complete ``retry:``
        # line of the discarded event has already set the reconnection time (an
        # ``id:`` line has not: the last event id only changes at a dispatch).
        complete_lines = b"".join((self._tail, *self._parts)).rpartition(b"\n")[0]
        if b"retry" in complete_lines:
            last_event_id = self.last_event_id
            self.parse_block(complete_lines)  # only for its retry side effect
            self.last_event_id = last_event_id
        self._tail = b""
        self._parts.clear()
        self._size = 0
        self._after_cr = False
        self._bom = b""

    #: A plain framer has no sentinel; see ``FrameDecoder``.
    finished = False

    @property
    def has_backlog(self) -> bool:
        """An ``EventTooLarge`` is waiting behind the events last returned: the next
        ``feed`` (``feed(b"")`` will do) raises it."""
        return self._error is not None

    @property
    def pending_bytes(self) -> int:
        """How many bytes of a not-yet-dispatched event are buffered."""
        return self._size

    # -- building blocks shared with the typed decoder ----------------------------

    def feed_blocks(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Buffer ``chunk`` and return the complete blocks it finished, each without
        its terminating blank line.  Line endings inside are normalised to LF."""
        region = self.feed_region(chunk)
        if region is None:
            return []
        buf, end = region
        return buf[:end].split(b"\n\n")[:-1]

    def feed_region(self, chunk: bytes | bytearray | memoryview) -> tuple[bytes, int] | None:
        """Buffer ``chunk``; if it completed blocks, return ``(buf, end)``: ``buf[:end]``
        is the completed blocks, LF-normalised, ending in ``b"\\n\\n"``.  ``None``
        if it completed nothing.  ``buf`` is not copied to cut off the tail."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        # Own an immutable copy only when we must: a bytearray/memoryview may be
        # reused by the caller, and we keep references into what we get.
        data = chunk if chunk.__class__ is bytes else bytes(chunk)
        if self._bom is not None:
            data = self._strip_bom(data)
        # An empty chunk (e.g. the ``feed(b"")`` of a backlog drain) must not end the
        # wait for the LF half of a CRLF, or that LF becomes a blank line: a dispatch.
        if self._after_cr and data:
            self._after_cr = False
            if data[0] == 0x0A:
                data = data[1:]
        if data.find(b"\r") >= 0:  # find(1 byte) is a memchr; much faster than count/in
            self._after_cr = data[-1:] == b"\r"
            # bytes.splitlines ends lines at exactly LF, CR and CRLF (the standard's
            # three): one C pass, faster than a CR split checked piece by piece.
            lines = data.splitlines()
            if data[-1] in _LINE_ENDS:
                lines.append(b"")  # splitlines drops the final line ending
            data = b"\n".join(lines)
        if not data:
            return None

        tail = self._tail
        last = self._parts[-1] if self._parts else tail
        # Only the new bytes are searched: the buffered ones hold no blank line.  A
        # chunk without any LF (the body of a long event) is parked after one memchr.
        cut = data.rfind(b"\n\n") if data.find(b"\n") >= 0 else -1
        if cut < 0 and not (data[0] == 0x0A and last[-1:] == b"\n"):
            # Completes nothing: park it without copying (keeps long events linear).
            size = self._size + len(data)
            if size > self.max_event_size:
                raise EventTooLarge(size, self.max_event_size)
            if self.max_line_length is not None:
                self._check_line(tail, data)
            if tail:
                self._parts.append(data)
            else:
                self._tail = data
            self._size = size
            return None

        if self._parts:
            self._parts.insert(0, tail)
            self._parts.append(data)
            buf = b"".join(self._parts)
            self._parts.clear()
        elif tail:
            buf = tail + data
        else:
            buf = data
        # The last blank line is in ``data``, or straddles the old bytes and its first LF.
        end = len(buf) - len(data) + (cut + 2 if cut >= 0 else 1)
        rest = buf[end:]
        if len(buf) > self.max_event_size:  # rare: only then look at each block
            end = self._cut_before_oversized(buf, end)
            if self._error is not None:
                rest = b""  # the stream cannot go on: free the buffer now
                if end == 0:
                    error, self._error = self._error, None
                    raise error
        self._tail = rest
        self._size = len(rest)
        return buf, end

    def _cut_before_oversized(self, buf: bytes, end: int) -> int:
        """Find the first block (or the unfinished rest) over ``max_event_size``; keep
        the error for the next ``feed`` and return where the good blocks before it
        end, so they are still delivered (in stream order, nothing lost before it)."""
        limit = self.max_event_size
        offset = 0
        for piece in buf[:end].split(b"\n\n"):
            if len(piece) > limit:
                self._error = EventTooLarge(len(piece), limit)
                return offset
            offset += len(piece) + 2
        if len(buf) - end > limit:
            self._error = EventTooLarge(len(buf) - end, limit)
        return end

    def parse_block(self, block: bytes) -> RawFrame | None:
        """Run the standard's line processing over one block, then dispatch.

        Updates ``last_event_id`` and ``retry``.  Returns ``(event type, data,
        retry)`` if the block dispatches an event, ``None`` if its data buffer is
        empty (a block of only ``id:``/``retry:``/``event:``/comments).
        """
        data_lines: list[bytes] = []
        event = b""
        retry: int | None = None
        last_id: bytes | None = None
        for line in block.split(b"\n"):
            # "If the line is empty": only possible as the first line of a block
            # (extra blank lines); the buffers are empty then, so it is a no-op.
            # "If the line starts with a U+003A COLON character": ignore the line.
            if not line or line[0] == 0x3A:
                continue
            name, colon, value = line.partition(b":")
            # "If value starts with a U+0020 SPACE character, remove it" (just one).
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data_lines.append(value)
            elif name == b"event":
                event = value
            elif name == b"id":
                # "If the field value does not contain U+0000 NULL, then set the
                # last event ID buffer to the field value. Otherwise, ignore."
                if b"\x00" not in value:
                    last_id = value
            # "If the field value consists of only ASCII digits" (bytes.isdigit is
            # ASCII-only and False for b"").
            elif name == b"retry" and value.isdigit():
                retry = self.retry = _retry_ms(value)
            # Any other field name (case-sensitive) is ignored.

        # Dispatch.  "Set the last event ID string ... to the value of the last
        # event ID buffer": happens even when no event is dispatched.
        if last_id is not None:
            self.last_event_id = last_id.decode("utf-8", "replace")
        if not data_lines:
            return None
        event_type = event.decode("utf-8", "replace") if event else "message"
        data = data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines)
        return event_type, data, retry

    # -- helpers --------------------------------------------------------------------

    def _check_line(self, tail: bytes, data: bytes) -> None:
        """Slow path only (``data`` is being parked): track the unfinished line's length.

        With nothing parked yet, the buffered bytes are just ``tail``: measure its
        last line once; after that ``_line`` carries it from park to park, so each
        parked byte is scanned once (``rfind`` stops at the last line break).
        """
        assert self.max_line_length is not None
        start = self._line if self._parts else len(tail) - tail.rfind(b"\n") - 1
        newline = data.rfind(b"\n")
        line = start + len(data) if newline < 0 else len(data) - newline - 1
        if line > self.max_line_length:
            raise LineTooLong(line, self.max_line_length)
        self._line = line

    def _strip_bom(self, data: bytes) -> bytes:
        seen = self._bom + data if self._bom else data
        if len(seen) < 3 and _BOM.startswith(seen):
            self._bom = seen  # could still be a BOM: wait for more bytes
            return b""
        self._bom = None
        return seen[3:] if seen.startswith(_BOM) else seen


def drop_comment_blocks(buf: bytes, end: int) -> tuple[bytes, int]:
    """``(buf, end)`` without its comment-only blocks (keep-alives, ``:ok``, pings).

    Exact: a block whose every line starts with ":" changes no state (its lines are
    ignored and its dispatch finds an empty data buffer and an unchanged last event
    id buffer).  One C-level search when there is none; returns the inputs then.
    """
    at = 0 if buf[:1] == b":" else buf.find(b"\n\n:", 0, end) + 2
    if at == 1:  # find gave -1: no block starts with ":"
        return buf, end
    kept: list[bytes] = []
    keep_from = 0
    while at != 1:  # at: the ":" starting a block (1: no more, find gave -1)
        stop = buf.find(b"\n\n", at, end)  # always found: the region ends in a blank line
        block = buf[at:stop]
        if b"\n" not in block or all(line[:1] == b":" for line in block.split(b"\n")):
            kept.append(buf[keep_from:at])
            keep_from = stop + 2
        at = buf.find(b"\n\n:", stop, end) + 2
    if keep_from == 0:
        return buf, end
    kept.append(buf[keep_from:end])
    out = b"".join(kept)
    return out, len(out)


def walk_blocks(buf: bytes, end: int) -> Iterator[tuple[int, int, bool]]:
    """``(start, stop, one line)`` of each block of ``buf[:end]``, found LF by LF.

    For regions of large events: ``find(b"\\n")`` is a memchr, far faster per byte
    than ``count``, ``split`` or a multi-byte ``find`` (CPython scans those byte by
    byte, and JSON payloads are full of the separators' characters).
    """
    find = buf.find
    pos = 0
    while pos < end:
        lf = find(b"\n", pos, end)
        one_line = True
        while lf + 1 < end and buf[lf + 1] != 0x0A:
            one_line = False
            lf = find(b"\n", lf + 1, end)
        if lf + 1 >= end:  # what is left is the LF of an extra blank line: a no-op
            return
        yield pos, lf, one_line
        pos = lf + 2


#: (start line, blocks, lines per block + 1 (0: one block of another shape, of
#: ``blocks`` lines), indexes of the data lines in each block, index of the event
#: line and of the id line (-1: none)).
Run = tuple[int, int, int, tuple[int, ...], int, int]


def runs(
    lines: list[AnyStr], fields: tuple[AnyStr, AnyStr, AnyStr, AnyStr], *, bail: bool = False
) -> list[Run]:
    """Cut a region (split on LF, its last empty item deleted) into runs of blocks
    of the same shape: the same lines, each starting with one of ``fields``
    (``"data: "``, ``"event: "``, ``"id: "``, ``":"``), ``event`` and ``id`` at most
    once, ``data`` at least once.  A block of any other shape (``retry``, a field
    without its space, another field name) is a run of its own with ``period`` 0.

    Why this is exact: a run of ``period - 1``-line blocks starting at line ``s`` has
    line j of block b at ``s + j + b * period`` and its blank line at
    ``s + period - 1 + b * period``.  A run is extended over the next blocks only
    after every one of those lines was checked (C-level ``map`` per column); a block
    is in the run only if all its lines and the blank after it passed, and then it
    starts exactly where the one before it ended.  Comment lines change nothing and
    are only checked.  Windows double in size, so a stream that changes shape every
    few events costs O(n) too.

    With ``bail``, once the region has shown ``_BAIL_RUNS`` runs averaging fewer
    than ``_BAIL_BLOCKS`` blocks, the last run is ``(line, 0, -1, (), 0, 0)``: the
    rest of the region, from that block on, is for a plain line loop (cheaper than
    finding runs that short).
    """
    out: list[Run] = []
    append = out.append
    empty = fields[0][:0]
    total = len(lines)
    index = lines.index
    first = {field[:1]: k for k, field in enumerate(fields)}
    i = 0
    blocks = 0  # blocks in the runs so far (for ``bail``)
    while i < total:
        if bail and len(out) >= _BAIL_RUNS and blocks < _BAIL_BLOCKS * len(out):
            append((i, 0, -1, (), 0, 0))
            return out
        width = index(empty, i) - i
        if width == 0:  # an extra blank line: it dispatches nothing
            i += 1
            continue
        kinds: list[int] = []
        data_at: list[int] = []
        single = [-1, -1]  # event, id
        for j in range(width):
            line = lines[i + j]
            k = first.get(line[:1], -1)  # the fields differ in their first character
            if k < 0 or not line.startswith(fields[k]):
                break
            if k == 0:
                data_at.append(j)
            elif k < 3:
                if single[k - 1] >= 0:
                    break
                single[k - 1] = j
            kinds.append(k)
        if len(kinds) < width or not data_at:
            append((i, width, 0, (), 0, 0))
            i += width + 1
            blocks += 1
            continue
        shape = [fields[k] for k in kinds]
        period = width + 1
        limit = (total - i) // period
        count = 1
        if out:  # not the region's first run: maybe a short one, check a few blocks
            at = i + period  # directly (cheaper than building columns for them)
            while count < limit and count < 4 and not lines[at + width]:
                if not all(map(lines[at].__class__.startswith, lines[at : at + width], shape)):
                    break
                count += 1
                at += period
            if count < 4 and count < limit:
                append((i, count, period, tuple(data_at), single[0], single[1]))
                i += count * period
                blocks += count
                continue
        # The first run of a region is tried over the whole region at once (one pass
        # per column when the read is uniform); later ones in doubling windows.
        window = limit if not out else 8
        while count < limit:
            upto = min(limit, count + window)
            good = upto - count
            base = i + count * period
            stop = i + upto * period
            blanks = lines[base + width : stop : period]
            if any(blanks):
                good = list(map(bool, blanks)).index(True)
            for j, k in enumerate(kinds):
                column = lines[base + j : stop : period]
                prefixes = repeat(fields[k])
                if not all(map(column[0].__class__.startswith, column, prefixes)):
                    ok = list(map(column[0].__class__.startswith, column, repeat(fields[k])))
                    failed = ok.index(False)
                    good = min(good, failed)
            count += good
            if count < upto:
                break
            window *= 2
        append((i, count, period, tuple(data_at), single[0], single[1]))
        i += count * period
        blocks += count
    return out


def data_column(
    lines: list[AnyStr], start: int, stop: int, period: int, at: tuple[int, ...], lf: AnyStr
) -> Iterable[AnyStr]:
    """The data values of a run (see ``runs``): its data lines without the prefix,
    joined with LF where a block has several."""
    if len(at) == 1:
        return map(_strip_data, lines[start + at[0] : stop : period])
    columns = [map(_strip_data, lines[start + j : stop : period]) for j in at]
    return map(lf.join, zip(*columns, strict=True))


def single_line_data(buf: bytes, end: int) -> list[bytes | memoryview] | None:
    """The payloads of ``buf[:end]`` if every block in it is exactly one ``data: ``
    line (the shape of LLM token streams), maybe with keep-alives between, or only
    ``data: `` lines (text events, see ``_inner_data_lines``), else ``None``.  A few
    C-level scans.

    Why this is exact: ``buf[:end]`` ends in a blank line, so splitting
    ``buf[6:end-2]`` on ``"\\n\\ndata: "`` yields one piece per block if each block
    after the first starts with ``data: ``; and if the region holds no other LF
    than the two of each separator, no block has a second line.  Regions of few
    large events are walked block by block instead (see ``walk_blocks``).
    """
    if buf[:6] != _DATA_PREFIX:
        return None
    if buf.find(b"\n", 0, _LARGE_LINE) < 0:  # a large first event: walk, as SSEDecoder.feed
        view = memoryview(buf)
        payloads: list[bytes | memoryview] = []
        for start, stop, one_line in walk_blocks(buf, end):
            if not (one_line and buf.startswith(_DATA_PREFIX, start)):
                return None
            long = stop - start > _COPY_BELOW
            payloads.append(view[start + 6 : stop] if long else buf[start + 6 : stop])
        return payloads
    pieces: list[bytes] = buf[6 : end - 2].split(b"\n\ndata: ")
    lfs = buf.count(b"\n", 0, end)
    if lfs != 2 * len(pieces):
        if lfs >= 3 * len(pieces) and _inner_data_lines(buf, end, len(pieces), lfs):
            return list(map(bytes.replace, pieces, repeat(b"\ndata: "), repeat(b"\n")))
        if cut_comments(pieces, b"\n", b":") < 0:
            return None
    return list(pieces)


def text_data(buf: bytes, end: int) -> list[str] | None:
    """``single_line_data`` decoded to text region-wise (one UTF-8 decode, one split;
    the separators are ASCII, so this equals decoding each payload), for data that
    is text anyway.  ``None`` where ``single_line_data`` would walk or give up."""
    if buf[:6] != _DATA_PREFIX or buf.find(b"\n", 0, _LARGE_LINE) < 0:
        return None
    pieces = str(memoryview(buf)[6 : end - 2], "utf-8", "replace").split("\n\ndata: ")
    lfs = buf.count(b"\n", 0, end)
    if lfs != 2 * len(pieces):
        if lfs >= 3 * len(pieces) and _inner_data_lines(buf, end, len(pieces), lfs):
            return list(map(str.replace, pieces, repeat("\ndata: "), repeat("\n")))
        if cut_comments(pieces, "\n", ":") < 0:
            return None
    return pieces


def multi_line_data(buf: bytes, end: int) -> list[bytes] | None:
    """The data of each block of ``buf[:end]`` if every block is only ``data: ``
    lines (one or more, joined with LF), else ``None``.  The bytes twin of
    ``SSEDecoder._multi_line_data_events`` (see there why it is exact)."""
    blocks = buf[:end].split(b"\n\n")
    del blocks[-1]  # the empty item after the region's final blank line
    if not all(map(bytes.startswith, blocks, repeat(_DATA_PREFIX))):
        return None
    inner = buf.count(b"\n", 0, end) - 2 * len(blocks)
    if buf.count(b"\ndata: ", 0, end) != inner + len(blocks) - 1:
        return None
    return list(map(bytes.replace, map(_strip_data, blocks), repeat(b"\ndata: "), repeat(b"\n")))


def _inner_data_lines(buf: bytes, end: int, blocks: int, lfs: int) -> bool:
    """Path 1 found ``blocks`` pieces in ``buf[:end]`` (split on ``"\\n\\ndata: "``
    after its leading ``data: ``) and ``lfs`` LFs, more than the 2 per block of
    one-line blocks: True if every extra LF starts another ``data: `` line, so each
    piece is one block of only data lines (the text-event shape).

    Why this is exact: ``"\\ndata: "`` in ``buf[6:end-2]`` occurs once per separator
    (at its second LF) plus once per extra LF followed by ``data: ``; equal to
    ``blocks - 1 + extra`` means every extra LF is, so no piece holds a blank line
    or a line of another field.

    Callers ask (one count over the region) only when there is at least one extra
    LF per block: fewer are most likely keep-alives, which ``cut_comments`` takes;
    text events it leaves go to ``multi_line_data`` (exact either way).
    """
    extra = lfs - 2 * blocks
    return extra > 0 and buf.count(b"\ndata: ", 6, end - 2) == blocks - 1 + extra


def cut_comments(pieces: list[AnyStr], lf: AnyStr, colon: AnyStr) -> int:
    """Path 1's pieces may hold more LFs than one line each: if every extra LF
    belongs to comment-only blocks (keep-alives) or blank lines after a one-line
    block, cut them off, in place, and return how many pieces were cut (0: none
    had any); else -1 (``pieces`` unchanged).  On its own a proof that every
    piece is one line, so it can stand in for the LF count.

    Exact: each piece is then one ``data`` line, and what was cut changes no state
    (comment lines are ignored; a dispatch with an empty data buffer does nothing).
    """
    kind = lf.__class__
    bad = list(compress(range(len(pieces)), map(kind.__contains__, pieces, repeat(lf))))
    if not bad:
        return 0
    # In bulk (C-level map), since a heartbeat can follow every event.
    heads, found, rests = zip(
        *map(kind.partition, map(pieces.__getitem__, bad), repeat(lf + lf)), strict=True
    )
    if not all(found) or any(map(kind.__contains__, heads, repeat(lf))):
        return -1
    lines = filter(None, lf.join(rests).split(lf))  # blank lines are no-ops too
    if not all(map(kind.startswith, lines, repeat(colon))):
        return -1
    for i, head in zip(bad, heads, strict=True):
        pieces[i] = head
    return len(bad)


#: The largest ``retry:`` value kept (ms, 2**53: exact as a float too); longer digit
#: strings are clamped to it.  ``int()`` of thousands of digits raises (CPython's int-string
#: limit) and a huge delay overflows timers; consumers clamp further (``connect``).
MAX_RETRY_FIELD: Final = 2**53


def _retry_ms(value: bytes | str) -> int:
    """A ``retry:`` value (ASCII digits) as an int, clamped; never raises."""
    if len(value) > 16:  # int() of thousands of digits raises; 17 digits > 2**53 anyway
        return MAX_RETRY_FIELD
    return min(int(value), MAX_RETRY_FIELD)
