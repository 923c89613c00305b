"""Recordings of real streams: the file format, secret removal, and the recorder.

Format (version 1): UTF-8 JSON Lines, one JSON object per line, split on ``\\n``.

* line 1, the header::

    {"aiostreams_recording": 1,
     "request": {"method": ..., "url": ..., "headers": [[name, value], ...], "body": BODY},
     "response": {"status": ..., "reason": ..., "headers": [[name, value], ...]}}

* one line per chunk, as received, in order: ``{"t": SECONDS, "text": "..."}`` when
  the bytes are valid UTF-8, else ``{"t": SECONDS, "base64": "..."}``;
* the last line says how the body ended: ``{"t": SECONDS, "end": "eof"}``,
  ``"error"`` (with ``"error": "ExceptionName"``) or ``"interrupted"``.

``t`` counts seconds from the arrival of the response headers (microseconds kept).
``BODY`` is ``null`` or ``{"text": ...}``/``{"base64": ...}``.  Secret header values,
secret query values and ``user:password@`` are replaced by ``REDACTED`` before
anything is written.  Keys are always written in this order, so the same stream
gives the same file.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict

__all__ = [
    "FORMAT_VERSION",
    "REDACTED",
    "RecordedChunk",
    "Recording",
    "RecordingError",
    "record",
    "redact_headers",
    "redact_url",
]

FORMAT_VERSION: Final = 1
REDACTED: Final = "REDACTED"

End = Literal["eof", "error", "interrupted"]
_ENDS: Final = ("eof", "error", "interrupted")

#: Header and query names whose values are credentials, whole or by a part of the name.
_SECRET_NAMES: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_PARTS: Final = (
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "session",
    "signature",
    "credential",
    "api-key",
    "api_key",
    "apikey",
    "x-key",
    "access-key",
    "private",
)


class RecordingError(ValueError):
    """A recording file that cannot be read; the message names the file and line."""


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered == "key" or any(p in lowered for p in _SECRET_PARTS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers with every credential's value replaced by ``REDACTED``."""
    return [(name, REDACTED if is_secret(name) else value) for name, value in headers]


