"""``aiostreams record`` and ``aiostreams replay``, run as real child processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from support import default_sigint

from aiostreams.server import _reference as ref
from aiostreams.testing import Recording, SSEServer, record

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

REPLAY_LINE = re.compile(r"^aiostreams replay listening on (http://127\.0\.0\.1:\d+)\n$")


async def aiostreams(*args: str, timeout: float = 20) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_record_writes_the_stream_without_secrets(
    sse_server: SSEServer, tmp_path: Path
) -> None:
    sse_server.on("/v1/chat").send(*ref.CHAT_CHUNKED)
    out = tmp_path / "chat.jsonl"
    code, stderr = await aiostreams(
        "record", sse_server.url_for("/v1/chat?api_key=s3cret&model=m"),
        "--json", '{"stream": true}', "-H", "Authorization: Bearer sk-s3cret", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "recorded 200 OK: 5 chunks" in stderr and "ended: eof" in stderr
    assert "s3cret" not in out.read_text() + stderr
    recording = Recording.load(out)
    assert [c.data for c in recording.chunks] == list(ref.CHAT_CHUNKED)
    (request,) = sse_server.requests
    assert (request.method, request.json()) == ("POST", {"stream": True})
    assert request.headers["Authorization"] == "Bearer sk-s3cret"  # sent, just not written
    assert request.headers["Content-Type"] == "application/json"
    assert recording.request_body == b'{"stream": true}'


async def test_record_cannot_connect(tmp_path: Path) -> None:
    with SSEServer() as server:
        url = server.url_for("/e?token=s3cret")
    code, stderr = await aiostreams("record", url, "-o", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert stderr.startswith("error: cannot connect to http://127.0.0.1:")
    assert "token=REDACTED" in stderr and "s3cret" not in stderr
    assert stderr.endswith(": ClientConnectorError\n")
    assert not (tmp_path / "r.jsonl").exists()


async def test_record_interrupted_keeps_what_arrived(sse_server: SSEServer, tmp_path: Path) -> None:
    sse_server.on().events("a", "b").stall()
    out = tmp_path / "live.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "record", sse_server.url, "-o", str(out),
        stderr=asyncio.subprocess.PIPE, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        await sse_server.received(1)
        for _ in range(200):  # the recorder flushes each chunk line as it arrives
            if out.exists() and out.read_text().count("\n") >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 130, stderr
    recording = Recording.load(out)
    assert recording.body == b"data: a\n\ndata: b\n\n"
    assert recording.end == "interrupted"


async def test_replay_serves_a_recording_until_stopped(tmp_path: Path) -> None:
    file = tmp_path / "rich.jsonl"
    with SSEServer() as server:
        server.on("/eventstreams/rich").send(*ref.RICH)
        with file.open("w") as out:
            await record(server.url_for("/eventstreams/rich"), out, method="POST")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "replay", str(file), "--port", "0", "--pace", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        match = REPLAY_LINE.match((await asyncio.wait_for(process.stdout.readline(), 20)).decode())
        assert match
        async with aiohttp.ClientSession() as session:
            for path in ("/eventstreams/rich", "/any/other/path"):
                async with session.post(match.group(1) + path) as response:
                    assert response.headers["Content-Type"] == "text/event-stream"
                    assert await response.read() == b"".join(ref.RICH)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert "aiostreams replay stopped after 2 requests" in stderr.decode()


async def test_replay_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"hello": 1}) + "\n")
    code, stderr = await aiostreams("replay", str(bad), "--port", "0")
    assert code == 1
    assert stderr == (
        f"error: {bad}:1: not an aiostreams recording of version 1 (aiostreams_recording is None)\n"
    )
    code, stderr = await aiostreams("replay", str(tmp_path / "missing.jsonl"), "--port", "0")
    assert code == 1 and "No such file" in stderr
