"""Typed decoding: SSE frames → msgspec Structs, one discriminated union per endpoint.

An :class:`EventSchema` is declared once per endpoint from the user's Struct
classes.  The SSE ``event`` name picks the Struct (the discriminant); its ``data``
is decoded by a prebuilt ``msgspec.json.Decoder`` straight from the framer's bytes
(no ``str`` round trip, no dict in between), or taken as text when the Struct's
``data`` field is ``str``.  ``schema.decoder()`` makes the per-connection
:class:`TypedDecoder`, which satisfies :class:`~aiostreams._protocol.FrameDecoder`.

How a Struct declares its event name (first match wins):

* msgspec's own tagging: ``class A(Struct, tag_field="event", tag="a")``;
* an ``event`` field with a ``Literal["a"]`` type or a string default;
* an ``event`` field that is a plain ``str``: the Struct takes every name in
  ``data_types`` (or ``"message"`` when there is none) — one Struct, data type
  chosen per event name;
* no ``event`` field: the Struct is the ``"message"`` event (the SSE default).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from typing import Any, Generic, Literal, TypeVar, overload

import msgspec

from ._events import ServerSentEvent
from ._framing import (
    _BYTES_FIELDS,
    _COPY_BELOW,
    DEFAULT_MAX_EVENT_SIZE,
    SSEDecoder,
    _strip_event,
    _strip_id,
    data_column,
    drop_comment_blocks,
    multi_line_data,
    runs,
    single_line_data,
    text_data,
)
from .errors import AiostreamsError, ResponseValidationError, StreamError

__all__ = ["EventSchema", "TypedDecoder"]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")

_DATA_PREFIX = b"data: "
#: msgspec raises UnicodeDecodeError for invalid UTF-8 inside a JSON string.
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError)

Builder = Callable[[Any, str, str, "int | None"], Any]


class _Fallback(Exception):
    """A column run met an event it cannot decode in bulk: decode it block by block."""


def _blocks(lines: list[bytes], start: int) -> list[bytes]:
    """The blocks of a region's lines from ``start`` (a block's first line) on."""
    return (b"\n".join(lines[start:]) + b"\n").split(b"\n\n")[:-1]


class _Route:
    """How one event name becomes a value: decode ``data``, then build the Struct."""

    __slots__ = ("build", "data_only", "decode", "expected", "positional")

    def __init__(
        self,
        build: Builder,
        decode: Callable[[Any], Any] | None,
        expected: str,
        data_only: type[Any] | None = None,
        positional: tuple[type[Any], tuple[str, ...]] | None = None,
    ) -> None:
        self.build = build  # (data value, event name, last event id, retry) -> Struct
        self.decode = decode  # None: the data is text, taken as is
        self.expected = expected
        self.data_only = data_only  # the Struct, when ``data`` is its only SSE field
        # (Struct, its fields in order) when every field is an SSE field and all are
        # positional: a run is built with one C-level map over its columns.
        self.positional = positional


class EventSchema(Generic[T]):
    """The declaration of one endpoint's stream, built once and reused for every connection.

    Args:
        *types: the Struct classes the endpoint yields (see the module doc for how
            each declares its SSE event name).  Each must have a ``data`` field;
            ``id``, ``event`` and ``retry`` fields are filled from the SSE fields.
        data_types: per-event-name type of ``data``, overriding the annotation
            (e.g. ``{"array": list[int], "primitive": bool | float}``).
        sentinel: a ``data`` value that ends the stream (e.g. ``"[DONE]"``); bytes
            after it are never decoded.
        sentinel_type: yield the sentinel as this Struct (built with
            ``data=sentinel``) before stopping; ``None`` stops without yielding it.
        errors: event names that carry a server-side error, with the type of their
            payload (``str`` for text); such an event raises
            :class:`~aiostreams.errors.StreamError` instead of being yielded.
        unknown: ``"raise"`` (default) a :class:`ResponseValidationError` for an
            event name no type declares, or ``"skip"`` such events.
    """

    # Typing only: ``EventSchema(A, B)`` is an ``EventSchema[A | B]`` without an
    # annotation.  With ``sentinel_type`` or more than three types, annotate it.
    @overload
    def __init__(
        self: EventSchema[T1],
        type1: type[T1],
        /,
        *,
        data_types: Mapping[str, Any] | None = None,
        sentinel: str | None = None,
        sentinel_type: None = None,
        errors: Mapping[str, Any] | None = None,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> None: ...

    @overload
    def __init__(
        self: EventSchema[T1 | T2],
        type1: type[T1],
        type2: type[T2],
        /,
        *,
        data_types: Mapping[str, Any] | None = None,
        sentinel: str | None = None,
        sentinel_type: None = None,
        errors: Mapping[str, Any] | None = None,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> None: ...

    @overload
    def __init__(
        self: EventSchema[T1 | T2 | T3],
        type1: type[T1],
        type2: type[T2],
        type3: type[T3],
        /,
        *,
        data_types: Mapping[str, Any] | None = None,
        sentinel: str | None = None,
        sentinel_type: None = None,
        errors: Mapping[str, Any] | None = None,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> None: ...

    @overload
    def __init__(
        self,
        *types: type[Any],
        data_types: Mapping[str, Any] | None = None,
        sentinel: str | None = None,
        sentinel_type: type[Any] | None = None,
        errors: Mapping[str, Any] | None = None,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> None: ...

    def __init__(
        self,
        *types: type[Any],
        data_types: Mapping[str, Any] | None = None,
        sentinel: str | None = None,
        sentinel_type: type[Any] | None = None,
        errors: Mapping[str, Any] | None = None,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> None:
        if not types:
            raise TypeError("EventSchema needs at least one Struct type")
        if unknown not in ("raise", "skip"):
            raise ValueError(f"unknown must be 'raise' or 'skip', got {unknown!r}")
        if sentinel_type is not None and sentinel is None:
            raise TypeError("sentinel_type needs a sentinel value (e.g. sentinel='[DONE]')")
        self.types = types
        self.sentinel = sentinel
        self.sentinel_bytes = None if sentinel is None else sentinel.encode()
        self.unknown = unknown
        data_types = dict(data_types or {})
        self.routes: dict[str, _Route] = {}
        for cls, names in _claim_names(types, data_types):
            for name in names:
                if name in self.routes:
                    raise TypeError(f"event name {name!r} is declared by more than one type")
                self.routes[name] = _route(cls, data_types.get(name, _data_type(cls)))
        self.error_routes = {name: _route(None, tp) for name, tp in (errors or {}).items()}
        # "message" events whose data is text: decoded region-wise to str (see
        # TypedDecoder.feed).  A sentinel then compares as str, which equals the bytes
        # comparison unless it holds U+FFFD (what an invalid byte decodes to).
        message = self.routes.get("message")
        self.text_message = (
            message
            if message is not None
            and message.decode is None
            and (sentinel is None or "\ufffd" not in sentinel)
            else None
        )
        self.sentinel_event: Any = None
        if sentinel_type is not None:
            assert sentinel is not None
            self.sentinel_event = _builder(sentinel_type)(sentinel, "message", "", None)

    def decoder(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, last_event_id: str = ""
    ) -> TypedDecoder[T]:
        """A fresh decoder for one connection (or one resumed stream)."""
        return TypedDecoder(
            self, SSEDecoder(max_event_size=max_event_size, last_event_id=last_event_id)
        )

    def decode_all(self, body: bytes) -> list[T]:
        """Decode a complete body (tests, recorded streams).  Errors raise at once."""
        decoder = self.decoder()
        events = decoder.feed(body)
        while decoder.has_backlog:
            events += decoder.feed(b"")
        decoder.close()
        return events

    def __repr__(self) -> str:
        names = ", ".join(f"{k}→{r.expected}" for k, r in self.routes.items())
        return f"EventSchema({names}, sentinel={self.sentinel!r})"


class TypedDecoder(Generic[T]):
    """Per-connection typed decoder: bytes in, Structs out (a ``FrameDecoder[T]``).

    A bad event raises (:class:`ResponseValidationError`, :class:`StreamError`) in
    stream order: events decoded before it in the same chunk are returned first,
    the error is raised by the next :meth:`feed`, and the events after it stay
    queued (``has_backlog``) for the call after that.  Nothing is lost.
    """

    __slots__ = ("_backlog", "_error", "_finished", "_framer", "_schema")

    def __init__(self, schema: EventSchema[T], framer: SSEDecoder) -> None:
        self._schema = schema
        self._framer = framer
        self._backlog: list[bytes] = []
        self._error: AiostreamsError | None = None
        self._finished = False

    @property
    def last_event_id(self) -> str:
        return self._framer.last_event_id

    @last_event_id.setter
    def last_event_id(self, value: str) -> None:
        self._framer.last_event_id = value

    @property
    def retry(self) -> int | None:
        return self._framer.retry

    @retry.setter
    def retry(self, value: int | None) -> None:
        self._framer.retry = value

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def has_backlog(self) -> bool:
        return self._error is not None or bool(self._backlog) or self._framer.has_backlog

    @property
    def pending_bytes(self) -> int:
        return self._framer.pending_bytes

    def close(self) -> None:
        self._framer.close()

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[T]:
        if self._finished:
            return []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        framer = self._framer
        region = framer.feed_region(chunk) if chunk or framer.has_backlog else None
        if region is None:
            if not self._backlog:
                return []
            blocks, self._backlog = self._backlog, []
            return self._decode(blocks)
        buf, end = region
        if self._backlog:  # events queued behind an error come first: block by block
            blocks = self._backlog + buf[:end].split(b"\n\n")[:-1]
            self._backlog = []
            return self._decode(blocks)
        if buf[:1] == b":":  # e.g. a ":ok" or keep-alive opening the region
            buf, end = drop_comment_blocks(buf, end)
            if not end:
                return []
        if self._schema.text_message is not None:
            texts = text_data(buf, end)
            if texts is not None:
                return self._decode_texts(texts)
        payloads = single_line_data(buf, end)
        if payloads is None and buf[:6] == _DATA_PREFIX:
            payloads = multi_line_data(buf, end)  # type: ignore[assignment]
        if payloads is not None:
            events = self._decode_data_lines(payloads)
            if events is not None:
                return events
            return self._decode(buf[:end].split(b"\n\n")[:-1])
        return self._decode_runs(buf, end)

    def _decode_data_lines(self, payloads: list[bytes | memoryview]) -> list[T] | None:
        """Bulk path for a chunk of single-line ``data:`` events (LLM token streams):
        one tight loop, no per-event framing.  ``None``: let :meth:`_decode` do it
        event by event (no route for "message", or a bad event to report in order)."""
        schema = self._schema
        route = schema.routes.get("message")
        if route is None:
            return None
        sentinel_at = -1
        if schema.sentinel_bytes is not None and schema.sentinel_bytes in payloads:
            sentinel_at = payloads.index(schema.sentinel_bytes)
            payloads = payloads[:sentinel_at]
        decode = route.decode
        try:
            if decode is None:
                values: list[Any] = [str(p, "utf-8", "replace") for p in payloads]
            else:
                values = list(map(decode, payloads))
        except _DECODE_ERRORS:
            return None
        cls = route.data_only
        if cls is not None:
            events: list[Any] = [cls(data=value) for value in values]
        else:
            build, lid = route.build, self._framer.last_event_id
            events = [build(value, "message", lid, None) for value in values]
        if sentinel_at >= 0:
            self._finished = True
            if schema.sentinel_event is not None:
                events.append(schema.sentinel_event)
        return events

    def _decode_texts(self, texts: list[str]) -> list[T]:
        """Bulk path for ``"message"`` events of text data (``text_message``): the
        payloads were decoded region-wise, nothing can fail."""
        schema = self._schema
        route = schema.text_message
        assert route is not None
        sentinel_at = -1
        if schema.sentinel is not None and schema.sentinel in texts:
            sentinel_at = texts.index(schema.sentinel)
            texts = texts[:sentinel_at]
        cls = route.data_only
        if cls is not None:
            events: list[Any] = [cls(data=value) for value in texts]
        else:
            build, lid = route.build, self._framer.last_event_id
            events = [build(value, "message", lid, None) for value in texts]
        if sentinel_at >= 0:
            self._finished = True
            if schema.sentinel_event is not None:
                events.append(schema.sentinel_event)
        return events

    def _decode_runs(self, buf: bytes, end: int) -> list[T]:
        """Each run of same-shaped ``id``/``event``/``data`` blocks (see
        :func:`~aiostreams._framing.runs`) decoded column-wise: one route lookup,
        decode and build per event, no per-block parsing.  A block of another shape
        goes through :meth:`_decode` alone; a run with a sentinel, an unknown or
        error event or a bad event hands the rest of the region to :meth:`_decode`,
        which reports it in stream order."""
        lines = buf[:end].split(b"\n")
        del lines[-1]  # the empty item after the region's final LF
        if buf.find(b"\x00", 0, end) >= 0:  # an id with NUL is ignored: the parser knows how
            return self._decode_rest(lines, 0, [])
        schema = self._schema
        routes = schema.routes
        sentinel = schema.sentinel_bytes
        framer = self._framer
        out: list[T] = []
        append = out.append
        for start, count, period, data_at, je, ji in runs(lines, _BYTES_FIELDS):
            if not period:  # another shape: one block through the standard's parser
                return_now = self._decode_one(lines, start, count, out)
                if return_now:
                    return out
                continue
            stop = start + count * period
            data_lines = list(data_column(lines, start, stop, period, data_at, b"\n"))
            mark = len(out)
            if sentinel is not None and sentinel in data_lines:
                return self._decode_rest(lines, start, out)
            try:  # strict UTF-8 here: a name or id that is not falls back to the parser
                if ji >= 0:
                    ids: Any = list(
                        map(bytes.decode, map(_strip_id, lines[start + ji : stop : period]))
                    )
                else:
                    ids = repeat(framer.last_event_id, count)
                if je >= 0:
                    column = [
                        name or "message"
                        for name in map(
                            bytes.decode, map(_strip_event, lines[start + je : stop : period])
                        )
                    ]
                    first, one_name = column[0], column.count(column[0]) == count
                    names: Iterable[str] = column
                else:
                    first, one_name = "message", True
                    names = repeat("message", count)
                route = routes.get(first) if one_name else None
                if route is not None and route.positional is not None and route.decode is not None:
                    # one route for the whole run: decode and build column-wise
                    cls, order = route.positional
                    columns = {
                        "data": map(route.decode, data_lines),
                        "event": names,
                        "id": ids,
                        "retry": repeat(None),
                    }
                    out += map(cls, *[columns[field] for field in order])
                    if ji >= 0:
                        framer.last_event_id = ids[-1]
                    continue
                # strict=False: ids or names may be an endless repeat() of one value
                for name, data, last_id in zip(names, data_lines, ids, strict=False):
                    route = routes.get(name)
                    if route is None:
                        raise _Fallback
                    value = route.decode(data) if route.decode else str(data, "utf-8", "replace")
                    append(route.build(value, name, last_id, None))
            except (_Fallback, *_DECODE_ERRORS):
                del out[mark:]
                return self._decode_rest(lines, start, out)
            if ji >= 0:
                framer.last_event_id = ids[-1]
        return out

    def _decode_one(self, lines: list[bytes], start: int, count: int, out: list[T]) -> bool:
        """Decode the block ``lines[start:start+count]`` onto ``out``; True when the
        caller must return ``out`` now (the stream finished, or an error waits)."""
        block = b"\n".join(lines[start : start + count])
        try:
            out += self._decode([block])
        except (ResponseValidationError, StreamError) as exc:
            self._backlog = _blocks(lines, start + count + 1)
            if not out:
                raise
            self._error = exc
            return True
        return self._finished

    def _decode_rest(self, lines: list[bytes], start: int, out: list[T]) -> list[T]:
        """Decode from line ``start`` to the end of the region block by block,
        after the events already in ``out``, keeping :meth:`_decode`'s order of errors."""
        try:
            more = self._decode(_blocks(lines, start))
        except (ResponseValidationError, StreamError) as exc:
            if not out:
                raise
            self._error = exc
            return out
        out += more
        return out

    def _decode(self, blocks: list[bytes]) -> list[T]:
        out: list[T] = []
        append = out.append
        framer = self._framer
        schema = self._schema
        routes = schema.routes
        sentinel = schema.sentinel_bytes
        for index, block in enumerate(blocks):
            if block[:6] == _DATA_PREFIX and b"\n" not in block:  # "data: <one line>"
                name = "message"
                data: bytes | memoryview = (
                    block[6:] if len(block) < _COPY_BELOW else memoryview(block)[6:]
                )
                retry = None
            else:
                frame = framer.parse_block(block)
                if frame is None:  # only id/retry/event/comments: state updated, no event
                    continue
                name, data, retry = frame
            if sentinel is not None and data == sentinel:
                self._finished = True
                if schema.sentinel_event is not None:
                    append(schema.sentinel_event)
                return out
            route = routes.get(name)
            try:
                if route is None:
                    self._unknown(name, data, retry)
                    continue
                value = route.decode(data) if route.decode else str(data, "utf-8", "replace")
                append(route.build(value, name, framer.last_event_id, retry))
            except _DECODE_ERRORS as exc:
                assert route is not None
                error: AiostreamsError = ResponseValidationError(
                    self._raw(name, data, retry), route.expected, str(exc)
                )
            except (StreamError, ResponseValidationError) as exc:  # from _unknown
                error = exc
            else:
                continue
            # A bad event: hand out what came before it, raise it next, keep the rest.
            self._backlog = blocks[index + 1 :]
            if out:
                self._error = error
                return out
            raise error
        return out

    def _unknown(self, name: str, data: bytes | memoryview, retry: int | None) -> None:
        """An event name no type declares: a server error event, skipped, or invalid."""
        error_route = self._schema.error_routes.get(name)
        if error_route is not None:
            raw = self._raw(name, data, retry)
            try:
                payload = error_route.decode(data) if error_route.decode else raw.data
            except _DECODE_ERRORS:
                payload = raw.data  # keep the server's words even if they do not parse
            raise StreamError(payload, raw)
        if self._schema.unknown == "raise":
            raise ResponseValidationError(
                self._raw(name, data, retry),
                f"one of the declared event names {sorted(self._schema.routes)}",
                f"no type is declared for event name {name!r}; declare one in the "
                "EventSchema, or pass unknown='skip' to ignore such events",
            ) from None

    def _raw(self, name: str, data: bytes | memoryview, retry: int | None) -> ServerSentEvent:
        return ServerSentEvent(
            name, str(data, "utf-8", "replace"), self._framer.last_event_id, retry
        )


