"""Test any SSE client against a real, scriptable server, and turn real streams into tests.

* :class:`SSEServer` (the ``sse_server`` pytest fixture): an aiohttp server on
  127.0.0.1 that answers with scripted events, chunk seams, pauses and faults
  (reset, stall, status + ``Retry-After``, wrong content type, malformed chunk,
  endless line), honours ``Last-Event-ID`` from a scripted history, and keeps
  every request it received.
* :func:`record` / :class:`Recording`: a real stream written to a text file
  (JSON Lines, secrets removed) and served again with ``SSEServer.replay``.

See docs/testing.md.  The pytest plugin is ``aiostreams.testing.pytest_plugin``,
registered through the ``pytest11`` entry point.
"""

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