def redact_url(url: str) -> str:
    """``url`` without ``user:password@`` and with secret query values replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class RecordedChunk:
    """``data`` as one read returned it, ``t`` seconds after the response headers."""

    t: float
    data: bytes


@dataclass(frozen=True)
class Recording:
    """One recorded exchange: the request sent, the response status and headers, and
    the body as the chunks that arrived.  Load with :meth:`load`, write with :meth:`dump`.
    """

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes | None
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[RecordedChunk, ...] = ()
    end: End = "eof"
    end_t: float = 0.0
    error: str | None = None
    version: int = field(default=FORMAT_VERSION)

    @property
    def body(self) -> bytes:
        """Every chunk joined: the body as the client read it."""
        return b"".join(chunk.data for chunk in self.chunks)

    @property
    def path(self) -> str:
        """The path of the recorded URL, e.g. ``"/v1/chat/completions"``."""
        return urlsplit(self.url).path or "/"

    def dumps(self) -> str:
        head = header_line(
            self.method,
            self.url,
            self.request_headers,
            self.request_body,
            self.status,
            self.reason,
            self.headers,
        )
        lines = [head, *(chunk_line(c.t, c.data) for c in self.chunks)]
        lines.append(end_line(self.end_t, self.end, self.error))
        return "".join(lines)

    def dump(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        """Read a recording file.

        Raises:
            RecordingError: the file is not a recording of a known version, or a line
                is not what the format says (the message names the line).
            OSError: the file cannot be read.
        """
        return cls.loads(Path(path).read_bytes().decode("utf-8", "replace"), source=str(path))

    @classmethod
    def loads(cls, text: str, *, source: str = "<recording>") -> Recording:
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            raise RecordingError(f"{source}: empty file, not an aiostreams recording")
        head = _object(lines[0], source, 1)
        version = head.get("aiostreams_recording")
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"{source}:1: not an aiostreams recording of version {FORMAT_VERSION} "
                f"(aiostreams_recording is {version!r})"
            )
        try:
            request, response = head["request"], head["response"]
            fields: dict[str, Any] = {
                "method": str(request["method"]),
                "url": str(request["url"]),
                "request_headers": _pairs(request["headers"]),
                "request_body": _bytes(request["body"]) if request["body"] is not None else None,
                "status": int(response["status"]),
                "reason": str(response["reason"]),
                "headers": _pairs(response["headers"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"{source}:1: malformed header line ({exc!r})") from None
        chunks: list[RecordedChunk] = []
        ended = False
        for number, line in enumerate(lines[1:], start=2):
            item = _object(line, source, number)
            if ended:
                raise RecordingError(f"{source}:{number}: a line after the end line")
            try:
                t = float(item["t"])
                if "end" in item:
                    if item["end"] not in _ENDS:
                        raise ValueError(f"end must be one of {_ENDS}, got {item['end']!r}")
                    fields.update(end=item["end"], end_t=t, error=item.get("error"))
                    ended = True
                else:
                    chunks.append(RecordedChunk(t, _bytes(item)))
            except (KeyError, TypeError, ValueError) as exc:
                raise RecordingError(f"{source}:{number}: malformed line ({exc!r})") from None
        if not ended:
            # A recorder killed hard leaves no end line: what arrived is still usable.
            fields.update(end="interrupted", end_t=chunks[-1].t if chunks else 0.0)
        return cls(chunks=tuple(chunks), **fields)


# -- lines ---------------------------------------------------------------------------


def _dump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _encoded(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def header_line(
    method: str,
    url: str,
    request_headers: Iterable[tuple[str, str]],
    request_body: bytes | None,
    status: int,
    reason: str,
    headers: Iterable[tuple[str, str]],
) -> str:
    return _dump(
        {
            "aiostreams_recording": FORMAT_VERSION,
            "request": {
                "method": method,
                "url": redact_url(url),
                "headers": [list(p) for p in redact_headers(request_headers)],
                "body": None if request_body is None else _encoded(request_body),
            },
            "response": {
                "status": status,
                "reason": reason,
                "headers": [list(p) for p in redact_headers(headers)],
            },
        }
    )


def chunk_line(t: float, data: bytes) -> str:
    return _dump({"t": round(t, 6), **_encoded(data)})


def end_line(t: float, end: End, error: str | None = None) -> str:
    item: dict[str, object] = {"t": round(t, 6), "end": end}
    if error is not None:
        item["error"] = error
    return _dump(item)


def _object(line: str, source: str, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise RecordingError(f"{source}:{number}: not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise RecordingError(f"{source}:{number}: expected a JSON object")
    return item


def _pairs(value: Sequence[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for pair in value:
        if len(pair) != 2:
            raise ValueError(f"a header must be [name, value], got {pair!r}")
        pairs.append((str(pair[0]), str(pair[1])))
    return tuple(pairs)


def _bytes(item: Mapping[str, Any]) -> bytes:
    if "text" in item:
        return str(item["text"]).encode("utf-8")
    if "base64" in item:
        return base64.b64decode(str(item["base64"]), validate=True)
    raise KeyError("text or base64")


# -- the recorder ------------------------------------------------------------------------


async def record(
    url: str,
    out: IO[str],
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Recording:
    """Send one request and write what comes back to ``out``, chunk by chunk.

    Each line is flushed as it is written, so a recording cut short (Ctrl-C,
    cancellation) keeps every chunk received so far and ends with
    ``"end": "interrupted"``.  For a chunked response each chunk is one HTTP chunk
    as the server wrote it, whatever TCP did to it; otherwise one read.

    Returns:
        The recording (secrets removed, as written).

    Raises:
        aiohttp.ClientError: the request could not be sent or no response came
            (nothing is written then).  An error after the headers is recorded as
            ``"end": "error"`` instead.
    """
    request_headers: CIMultiDict[str] = CIMultiDict(headers)
    request_headers.setdefault("Accept", "text/event-stream")
    own = session is None
    if session is None:
        # No total timeout: a stream may rightly last for hours.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        session = aiohttp.ClientSession(timeout=timeout)
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        out.write(line)
        out.flush()

    try:
        async with session.request(method, url, headers=request_headers, data=body) as response:
            started = time.monotonic()
            emit(
                header_line(
                    method,
                    url,
                    request_headers.items(),
                    body,
                    response.status,
                    response.reason or "",
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
                )
            )
            chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
            end: End = "interrupted"
            error: str | None = None
            try:
                pending = bytearray()
                while True:
                    data, end_of_chunk = await response.content.readchunk()
                    pending += data
                    at_eof = not data and not end_of_chunk
                    if pending and (end_of_chunk or not chunked or at_eof):
                        emit(chunk_line(time.monotonic() - started, bytes(pending)))
                        pending.clear()
                    if at_eof:
                        break
                end = "eof"
            except (aiohttp.ClientError, ConnectionError) as exc:
                end, error = "error", type(exc).__name__
            finally:
                emit(end_line(time.monotonic() - started, end, error))
    finally:
        if own:
            await session.close()
    return Recording.loads("".join(lines))
