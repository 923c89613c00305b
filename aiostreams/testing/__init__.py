"""Test any SSE client against a real, scriptable server, and turn real streams into tests.

* :class:`SSEServer` (the ``sse_server`` pytest fixture): an aiohttp server on
  127.0.0.1 that answers with scripted events, chunk seams, pauses and faults
  (reset, stall, status + ``Retry-After``, wrong content type, malformed chunk,
  endless line), honours ``Last-Event-ID`` from a scripted history, and keeps
  every request it received.
* :func:`record` / :class:`Recording`: a real stream written to a text file
  (JSON Lines, secrets removed) and served again with ``SSEServer.replay``.

See docs/testing.md.  The pytest plugin is ``aiostreams.testing.pytest_plugin``,
registered through the ``pytest11`` entry point; pytest imports it in every run,
so this package imports aiohttp only when one of its names is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._recording import (
        FORMAT_VERSION,
        RecordedChunk,
        Recording,
        RecordingError,
        record,
        redact_headers,
        redact_url,
    )
    from ._script import Script
    from ._server import ReceivedRequest, SSEServer

__all__ = [
    "FORMAT_VERSION",
    "ReceivedRequest",
    "RecordedChunk",
    "Recording",
    "RecordingError",
    "SSEServer",
    "Script",
    "record",
    "redact_headers",
    "redact_url",
]

_LAZY = {
    "FORMAT_VERSION": "._recording",
    "RecordedChunk": "._recording",
    "Recording": "._recording",
    "RecordingError": "._recording",
    "record": "._recording",
    "redact_headers": "._recording",
    "redact_url": "._recording",
    "Script": "._script",
    "ReceivedRequest": "._server",
    "SSEServer": "._server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiostreams.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
