"""The other direction: an event to its ``text/event-stream`` wire bytes."""

from __future__ import annotations

from ._events import ServerSentEvent

__all__ = ["encode_event"]


def encode_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Serialise one event as UTF-8 bytes ending in the blank line that dispatches it.

    ``data`` is split on every line ending (LF, CR, CRLF) into one ``data:`` line
    each, so ``SSEDecoder`` gives back the same string with line endings
    normalised to ``\\n``.  ``data=None`` writes no ``data:`` line (the block then
    only updates ``id``/``retry``; a decoder dispatches nothing).  A ServerSentEvent
    can be encoded with :func:`encode_sse`.

    Raises:
        ValueError: a field that cannot be represented on the wire (a line break in
            ``event``, ``id`` or ``comment``; NUL in ``id``; a negative ``retry``).
        TypeError: ``retry`` is not an ``int`` (``True`` or ``1.5`` would be ignored).
    """
    out: list[str] = []
    if comment is not None:
        _single_line("comment", comment)
        out.append(f":{comment}\n")
    if id is not None:
        _single_line("id", id)
        if "\x00" in id:
            raise ValueError("id must not contain NUL: decoders ignore such an id")
        out.append(f"id: {id}\n")
    if event is not None:
        _single_line("event", event)
        out.append(f"event: {event}\n")
    if retry is not None:
        # bool is an int, and f"{True}" / f"{1.5}" are lines every decoder ignores.
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"retry must be an int number of ms, got {retry!r}")
        if retry < 0:
            raise ValueError(f"retry must be a non-negative number of ms, got {retry}")
        out.append(f"retry: {retry}\n")
    if data is not None:
        out.extend(
            f"data: {line}\n" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        )
    out.append("\n")
    return "".join(out).encode()


def encode_sse(event: ServerSentEvent) -> bytes:
    """Encode a :class:`ServerSentEvent` (``event="message"`` is left implicit).

    The id is always written, an empty one as ``id: `` (which resets the last event
    id): encoded one after another, events decode back with the same ids."""
    return encode_event(
        event.data,
        event=None if event.event == "message" else event.event,
        id=event.id,
        retry=event.retry,
    )


def _single_line(field: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"{field} must be a single line, got {value!r}")
