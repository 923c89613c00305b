"""``aiostreams demo``: the embedded server and the SDK, end to end, in one process."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .errors import AiostreamsError
from .models import shared
from .sdk import SDK
from .server import run_server

PROMPT = "Say hello"


async def demo(*, pace: float = 0.02, out: TextIO = sys.stdout) -> int:
    """Start the server on a free loopback port, run all seven operations through
    the SDK and print their typed events; returns the exit status."""
    started = time.perf_counter()
    counts: dict[str, int] = {}
    async with run_server(pace=pace) as url:
        print(f"embedded eventstreams server on {url} (pace {pace:g} s)\n", file=out)
        async with SDK(
            security=shared.Security(api_key_auth="Token demo"),
            global_header_param=True,
            global_query_param="demo",
            server_url=url,
        ) as sdk:
            ops = sdk.eventstreams
            calls: list[tuple[str, Any]] = [
                ("chat", lambda: ops.chat(request={"prompt": PROMPT})),
                ("chat_skip_sentinel", lambda: ops.chat_skip_sentinel(request={"prompt": PROMPT})),
                ("different_data_schemas", ops.different_data_schemas),
                ("json", ops.json),
                ("multiline", ops.multiline),
                ("rich", ops.rich),
                ("text", ops.text),
            ]
            for name, call in calls:
                print(f"{name}:", file=out)
                try:
                    async with await call() as stream:
                        counts[name] = 0
                        async for event in stream:
                            counts[name] += 1
                            print(f"  {event!r}", file=out, flush=True)
                except AiostreamsError as exc:
                    print(f"demo failed in {name}: {exc}", file=sys.stderr)
                    return 1
                if counts[name] == 0:
                    print(f"demo failed: {name} yielded no events", file=sys.stderr)
                    return 1
            answer = await ops.chat(request={"prompt": PROMPT, "stream": False})
            print(f'chat with "stream": false answers JSON:\n  {answer!r}', file=out)
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    print(
        f"\n{total} typed events from {len(counts)} operations in {elapsed:.2f} s: "
        + ", ".join(f"{name} {count}" for name, count in counts.items()),
        file=out,
    )
    return 0