# -- building routes -------------------------------------------------------------------


def _claim_names(
    types: tuple[type[Any], ...], data_types: Mapping[str, Any]
) -> list[tuple[type[Any], list[str]]]:
    claims: list[tuple[type[Any], list[str]]] = []
    free: list[type[Any]] = []  # Structs with a plain ``event: str`` field
    for cls in types:
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            raise TypeError(f"EventSchema types must be msgspec.Struct classes, got {cls!r}")
        fields = {f.name: f for f in msgspec.structs.fields(cls)}
        if "data" not in fields:
            raise TypeError(f"{cls.__name__} has no 'data' field: it cannot hold an SSE event")
        config = cls.__struct_config__
        event = fields.get("event")
        if config.tag_field == "event" and isinstance(config.tag, str):
            claims.append((cls, [config.tag]))
        elif event is None:
            claims.append((cls, ["message"]))
        elif typing.get_origin(event.type) is Literal:
            claims.append((cls, [str(v) for v in typing.get_args(event.type)]))
        elif isinstance(event.default, str):
            claims.append((cls, [event.default]))
        else:
            free.append(cls)
    claimed = {name for _, names in claims for name in names}
    for cls in free:
        names = [n for n in data_types if n not in claimed] or ["message"]
        claims.append((cls, names))
        claimed.update(names)
    return claims


