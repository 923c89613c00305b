"""The ``aiostreams`` command, run as a real child process (``python -m aiostreams``)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
import threading
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import pytest
from support import default_sigint

from aiostreams.cli import _missing_extra, main
from aiostreams.server import RequestRecord, ServerProcess

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")

URL_LINE = re.compile(r"^aiostreams server listening on (http://127\.0\.0\.1:\d+)\n$")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str, cwd: Path | None = None, timeout: float = 20) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", *args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


# -- serve -------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
async def test_serve_prints_its_url_serves_and_stops_cleanly(stop_with: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "serve", "--port", "0", "--pace", "0",
        "--api-key", "Token k",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = URL_LINE.match(line)
        assert match, line
        url = match.group(1)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/eventstreams/json") as refused:
                assert refused.status == 401
            async with session.post(
                f"{url}/eventstreams/json", headers={"Authorization": "Token k"}
            ) as response:
                assert response.headers["Content-Type"] == "text/event-stream"
                assert await response.read() == (
                    b'data: {"content": "Hello"}\n\ndata: {"content": " "}\n\n'
                    b'data: {"content": "world"}\n\ndata: {"content": "!"}\n\n'
                )
    finally:
        process.send_signal(stop_with)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr
    assert "aiostreams server stopped" in stderr.decode()


async def test_serve_on_a_busy_port_fails_clearly(eventstreams_server: str) -> None:
    port = eventstreams_server.rsplit(":", 1)[1]
    result = await run_cli("serve", "--port", port)
    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_process_helper() -> None:
    with ServerProcess(pace=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(f"{server.url}/eventstreams/multiline", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            assert response.read() == b"data: YHOO\ndata: +2\ndata: 10\n\n"


# -- stream against the embedded server ---------------------------------------------------


async def test_stream_prints_events_readably(eventstreams_server: str) -> None:
    result = await run_cli("stream", "-X", "POST", f"{eventstreams_server}/eventstreams/rich")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        '[completion id=job-1] {"completion": "Hello", "stop_reason": null, "model": "jeeves-1"}\n'
        "[heartbeat id=job-1 retry=3000] ping\n"
        '[completion id=job-1] {"completion": "world!", "stop_reason": "stop_sequence", '
        '"model": "jeeves-1"}\n'
    )
    assert "stream ended after 3 events" in result.stderr


async def test_stream_json_lines(eventstreams_server: str) -> None:
    text = await run_cli(
        "stream", "--json", "-X", "post", f"{eventstreams_server}/eventstreams/text"
    )
    multiline = await run_cli(
        "stream", "--json", "-X", "POST", f"{eventstreams_server}/eventstreams/multiline"
    )
    assert text.returncode == multiline.returncode == 0
    assert [json.loads(line) for line in text.stdout.splitlines()] == [
        {"event": "message", "data": data, "id": "", "retry": None}
        for data in ["Hello", " ", "world", "!"]
    ]
    assert [json.loads(line) for line in multiline.stdout.splitlines()] == [
        {"event": "message", "data": "YHOO\n+2\n10", "id": "", "retry": None}
    ]


async def test_stream_sends_body_headers_and_last_event_id(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord], tmp_path: Path
) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"prompt": "from a file"}')
    result = await run_cli(
        "stream", "-d", f"@{body}", "-H", "Authorization: Token k", "-H", "x-extra:  v ",
        "--last-event-id", "job-0", f"{eventstreams_server}/eventstreams/chat?q=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[message] [DONE]"
    assert "stream ended after 5 events" in result.stderr
    (record,) = eventstreams_requests
    assert (record.method, record.query, record.body) == (
        "POST", {"q": "1"}, b'{"prompt": "from a file"}'
    )  # fmt: skip
    assert record.headers["Content-Type"] == "application/json"
    assert record.headers["Accept"] == "text/event-stream"
    assert record.headers["Authorization"] == "Token k"
    assert record.headers["x-extra"] == "v"
    assert record.headers["Last-Event-ID"] == "job-0"


async def test_stream_ctrl_c_reports_the_count(eventstreams_server: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiostreams", "stream", f"{eventstreams_server}/load/chat?n=1&hold=30",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 20)
        assert first == b'[message] {"content": "tok1"}\n'  # flushed per event, not at exit
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:  # never leave the child running
            process.kill()
            await process.wait()
    assert process.returncode == 130
    assert stderr.decode().strip() == "interrupted after 1 event"


async def test_stream_errors_exit_1_with_one_clear_line(eventstreams_server: str) -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}/events"
    cases = [  # (arguments, words in the error, events printed before it)
        (["/eventstreams/rich"], "error: HTTP 405 Method Not Allowed from GET", 0),
        (["-d", '{"prompt": "x", "stream": false}', "/eventstreams/chat"],
         "answered Content-Type 'application/json', not text/event-stream", 0),
        (["/load/resumable?n=5&drop_after=2"], "broke after 2 events", 2),
        ([refused], f"error: cannot connect to {refused}", 0),
    ]  # fmt: skip
    # Concurrently: each case is a Python start-up, the slow part of this file.
    results = await asyncio.gather(
        *(
            run_cli("stream", *(eventstreams_server + a if a[0] == "/" else a for a in args))
            for args, _, _ in cases
        )
    )
    for (args, words, printed), result in zip(cases, results, strict=True):
        assert result.returncode == 1, (args, result)
        assert words in result.stderr, (args, result)
        assert len(result.stderr.splitlines()) == 1, (args, result)
        assert len(result.stdout.splitlines()) == printed, (args, result)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["stream", "-H", "no colon", "http://127.0.0.1:1/"], "expected 'Name: value'"),
        (["stream", "http://127.0.0.1:1/", "--pace", "1"], "unrecognized arguments: --pace"),
        (["serve", "--pace", "-1"], "expected a number of seconds >= 0"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse alone decides these, so in-process is the same as a child process.
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


# -- stream against a server that is not aiostreams' -----------------------------------


class _ForeignSSE(BaseHTTPRequestHandler):
    """A plain http.server stream: CRLF line endings, a comment, and an incomplete
    last event (the connection closes before its blank line)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.end_headers()
        self.wfile.write(b": hello from http.server\r\nevent: greeting\r\ndata: hello\r\n")
        self.wfile.flush()
        self.wfile.write(b"data: world\r\nid: 7\r\n\r\ndata: bye\r\nretry: 250\r\n\r\n")
        self.wfile.write(b"data: cut off before its blank line\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def foreign_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForeignSSE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_stream_from_a_foreign_server(foreign_server: str) -> None:
    result, as_json = await asyncio.gather(
        run_cli("stream", f"{foreign_server}/events"),
        run_cli("stream", "--json", f"{foreign_server}/events"),
    )
    assert result.returncode == as_json.returncode == 0, (result, as_json)
    assert result.stdout == (
        "[greeting id=7] hello\n"
        "                world\n"
        "[message id=7 retry=250] bye\n"
    )  # fmt: skip
    # Dropped by the standard, but said so: nothing disappears silently.
    assert "the stream ended inside an event" in result.stderr
    assert "stream ended after 2 events" in result.stderr
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"event": "greeting", "data": "hello\nworld", "id": "7", "retry": None},
        {"event": "message", "data": "bye", "id": "7", "retry": 250},
    ]


