"""A loopback server, in its own process, that streams the benchmark corpora.

``GET /corpus/<name>`` answers ``text/event-stream`` with the bytes of one corpus
(see ``CORPORA``) in ``chunk``-byte writes (16 KiB by default), as fast as TCP
allows.  ``POST /eventstreams/chat-chunked`` answers the chat corpus the SDK's
``chat_skip_sentinel`` operation reads, so the SDK can be measured unchanged
(pointed here with ``server_url``).  Bodies are built once and cached.

Run: ``python -m benchmarks._corpus_server`` prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from collections.abc import Callable
from typing import Final

from aiohttp import web

from . import _corpora

#: name -> the corpus of ``n`` events served under ``/corpus/<name>?n=<n>``.
CORPORA: Final[dict[str, Callable[[int], _corpora.Corpus]]] = {
    "openai": lambda n: _corpora.openai_chat(n, 500),
    "openai-keepalive-20": lambda n: _corpora.openai_chat(n, 20),
    "anthropic": lambda n: _corpora.anthropic_messages(n, 20),
    "chat-heartbeat-1000": lambda n: _corpora.heartbeat_chat(n, 1000),
    "chat": lambda n: _corpora.chat_tokens(n, sentinel=True),
}


@functools.cache
def body(name: str, n: int) -> bytes:
    return b"".join(CORPORA[name](n).chunks)


async def _write(request: web.Request, data: bytes, chunk: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        await response.write(view[offset : offset + chunk])
    await response.write_eof()
    return response


async def corpus(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in CORPORA:
        raise web.HTTPNotFound(text=f"unknown corpus {name!r}: one of {', '.join(CORPORA)}")
    n = int(request.query.get("n", "10000"))
    return await _write(request, body(name, n), int(request.query.get("chunk", "16384")))


async def sdk_chat(request: web.Request) -> web.StreamResponse:
    await request.read()
    n = int(request.headers.get("X-Events", request.app["chat_events"]))
    return await _write(request, body("chat", n), 16384)


def app(chat_events: int) -> web.Application:
    application = web.Application()
    application["chat_events"] = str(chat_events)
    application.router.add_get("/corpus/{name}", corpus)
    application.router.add_post("/eventstreams/chat-chunked", sdk_chat)
    return application


async def _serve(chat_events: int) -> None:
    runner = web.AppRunner(app(chat_events), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


class CorpusServer:
    """The server process (a context manager); ``url`` once entered."""

    def __init__(self, chat_events: int = 10_000) -> None:
        self.args = [sys.executable, "-m", "benchmarks._corpus_server", str(chat_events)]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> CorpusServer:  # noqa: PYI034 - not subclassed
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"corpus server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
