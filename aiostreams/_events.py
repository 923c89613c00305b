"""The event type the framer produces."""

from __future__ import annotations

from typing import Any

import msgspec

_json_decode = msgspec.json.decode


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched Server-Sent Event.

    Attributes:
        event: the event type; ``"message"`` when the server sent no ``event:`` field.
        data: the data lines joined with ``"\\n"``.
        id: the stream's last event id at dispatch time (``""`` if none was ever set).
        retry: the reconnection time in milliseconds if this event's block carried a
            valid ``retry:`` field, else ``None``.

    ``gc=False``: the fields are only str/int, so instances can never be part of a
    reference cycle; skipping GC tracking makes them cheaper to create.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """Decode ``data`` as JSON (with msgspec)."""
        return _json_decode(self.data)