# -- help, demo, bench, version ----------------------------------------------------------


async def test_help_runs_as_a_program() -> None:
    result = await run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: aiostreams")
    assert "examples:" in result.stdout
    for command in ("serve", "stream", "demo", "bench"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("serve", "--api-key"),
        ("stream", "exit status: 0 stream ended, 1 HTTP/connection/decoding error"),
        ("demo", "aiostreams demo"),
        ("bench", "arguments after -- go to python -m benchmarks"),
    ],
)
def test_every_command_help_has_examples(
    command: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: aiostreams {command}")
    assert "examples:" in out
    assert words in out


async def test_demo_streams_all_seven_operations_through_the_sdk() -> None:
    result = await run_cli("demo", "--pace", "0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for operation in (
        "chat", "chat_skip_sentinel", "different_data_schemas", "json", "multiline", "rich",
        "text",
    ):  # fmt: skip
        assert f"\n{operation}:\n" in "\n" + out
    assert "SentinelEvent(data='[DONE]')" in out
    assert "Post sentinel data" not in out
    assert "URLEvent(url='https://example.com')" in out
    assert "HeartbeatEvent(event='heartbeat', data='ping', retry=3000)" in out
    assert "TextEvent(data='YHOO\\n+2\\n10')" in out
    assert out.count("ChatCompletionEvent(") == 4 + 4 + 4  # chat, chat_skip_sentinel, JSON answer
    assert out.rstrip().splitlines()[-1].startswith("27 typed events from 7 operations in ")
    assert result.stderr == ""


async def test_bench_outside_a_checkout(tmp_path: Path) -> None:
    result = await run_cli("bench", cwd=tmp_path)
    assert result.returncode == 1
    assert "from a checkout of the aiostreams repository" in result.stderr


@pytest.mark.skipif(bool(_missing_extra("bench")), reason="needs the bench extra")
async def test_bench_runs_the_checkouts_benchmarks(tmp_path: Path) -> None:
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__init__.py").write_text("")
    (tmp_path / "benchmarks" / "__main__.py").write_text(
        "import sys\nprint('benchmarks got', sys.argv[1:])\nraise SystemExit(3)\n"
    )
    result = await run_cli("bench", "--", "--quick", "x", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == "benchmarks got ['--quick', 'x']\n"
