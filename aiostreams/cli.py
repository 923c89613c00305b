"""The aiostreams command: serve the eventstreams API, print any SSE stream, run benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import msgspec
from multidict import CIMultiDict

from . import ServerSentEvent, SSEDecoder, __version__
from ._request import DEFAULT_SENSITIVE_HEADERS, redact_url, split_url
from ._stats import StreamStats
from ._validate import check_header, check_header_value, check_method, check_port
from .errors import AiostreamsError, InvalidURL

#: Exit statuses of ``aiostreams stream`` (argparse itself uses 2 for usage errors).
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2  # argparse's status for a bad command line
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report a Ctrl-C'd program


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    return command(args)


# -- demo -------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    """Run all seven operations through the SDK against an embedded server."""
    from ._demo import demo

    try:
        return asyncio.run(demo(pace=args.pace))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# -- serve ------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    """Serve the eventstreams API in the foreground until Ctrl-C or SIGTERM."""
    from .server import serve  # imported here: ``stream`` and ``demo`` do not need aiohttp.web

    def announce(url: str) -> None:
        # The first stdout line is a contract: ServerProcess and benchmarks parse the URL.
        print(f"aiostreams server listening on {url}", flush=True)

    # One line per request on stderr (stdout's first line is the contract above).
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    server_log = logging.getLogger("aiostreams.server")
    server_log.addHandler(log_handler)
    server_log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        asyncio.run(
            serve(
                host=args.host, port=args.port, pace=args.pace, api_key=args.api_key,
                on_ready=announce,
            )
        )  # fmt: skip
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # pragma: no cover - only where signal handlers are unavailable
        pass
    finally:
        server_log.removeHandler(log_handler)
    print("aiostreams server stopped", file=sys.stderr)
    return EXIT_OK


# -- stream -----------------------------------------------------------------------


@dataclass
class _Progress:
    connected: bool = False  # a 2xx event-stream response arrived
    events: int = 0
    stats: StreamStats | None = None  # printed by --stats


class _StreamFailed(Exception):
    """A one-line reason the stream could not be read, for stderr."""


def run_stream(args: argparse.Namespace) -> int:
    """Print the events of an SSE endpoint as they arrive."""
    userinfo = args.url.partition("://")[2].split("/", 1)[0].rpartition("@")[0]
    if userinfo and any(name.lower() == "authorization" for name, _ in args.headers):
        return _usage_error(
            "stream",
            "pass credentials either in the URL (user:pass@) or in -H 'Authorization: ...', "
            "not both",
        )
    progress = _Progress()
    try:
        asyncio.run(_stream(args, progress))
    except KeyboardInterrupt:
        print(f"interrupted after {_events(progress.events)}", file=sys.stderr)
        _print_stats(args, progress)
        return EXIT_INTERRUPTED
    except _StreamFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        _print_stats(args, progress)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `aiostreams stream URL | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return EXIT_OK
    print(f"stream ended after {_events(progress.events)}", file=sys.stderr)
    _print_stats(args, progress)
    return EXIT_OK


def _print_stats(args: argparse.Namespace, progress: _Progress) -> None:
    """``--stats``: the stream's :class:`StreamStats` on stderr (stdout has the events)."""
    if args.stats and progress.stats is not None:
        progress.stats._end()  # interrupted: freeze the times where they are
        print(progress.stats.summary(), file=sys.stderr)