def _data_type(cls: type[Any]) -> Any:
    return next(f.type for f in msgspec.structs.fields(cls) if f.name == "data")


def _route(cls: type[Any] | None, data_type: Any) -> _Route:
    expected = _type_name(data_type)
    if data_type is str:
        decode = None
    else:
        try:
            decode = msgspec.json.Decoder(data_type).decode
        except TypeError as exc:
            raise TypeError(f"cannot decode SSE data as {expected}: {exc}") from None
    if cls is None:
        return _Route(_identity, decode, expected)
    sse_fields = {f.name for f in msgspec.structs.fields(cls)} & {"event", "id", "retry"}
    order: tuple[str, ...] = cls.__struct_fields__
    positional = (
        (cls, order)
        if set(order) <= {"data", "event", "id", "retry"} and cls.__match_args__ == order
        else None
    )
    return _Route(_builder(cls), decode, expected, None if sse_fields else cls, positional)


def _builder(cls: type[Any]) -> Builder:
    """A function building ``cls`` from the SSE fields it declares: one closure per
    combination, so the per-event call passes keywords directly (no dict)."""
    names = {f.name for f in msgspec.structs.fields(cls)}
    key = ("event" in names, "id" in names, "retry" in names)
    builders: dict[tuple[bool, bool, bool], Builder] = {
        (False, False, False): lambda data, event, id, retry: cls(data=data),  # the hot case
        (True, False, False): lambda data, event, id, retry: cls(data=data, event=event),
        (False, True, False): lambda data, event, id, retry: cls(data=data, id=id),
        (True, True, False): lambda data, event, id, retry: cls(data=data, event=event, id=id),
        (False, False, True): lambda data, event, id, retry: cls(data=data, retry=retry),
        (True, False, True): lambda data, event, id, retry: cls(
            data=data, event=event, retry=retry
        ),
        (False, True, True): lambda data, event, id, retry: cls(data=data, id=id, retry=retry),
        (True, True, True): lambda data, event, id, retry: cls(
            data=data, event=event, id=id, retry=retry
        ),
    }
    return builders[key]


def _identity(data: Any, event: str, id: str, retry: int | None) -> Any:
    return data


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp).replace("typing.", "")
