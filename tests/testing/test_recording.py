"""Recordings: every endpoint of the embedded server recorded, replayed by ``sse_server``
and recorded again comes back byte-identical, with the same chunk seams; the file
format round-trips, keeps no secret, and names what is wrong in a bad file."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiostreams.server import _reference as ref
from aiostreams.server import create_app, run_server
from aiostreams.testing import (
    RecordedChunk,
    Recording,
    RecordingError,
    SSEServer,
    record,
    redact_headers,
    redact_url,
)

CHAT = b'{"prompt": "hi"}'

#: (method, path and query, request headers, body, whether seams are HTTP chunks)
ENDPOINTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("POST", "/eventstreams/chat", {}, CHAT),
    ("POST", "/eventstreams/chat", {}, b'{"prompt": "hi", "stream": false}'),
    ("POST", "/eventstreams/chat", {}, b""),
    ("POST", "/eventstreams/chat-chunked", {}, CHAT),
    ("POST", "/eventstreams/differentdataschemas", {}, None),
    ("POST", "/eventstreams/json", {}, None),
    ("POST", "/eventstreams/multiline", {}, None),
    ("POST", "/eventstreams/rich", {}, None),
    ("POST", "/eventstreams/text", {}, None),
    ("POST", "/eventstreams/text", {"x-teapot": "json"}, None),
    ("GET", "/eventstreams/text", {}, None),
    ("GET", "/nowhere", {}, None),
    ("GET", "/load/chat?n=20&chunk=7", {}, None),
    ("POST", "/load/chat?n=3&sentinel=1&chunk=0", {}, None),
    ("GET", "/load/rich?n=5&chunk=0", {}, None),
    ("GET", "/load/large?n=3&size=100000&chunk=65536", {}, None),
    ("GET", "/load/resumable?n=6&drop_after=4", {}, None),
    ("GET", "/load/resumable?n=6", {"Last-Event-ID": "3"}, None),
    ("GET", "/load/idle?hold=0.1", {}, None),
    ("GET", "/load/chat?bogus=1", {}, None),
]

#: Headers that describe one connection, not the stream.
PER_CONNECTION = {"date", "server", "content-length", "transfer-encoding"}


@pytest.fixture
async def embedded() -> AsyncIterator[str]:
    async with run_server(create_app(pace=0)) as url:
        yield url


async def record_once(
    url: str, method: str, headers: dict[str, str], body: bytes | None
) -> Recording:
    out = io.StringIO()
    recording = await record(url, out, method=method, headers=headers.items(), body=body)
    assert Recording.loads(out.getvalue()) == recording  # what was written is what is returned
    return recording


def stream_headers(recording: Recording) -> list[tuple[str, str]]:
    return [(n, v) for n, v in recording.headers if n.lower() not in PER_CONNECTION]


@pytest.mark.parametrize(
    ("method", "target", "headers", "body"), ENDPOINTS, ids=[f"{m} {t}" for m, t, _, _ in ENDPOINTS]
)
async def test_a_recording_replays_byte_identical(
    embedded: str,
    sse_server: SSEServer,
    tmp_path: Path,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    original = await record_once(embedded + target, method, headers, body)
    file = tmp_path / "recording.jsonl"
    original.dump(file)

    sse_server.replay(file)
    replayed = await record_once(sse_server.url + target, method, headers, body)

    assert replayed.body == original.body
    assert (replayed.status, replayed.reason) == (original.status, original.reason)
    assert stream_headers(replayed) == stream_headers(original)
    assert replayed.end == original.end
    chunked = any(n.lower() == "transfer-encoding" for n, _ in original.headers)
    if chunked:  # HTTP chunks keep the server's seams whatever TCP does
        assert [c.data for c in replayed.chunks] == [c.data for c in original.chunks]


@pytest.mark.parametrize(
    ("path", "script"),
    [
        ("chat-chunked", ref.CHAT_CHUNKED),
        ("differentdataschemas", ref.DIFFERENT_DATA_SCHEMAS),
        ("json", ref.JSON),
        ("multiline", ref.MULTILINE),
        ("rich", ref.RICH),
        ("text", ref.TEXT),
    ],
)
async def test_the_recorded_chunks_are_the_server_writes(
    embedded: str, path: str, script: tuple[bytes, ...]
) -> None:
    recording = await record_once(f"{embedded}/eventstreams/{path}", "POST", {}, CHAT)
    assert [c.data for c in recording.chunks] == list(script)
    assert recording.end == "eof"
    assert [c.t for c in recording.chunks] == sorted(c.t for c in recording.chunks)


async def test_recorded_pace_is_kept_on_replay(sse_server: SSEServer) -> None:
    async with run_server(create_app(pace=0.05)) as url:
        original = await record_once(f"{url}/eventstreams/json", "POST", {}, None)
    sse_server.replay(original, pace=1.0)
    sse_server.replay(original, pace=0.0)
    paced = await record_once(sse_server.url_for("/eventstreams/json"), "POST", {}, None)
    fast = await record_once(sse_server.url_for("/eventstreams/json"), "POST", {}, None)
    assert paced.chunks[-1].t >= 0.1  # three gaps of 50 ms (less what header latency hides)
    assert fast.chunks[-1].t < paced.chunks[-1].t
    assert paced.body == fast.body == original.body


async def test_a_reset_is_recorded_and_replayed_as_a_reset(sse_server: SSEServer) -> None:
    sse_server.on("/drop").events("a").send(b"data: hal").reset()
    original = await record_once(sse_server.url_for("/drop"), "GET", {}, None)
    assert (original.end, original.error) == ("error", "ClientPayloadError")
    assert [c.data for c in original.chunks] == [b"data: a\n\n", b"data: hal"]
    sse_server.replay(original)
    replayed = await record_once(sse_server.url_for("/drop"), "GET", {}, None)
    assert [c.data for c in replayed.chunks] == [c.data for c in original.chunks]
    assert (replayed.end, replayed.error) == ("error", "ClientPayloadError")


# -- the file format ----------------------------------------------------------------------


SAMPLE = Recording(
    method="POST",
    url="http://127.0.0.1:8000/v1/chat/completions",
    request_headers=(("Content-Type", "application/json"),),
    request_body=b'{"stream": true}',
    status=200,
    reason="OK",
    headers=(("Content-Type", "text/event-stream"),),
    chunks=(
        RecordedChunk(0.001, b"data: caf\xc3"),  # a chunk ending inside "é": not UTF-8
        RecordedChunk(0.25, b"\xa9\n\n"),
        RecordedChunk(0.5, "data: \u2028 line separator, not a line break\n\n".encode()),
    ),
    end="eof",
    end_t=0.5,
)


def test_the_format_round_trips_and_is_text(tmp_path: Path) -> None:
    file = tmp_path / "r.jsonl"
    SAMPLE.dump(file)
    text = file.read_text(encoding="utf-8")
    assert Recording.load(file) == SAMPLE
    assert Recording.loads(text).dumps() == text  # stable: the same recording, the same bytes
    lines = text.split("\n")
    assert json.loads(lines[0])["aiostreams_recording"] == 1
    assert json.loads(lines[1]) == {"t": 0.001, "base64": "ZGF0YTogY2Fmww=="}
    assert json.loads(lines[3])["text"].startswith("data: \u2028")
    assert json.loads(lines[4]) == {"t": 0.5, "end": "eof"}
    assert lines[5] == ""  # a final newline, nothing after


def test_secrets_never_reach_the_file() -> None:
    out = Recording(
        method="GET",
        url="https://user:pa55@api.example.com/v1/stream?api_key=k3y&topic=news&token=t0k",
        request_headers=(
            ("Authorization", "Bearer sk-live"),
            ("X-API-Key", "k3y"),
            ("Cookie", "session=abc"),
            ("Accept", "text/event-stream"),
        ),
        request_body=None,
        status=200,
        reason="OK",
        headers=(("Set-Cookie", "session=abc"), ("X-Request-Id", "r1")),
    )
    from aiostreams.testing._recording import header_line

    line = header_line(
        out.method, out.url, out.request_headers, None, out.status, out.reason, out.headers
    )
    for secret in ("pa55", "user", "sk-live", "k3y", "abc", "t0k"):
        assert secret not in line
    loaded = Recording.loads(line)
    assert loaded.url == (
        "https://api.example.com/v1/stream?api_key=REDACTED&topic=news&token=REDACTED"
    )
    assert dict(loaded.request_headers)["Accept"] == "text/event-stream"
    assert dict(loaded.headers)["X-Request-Id"] == "r1"
    assert redact_headers([("Keep-Alive", "5"), ("Proxy-Authorization", "x")]) == [
        ("Keep-Alive", "5"),
        ("Proxy-Authorization", "REDACTED"),
    ]
    assert redact_url("http://h/p") == "http://h/p"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ('{"aiostreams_recording": 2}\n', ":1: not an aiostreams recording of version 1"),
        ("[1]\n", ":1: expected a JSON object"),
        ('{"aiostreams_recording": 1, "request": {}}\n', ":1: malformed header line"),
        (SAMPLE.dumps().replace('"t": 0.25', '"t": "soon"'), ":3: malformed line"),
        (SAMPLE.dumps().replace('{"t": 0.5, "text"', '{"t": 0.5, "txt"'), ":4: malformed line"),
        (SAMPLE.dumps() + '{"t": 1, "text": "late"}\n', ":6: a line after the end line"),
        (SAMPLE.dumps().replace('"end": "eof"', '"end": "maybe"'), ":5: malformed line"),
        (SAMPLE.dumps().replace("ZGF0YTogY2Fmww==", "not base64!"), ":2: malformed line"),
        ("{not json\n", ":1: not JSON"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(RecordingError, match=message) as info:
        Recording.loads(text, source="bad.jsonl")
    assert str(info.value).startswith("bad.jsonl")


def test_a_file_without_end_line_was_interrupted() -> None:
    text = SAMPLE.dumps().rsplit('{"t": 0.5, "end"', 1)[0]
    loaded = Recording.loads(text)
    assert (loaded.end, loaded.end_t, loaded.chunks) == ("interrupted", 0.5, SAMPLE.chunks)