async def _stream(args: argparse.Namespace, progress: _Progress) -> None:
    headers: CIMultiDict[str] = CIMultiDict(args.headers)
    headers.setdefault("Accept", "text/event-stream")
    if args.last_event_id is not None:
        headers["Last-Event-ID"] = args.last_event_id
    body = _request_body(args.data)
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    method = args.method or ("POST" if body is not None else "GET")
    # Messages name the URL without its query or user:password@, and never echo a
    # credential (a server may quote the request back in an error page).
    shown = redact_url(args.url)
    secrets = _secrets_of(args.url, headers)
    where = f"{method} {shown}"
    render = _render_json if args.json else _render_text
    # No total timeout: a stream may rightly last for hours.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    progress.stats = stats = StreamStats(method, args.url)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, args.url, headers=headers, data=body) as response,
        ):
            await _check_response(response, where, secrets)
            progress.connected = True
            decoder = SSEDecoder()
            stats._attach(decoder, response.status)
            async for chunk in response.content.iter_any():
                events = decoder.feed(chunk)
                stats.read(len(chunk), len(events))
                for event in events:
                    # Counted first: on Python 3.10 Ctrl-C raises wherever the loop
                    # is, so an event already printed must already be counted.
                    progress.events += 1
                    sys.stdout.write(render(event))
                    sys.stdout.flush()
            if decoder.pending_bytes:
                print(
                    f"note: the stream ended inside an event; its {decoder.pending_bytes} "
                    "bytes are discarded, as the SSE standard requires",
                    file=sys.stderr,
                )
            decoder.close()
    except aiohttp.InvalidURL:
        raise _StreamFailed(f"invalid URL {shown!r}: use http://host:port/path") from None
    except aiohttp.ClientError as exc:
        reason = _hide(str(exc), secrets)
        if progress.connected:
            raise _StreamFailed(
                f"the connection to {shown} broke after {_events(progress.events)}: {reason}"
            ) from None
        raise _StreamFailed(f"cannot connect to {shown}: {reason}") from None
    except asyncio.TimeoutError:
        raise _StreamFailed(f"timed out connecting to {shown}") from None
    except AiostreamsError as exc:
        reason = _hide(str(exc), secrets)
        raise _StreamFailed(f"cannot decode the stream from {shown}: {reason}") from None


def _secrets_of(url: str, headers: CIMultiDict[str]) -> list[str]:
    """What must never be printed: credential header values, the URL's query
    values and password, and the full URL itself."""
    parts = urlsplit(url)
    found = [url, parts.query, parts.password or ""]
    found += [value for _, value in parse_qsl(parts.query)]
    found += [v for k, v in headers.items() if k.lower() in DEFAULT_SENSITIVE_HEADERS]
    # Longest first: a token inside a longer secret must not leave the rest readable.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _hide(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return " ".join(text.split())  # one line on stderr, whatever the message held


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def _request_body(data: str | None) -> bytes | None:
    """``-d`` as bytes: the text itself, ``@FILE`` the file's content, ``@-`` stdin."""
    if data is None or not data.startswith("@"):
        return None if data is None else data.encode()
    if data == "@-":
        return sys.stdin.buffer.read()
    try:
        return Path(data[1:]).read_bytes()
    except OSError as exc:
        raise _StreamFailed(f"cannot read the request body from {data[1:]!r}: {exc}") from None


async def _check_response(response: aiohttp.ClientResponse, where: str, secrets: list[str]) -> None:
    if not 200 <= response.status < 300:
        body = _hide(await _body_excerpt(response), secrets)
        raise _StreamFailed(f"HTTP {response.status} {response.reason} from {where}: {body}")
    if response.content_type != "text/event-stream":
        body = await _body_excerpt(response)
        raise _StreamFailed(
            f"{where} answered Content-Type "
            f"{response.headers.get('Content-Type', '(none)')!r}, "
            f"not text/event-stream: {_hide(body, secrets)}"
        )


async def _body_excerpt(response: aiohttp.ClientResponse, limit: int = 500) -> str:
    raw = await response.content.read(limit + 1)
    text = raw[:limit].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
    return (text + "…" if len(raw) > limit else text) or "(empty body)"


def _render_text(event: ServerSentEvent) -> str:
    """``[event id=... retry=...] data``, with further data lines aligned under the first."""
    label = event.event
    if event.id:
        label += f" id={event.id}"
    if event.retry is not None:
        label += f" retry={event.retry}"
    prefix = f"[{label}] "
    return prefix + event.data.replace("\n", "\n" + " " * len(prefix)) + "\n"


