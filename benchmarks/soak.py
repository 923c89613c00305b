"""Soak check of ``aiostreams.connect`` against a faulty server (not a timed benchmark).

``python -m benchmarks.soak [--cycles 1000] [--seed 11]``

One logical stream, served by a raw asyncio socket server on loopback, over
``--cycles`` connections.  Each connection sends 0-60 events, then ends with one
fault drawn at random:

==========================  ===================================================
fault                       what the server does after its events
==========================  ===================================================
reset-mid-event             writes half of the next event, then a TCP reset
reset-between-newlines      writes the next event up to its first newline, reset
reset-at-boundary           close-delimited body (no length, no chunking): reset
bad-chunk-size              chunk-size line ``zz``, then holds the socket open
bad-chunk-size-reset        chunk-size line ``zz``, then a reset
stall                       holds the socket open, silent
503-retry-after             (instead of events) 503 with ``Retry-After: 0``
restart-new-ids             a restarted server: ids start again at 1, new data
replay-copies               first replays up to 10 events already delivered
                            (same ids, same bytes), then new ones; then a reset
clean-eof                   ends the body cleanly (a GET is re-sent)
==========================  ===================================================

A compliant server otherwise: it resumes after ``Last-Event-ID``.  An event counts
as *sent* once all its bytes (blank line included) were written.  The client
records every event's sequence number (in its data): *delivered* (distinct),
*duplicated* (delivered more than once), *lost* (sent, never delivered).  Each
event is attributed to the fault of the connection that first sent it.  The
stream ends with an ``end`` event after the last cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

import aiostreams

FAULTS = (
    "reset-mid-event",
    "reset-between-newlines",
    "reset-at-boundary",
    "bad-chunk-size",
    "bad-chunk-size-reset",
    "stall",
    "503-retry-after",
    "restart-new-ids",
    "replay-copies",
    "clean-eof",
)
IDLE_TIMEOUT = 0.15  # the client's bound; stalls and a stalled parser cost this much

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Server:
    cycles: int
    rng: random.Random
    connections: int = 0
    next_seq: int = 1  # the next event never sent
    epoch_base: int = 0  # id = seq - epoch_base (a restart moves it)
    sent_by: dict[int, str] = field(default_factory=dict)  # seq -> fault of its first send
    faults: collections.Counter[str] = field(default_factory=collections.Counter)

    def event(self, seq: int) -> bytes:
        return b"id: %d\ndata: %d\n\n" % (seq - self.epoch_base, seq)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await self.respond(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def respond(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        last = None
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"last-event-id:"):
                last = int(line.split(b":", 1)[1])
        resume = self.epoch_base + last + 1 if last is not None else 1
        if self.connections > self.cycles:  # the end: everything left, then "end"
            body = b"".join(self.event(s) for s in range(resume, self.next_seq))
            self.record(resume, self.next_seq, "final")
            await self.write(writer, CHUNKED + _chunk(body + b"event: end\ndata: -\n\n"))
            writer.write(b"0\r\n\r\n")
            return
        fault = self.rng.choice(FAULTS)
        self.faults[fault] += 1
        if fault == "503-retry-after":
            await self.write(writer, BUSY)
            return
        count = self.rng.randint(1 if fault == "restart-new-ids" else 0, 60)
        if fault == "restart-new-ids":
            # A restarted server: its data survived, its id counter did not; ids
            # start over at 1 (the events themselves are new to the client).
            self.epoch_base = resume - 1
        prefix = b""
        if fault == "replay-copies" and last is not None:
            first = max(self.epoch_base + 1, resume - self.rng.randint(1, 10))
            prefix = b"".join(self.event(s) for s in range(first, resume))
        stop = resume + count
        body = prefix + b"".join(self.event(s) for s in range(resume, stop))
        head_bytes = CLOSE_DELIMITED if fault == "reset-at-boundary" else CHUNKED
        framed = body if fault == "reset-at-boundary" else _chunk(body) if body else b""
        await self.write(writer, head_bytes + framed)
        self.record(resume, stop, fault)
        nxt = self.event(stop)
        if fault == "reset-mid-event":
            await self.write(writer, _chunk(nxt[: len(nxt) // 2]))
            await _reset(writer)
        elif fault == "reset-between-newlines":
            await self.write(writer, _chunk(nxt[:-1]))
            await _reset(writer)
        elif fault in ("reset-at-boundary", "replay-copies"):
            await _reset(writer)
        elif fault in ("bad-chunk-size", "stall"):
            if fault == "bad-chunk-size":
                await self.write(writer, b"zz\r\n")
            await reader.read()  # silent until the client gives up on us and closes
        elif fault == "bad-chunk-size-reset":
            await self.write(writer, b"zz\r\n")
            await _reset(writer)
        elif fault in ("clean-eof", "restart-new-ids"):
            writer.write(b"0\r\n\r\n")

    def record(self, start: int, stop: int, fault: str) -> None:
        for seq in range(start, stop):
            self.sent_by.setdefault(seq, fault)
        self.next_seq = max(self.next_seq, stop)

    @staticmethod
    async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _reset(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.01)  # what was written leaves first
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


async def run(cycles: int, seed: int) -> dict[str, object]:
    """Run the soak; return the per-fault counts and totals."""
    server = Server(cycles, random.Random(seed))
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/stream"
    fds_before, tasks_before = _open_fds(), len(asyncio.all_tasks())
    delivered: list[int] = []
    reasons: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    source = aiostreams.connect(
        url,
        retry_ms=0,
        max_retry_ms=50,
        idle_timeout=IDLE_TIMEOUT,
        on_reconnect=lambda r: reasons.update([r.reason]),
        until=lambda e: e.event == "end",
    )
    async with source:
        async for event in source:
            if event.event != "end":
                delivered.append(int(event.data))  # noqa: PERF401 - "end" is skipped
    elapsed = time.monotonic() - started
    listener.close()
    await listener.wait_closed()
    await asyncio.sleep(0.05)  # let the server's handlers finish closing
    times = collections.Counter(delivered)
    rows: dict[str, dict[str, int]] = {}
    for fault in (*FAULTS, "final"):
        seqs = [s for s, f in server.sent_by.items() if f == fault]
        rows[fault] = {
            "cycles": server.faults[fault] if fault != "final" else 1,
            "sent": len(seqs),
            "delivered": sum(1 for s in seqs if times[s]),
            "duplicated": sum(times[s] - 1 for s in seqs if times[s] > 1),
            "lost": sum(1 for s in seqs if not times[s]),
        }
    return {
        "rows": rows,
        "connections": server.connections,
        "reconnects": source.reconnects,
        "replayed_skipped": source.replayed,
        "unexpected": sorted(set(times) - set(server.sent_by)),
        "in_order": delivered == sorted(delivered),
        "reasons": dict(reasons),
        "seconds": elapsed,
        "fds_leaked": _open_fds() - fds_before,
        "tasks_leaked": len(asyncio.all_tasks()) - tasks_before,
    }


def print_table(result: dict[str, object]) -> None:
    rows = result["rows"]
    assert isinstance(rows, dict)
    columns = ("cycles", "sent", "delivered", "duplicated", "lost")
    print(f"{'fault':<24}" + "".join(f"{c:>11}" for c in columns))
    totals = dict.fromkeys(columns, 0)
    for fault, row in rows.items():
        print(f"{fault:<24}" + "".join(f"{row[c]:>11}" for c in columns))
        for c in columns:
            totals[c] += row[c]
    print(f"{'total':<24}" + "".join(f"{totals[c]:>11}" for c in columns))
    print(
        f"connections {result['connections']}, reconnects {result['reconnects']} "
        f"{result['reasons']}, replayed copies skipped {result['replayed_skipped']}, "
        f"in order {result['in_order']}, unexpected {result['unexpected']}, "
        f"{result['seconds']:.1f} s, leaked fds {result['fds_leaked']} "
        f"tasks {result['tasks_leaked']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--cycles", type=int, default=1000, help="faulty connections (1000)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.cycles, args.seed))
    print(f"soak: {args.cycles} cycles, seed {args.seed}")
    print_table(result)
    rows = result["rows"]
    assert isinstance(rows, dict)
    lost = sum(row["lost"] for row in rows.values())
    duplicated = sum(row["duplicated"] for row in rows.values())
    ok = lost == 0 and duplicated == 0 and result["in_order"] and not result["unexpected"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
