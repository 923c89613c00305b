"""The ``aiostreams`` command (placeholder until the embedded server lands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import SSEDecoder, encode_event

_SAMPLE = b"".join(
    encode_event(f'{{"content": "{word}"}}') for word in ("Hello", " ", "world", "!")
) + encode_event("[DONE]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiostreams", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="decode a sample stream fed one byte at a time")
    parser.parse_args(argv)
    decoder = SSEDecoder()
    events = [e for i in range(len(_SAMPLE)) for e in decoder.feed(_SAMPLE[i : i + 1])]
    for event in events:
        print(event)
    print(f"{len(events)} events", file=sys.stderr)
    return 0
