"""What the reference eventstreams service sends, as data.

Each operation is the exact sequence of writes of /work/shared/reference-streams.md
(design.md §4): one ``bytes`` per write, each followed by a flush.  The handlers
in ``_app`` only replay these; nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CHAT",
    "CHAT_CHUNKED",
    "CHAT_NOT_STREAMED",
    "DIFFERENT_DATA_SCHEMAS",
    "JSON",
    "MULTILINE",
    "RICH",
    "TEAPOT",
    "TEXT",
]

JSON: Final[tuple[bytes, ...]] = (
    b'data: {"content": "Hello"}\n\n',
    b'data: {"content": " "}\n\n',
    b'data: {"content": "world"}\n\n',
    b'data: {"content": "!"}\n\n',
)

#: Two spaces after the second colon: the decoder strips one, the value is " ".
TEXT: Final[tuple[bytes, ...]] = (
    b"data: Hello\n\n",
    b"data:  \n\n",
    b"data: world\n\n",
    b"data: !\n\n",
)

MULTILINE: Final[tuple[bytes, ...]] = (b"data: YHOO\ndata: +2\ndata: 10\n\n",)

RICH: Final[tuple[bytes, ...]] = (
    (
        b"id: job-1\nevent: completion\n"
        b'data: {"completion": "Hello", "stop_reason": null, "model": "jeeves-1"}\n\n'
    ),
    b"event: heartbeat\ndata: ping\nretry: 3000\n\n",
    (
        b"id: job-1\nevent: completion\n"
        b'data: {"completion": "world!", "stop_reason": "stop_sequence", "model": "jeeves-1"}\n\n'
    ),
)

CHAT: Final[tuple[bytes, ...]] = (*JSON, b"data: [DONE]\n\n")

#: The chat events cut at seams that do not line up with events, with one event
#: after the sentinel that a client must never decode.
CHAT_CHUNKED: Final[tuple[bytes, ...]] = (
    b'data: {"content": ',
    b'"Hello"}\n\ndata: {"content": " "}\n\n',
    b'data: {"content": "world"}\n\n',
    b'data: {"content": "!"}\n\ndata: [DONE]\n',
    b'\ndata: {"content": "Post sentinel data"}\n\n',
)

DIFFERENT_DATA_SCHEMAS: Final[tuple[bytes, ...]] = (
    b'id: event-1\nevent: message\ndata: {"id": 123, "content": "Here is your url"}\n\n',
    b'id: event-2\nevent: url\ndata: {"url": "https://example.com"}\n\n',
    b'id: event-3\nevent: message\ndata: {"content": "Have a great day!"}\n\n',
    b"id: event-4\nevent: array\ndata: [1, 2, 3, 4]\n\n",
    b"id: event-5\nevent: primitive\ndata: true\n\n",
    b"id: event-6\nevent: primitive\ndata: 3.14159\n\n",
)

#: The JSON body of ``chat`` with ``"stream": false`` (Content-Type application/json).
CHAT_NOT_STREAMED: Final = (
    b'[{"data":{"content":"Hello"}},{"data":{"content":" "}},'
    b'{"data":{"content":"world"}},{"data":{"content":"!"}}]'
)

#: The JSON body of ``text`` when the client sends ``x-teapot: json`` (status 418).
TEAPOT: Final = b'{"message":"I\'m a teapot"}'