_encode_json = msgspec.json.Encoder().encode


def _render_json(event: ServerSentEvent) -> str:
    """One JSON object per line: ``{"event", "data", "id", "retry"}``."""
    return _encode_json(event).decode() + "\n"


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():  # the text is not shown: it may hold a credential
        raise argparse.ArgumentTypeError("expected 'Name: value' (a name, a colon, the value)")
    name, value = name.strip(), value.strip()
    try:
        check_header(name, value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, value


def _last_event_id(text: str) -> str:
    try:
        check_header_value("Last-Event-ID", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse ``type=`` from a ``_validate`` check: its ValueError is the message."""

    def convert(text: str) -> str:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _url(text: str) -> str:
    """An http(s) URL that can work (the checks of ``connect()``), shown redacted."""
    try:
        split_url(text, "URL")
    except InvalidURL as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _port(text: str) -> int:
    try:
        return check_port(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"port must be a whole number 0-65535 (0 picks a free port), got {text!r}"
        ) from None


# -- record / replay ----------------------------------------------------------------


def run_record(args: argparse.Namespace) -> int:
    """Write one response, chunk by chunk with time offsets, to a recording file."""
    from .testing import record, redact_url  # imported here: the other commands do not need it

    shown = redact_url(args.url)
    try:
        body = _request_body(args.json if args.json is not None else args.data)
    except _StreamFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    headers: CIMultiDict[str] = CIMultiDict(args.headers)
    if args.json is not None:
        headers.setdefault("Content-Type", "application/json")
    method = args.method or ("POST" if body is not None else "GET")
    out_path = Path(args.out)
    try:
        with out_path.open("w", encoding="utf-8", newline="\n") as out:
            recording = asyncio.run(
                record(args.url, out, method=method, headers=headers.items(), body=body)
            )
    except KeyboardInterrupt:
        print(f"interrupted: what arrived until now is in {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # before OSError: some are both
        _remove_if_empty(out_path)
        reason = "invalid URL" if isinstance(exc, aiohttp.InvalidURL) else type(exc).__name__
        print(f"error: cannot connect to {shown}: {reason}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: cannot write the recording {args.out}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    size = len(recording.body)
    print(
        f"recorded {recording.status} {recording.reason}: {len(recording.chunks)} chunks, "
        f"{size} bytes in {recording.end_t:.3f} s, ended: {recording.end}; wrote {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK


def _remove_if_empty(path: Path) -> None:
    """No response, no recording: an empty file would only fail later, in replay."""
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


def run_replay(args: argparse.Namespace) -> int:
    """Serve a recording to every request until Ctrl-C or SIGTERM."""
    from .testing import Recording, RecordingError, SSEServer

    try:
        recording = Recording.load(args.file)
    except (OSError, RecordingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    server = SSEServer(host=args.host, port=args.port)
    server.replay(recording, path=args.path or "*", pace=args.pace, times=None)
    try:
        url = server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:
        # The first stdout line is a contract, as for `serve`: scripts parse the URL.
        print(f"aiostreams replay listening on {url}", flush=True)
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    print(f"aiostreams replay stopped after {len(server.requests)} requests", file=sys.stderr)
    return EXIT_OK


# -- bench ------------------------------------------------------------------------


def run_bench(args: argparse.Namespace) -> int:
    """Run ``python -m benchmarks`` of the source checkout in the current directory."""
    if not (Path.cwd() / "benchmarks" / "__main__.py").is_file():
        print(
            "error: the benchmarks are not installed with the package; run `aiostreams bench` "
            f"from a checkout of the aiostreams repository (no benchmarks/ in {Path.cwd()})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    missing = _missing_extra("bench")
    if missing:
        print(
            f"error: aiostreams bench needs the bench extra (missing: {', '.join(missing)}); "
            "install it with: python3 -m pip install 'aiostreams[bench]'",
            file=sys.stderr,
        )
        return EXIT_ERROR
    forwarded = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    return subprocess.call([sys.executable, "-m", "benchmarks", *forwarded])


def _missing_extra(extra: str) -> list[str]:
    """The distributions of aiostreams' optional ``extra`` that are not installed
    (read from the installed package's own metadata; ``[]`` when it has none)."""
    from importlib import metadata

    try:
        requirements = metadata.requires("aiostreams") or []
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return []
    missing = []
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    for requirement in requirements:
        spec, _, env = requirement.partition(";")
        if not marker.search(env):
            continue
        name = re.split(r"[\s\[<>=!~;(]", spec.strip(), maxsplit=1)[0]
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


# -- the parser -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (and status 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _usage_error(command: str, message: str) -> int:
    print(
        f"aiostreams {command}: error: {message} (see aiostreams {command} --help)", file=sys.stderr
    )
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aiostreams",
        description=__doc__,
        epilog=(
            "examples:\n"
            "  aiostreams serve                       # the eventstreams API on :35456\n"
            "  aiostreams stream -X POST http://127.0.0.1:35456/eventstreams/rich\n"
            "  aiostreams <command> --help            # options of one command"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aiostreams {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(
        commands, "demo", run_demo,
        "start the eventstreams server in-process and print the typed events of all "
        "seven operations, streamed through the SDK",
        "  aiostreams demo\n"
        "  aiostreams demo --pace 0.1     # the reference service's 100 ms between writes",
    )  # fmt: skip
    demo.add_argument(
        "--pace", type=_non_negative, default=0.02,
        help="seconds between the server's writes (default: %(default)s)",
    )  # fmt: skip

    serve = _command(
        commands, "serve", run_serve,
        "serve the eventstreams API (and /load/ benchmark endpoints) until Ctrl-C",
        "  aiostreams serve\n"
        "  aiostreams serve --port 0 --pace 0      # free port, no delay between writes\n"
        "  aiostreams serve --api-key 'Token s3cret'\n\n"
        "The first line on stdout is 'aiostreams server listening on URL'.\n"
        "Operations: POST /eventstreams/{chat,chat-chunked,differentdataschemas,json,\n"
        "multiline,rich,text}; load: /load/{chat,rich,large,idle,resumable}?n=&chunk=&rate=",
    )  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=_port, default=35456, help="port; 0 picks a free one (default: %(default)s)"
    )
    serve.add_argument(
        "--pace", type=_non_negative, default=0.1,
        help="seconds between the writes of a reference stream (default: %(default)s)",
    )  # fmt: skip
    serve.add_argument(
        "--api-key", metavar="KEY",
        help="require this exact Authorization header on every request (default: none)",
    )  # fmt: skip
    serve.add_argument(
        "-q", "--quiet", action="store_true",
        help="do not log a line per request on stderr (logger aiostreams.server, INFO)",
    )  # fmt: skip

    stream = _command(
        commands, "stream", run_stream,
        "print the events of any Server-Sent Events endpoint as they arrive",
        "  aiostreams stream https://example.com/events\n"
        "  aiostreams stream -X POST http://127.0.0.1:35456/eventstreams/rich\n"
        "  aiostreams stream -d '{\"prompt\": \"hi\"}' http://127.0.0.1:35456/eventstreams/chat\n"
        "  aiostreams stream --json -H 'Authorization: Token KEY' URL | jq .data\n\n"
        "Each event is printed as '[EVENT id=ID retry=MS] DATA' (or one JSON object\n"
        "per line with --json); the event count goes to stderr at the end.\n"
        "exit status: 0 stream ended, 1 HTTP/connection/decoding error,\n"
        "2 usage error, 130 interrupted by Ctrl-C",
    )  # fmt: skip
    stream.add_argument(
        "url", metavar="URL", type=_url,
        help="the endpoint, http:// or https://, e.g. http://127.0.0.1:35456/...",
    )  # fmt: skip
    stream.add_argument(
        "-X", "--request", dest="method", type=_checked(check_method), metavar="METHOD",
        help="HTTP method (default: GET, or POST with -d)",
    )  # fmt: skip
    stream.add_argument(
        "-H", "--header", dest="headers", type=_header, action="append", default=[],
        metavar="'NAME: VALUE'", help="extra request header (repeatable)",
    )  # fmt: skip
    stream.add_argument(
        "-d", "--data", metavar="BODY",
        help="request body; @FILE reads a file, @- stdin (Content-Type defaults to JSON)",
    )  # fmt: skip
    stream.add_argument(
        "--json", action="store_true",
        help='print one JSON object per event: {"event", "data", "id", "retry"}',
    )  # fmt: skip
    stream.add_argument(
        "--last-event-id", metavar="ID", type=_last_event_id,
        help="send Last-Event-ID to resume after event ID",
    )  # fmt: skip
    stream.add_argument(
        "--stats", action="store_true",
        help="print the stream's statistics to stderr at the end (also on Ctrl-C): events, "
        "bytes, time to first byte/event, largest gap",
    )  # fmt: skip

    _add_record_replay(commands)

    bench = _command(
        commands, "bench", run_bench,
        "run the benchmarks (from a checkout of the repository) and print a table",
        "  aiostreams bench\n"
        "  aiostreams bench -- --help     # arguments after -- go to python -m benchmarks",
    )  # fmt: skip
    bench.add_argument(
        "bench_args", nargs=argparse.REMAINDER, metavar="ARGS",
        help="passed on to python -m benchmarks",
    )  # fmt: skip
    return parser


def _add_record_replay(commands: argparse._SubParsersAction[_Parser]) -> None:
    record = _command(
        commands, "record", run_record,
        "record a response (status, headers without secrets, every chunk with its "
        "time offset) to a file that `replay` and the sse_server fixture serve again",
        "  aiostreams record http://127.0.0.1:35456/eventstreams/rich -X POST --out rich.jsonl\n"
        "  aiostreams record URL --json '{\"model\": \"m\", \"stream\": true}' \\\n"
        "      -H 'Authorization: Bearer KEY' --out chat.jsonl\n\n"
        "The file is JSON Lines (docs/testing.md): a header line, one line per chunk,\n"
        "an end line. Authorization, cookies, API keys and user:password@ are removed.",
    )  # fmt: skip
    record.add_argument("url", metavar="URL", type=_url, help="the endpoint to record")
    record.add_argument("-o", "--out", required=True, metavar="FILE", help="the recording to write")
    record.add_argument(
        "-X", "--request", dest="method", type=_checked(check_method), metavar="METHOD",
        help="HTTP method (default: GET, or POST with a body)",
    )  # fmt: skip
    record.add_argument(
        "-H", "--header", dest="headers", type=_header, action="append", default=[],
        metavar="'NAME: VALUE'", help="extra request header (repeatable)",
    )  # fmt: skip
    body = record.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", metavar="BODY", help="request body; @FILE, @- stdin")
    body.add_argument(
        "--json", metavar="BODY", help="request body sent as application/json; @FILE, @- stdin"
    )

    replay = _command(
        commands, "replay", run_replay,
        "serve a recording to every request (any path) until Ctrl-C",
        "  aiostreams replay rich.jsonl --port 8000\n"
        "  aiostreams replay rich.jsonl --port 0 --pace 0   # free port, no pauses\n\n"
        "The first line on stdout is 'aiostreams replay listening on URL'.",
    )  # fmt: skip
    replay.add_argument("file", metavar="FILE", help="a file written by `aiostreams record`")
    replay.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    replay.add_argument(
        "--port", type=_port, default=35456, help="port; 0 picks a free one (default: %(default)s)"
    )
    replay.add_argument(
        "--pace", type=_non_negative, default=1.0,
        help="1 the recorded pace, 0 no pauses, 0.5 twice as fast (default: %(default)s)",
    )  # fmt: skip
    replay.add_argument(
        "--path", help="serve only at this path (default: any path answers the recording)"
    )


def _command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    run: Callable[[argparse.Namespace], int],
    summary: str,
    examples: str,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value
