"""Scaling curves (issue 8 §2): framing cost vs event size and vs chunk size.

Linear cost shows as flat MB/s: the same bytes cost the same time whether they
arrive as many small events or few big ones, in big chunks or tiny ones.
aiostreams is drawn against httpx-sse (the most used peer) on the same chunks.

* event size: ``data:`` of 16 B, 256 B, 1 KiB, 4 KiB, 64 KiB, 1 MiB,
  about 8 MiB of stream per point, 16 KiB chunks;
* chunk size: 1 B … 64 KiB (powers of 4) over 256 B events, 4 MiB per point,
  less for tiny chunks (at most 64k chunks per point) so the run stays short.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _peers
from ._corpora import Corpus, sized_events
from ._harness import AIOSTREAMS, Case, Measurement, Runner, Suite, plot_curves

LIBRARIES: dict[str, Callable[[], _peers.Framer]] = {
    AIOSTREAMS: _peers.aiostreams_framing,
    "httpx-sse": _peers.httpx_sse_framing,
}

EVENT_SIZES = (16, 256, 1 << 10, 4 << 10, 64 << 10, 1 << 20)
CHUNK_SIZES = tuple(4**k for k in range(9))  # 1 B .. 64 KiB
CHUNK_AXIS_DATA_SIZE = 256
MAX_CHUNKS = 1 << 16


def points(quick: bool) -> list[tuple[str, str, Corpus]]:
    """(axis, x label, corpus) for every point of both curves."""
    event_total = (256 << 10) if quick else (8 << 20)
    chunk_total = (64 << 10) if quick else (4 << 20)
    max_chunks = MAX_CHUNKS // (16 if quick else 1)
    sizes = EVENT_SIZES[:-1] if quick else EVENT_SIZES
    out = [("event_size", str(s), sized_events(s, max(event_total, s), 16384)) for s in sizes]
    for chunk in CHUNK_SIZES:
        total = min(chunk_total, chunk * max_chunks)
        out.append(("chunk_size", str(chunk), sized_events(CHUNK_AXIS_DATA_SIZE, total, chunk)))
    return out


def build(quick: bool) -> list[Case]:
    cases = []
    for axis, x, corpus in points(quick):
        for lib, factory in LIBRARIES.items():
            cases.append(_case(axis, x, corpus, lib, factory))
    return cases


def _case(
    axis: str, x: str, corpus: Corpus, library: str, factory: Callable[[], _peers.Framer]
) -> Case:
    chunks = corpus.chunks

    def make() -> Runner:
        framer = factory()
        return lambda: framer(chunks)

    return Case(
        case=f"{axis.replace('_', '-')}/{corpus.name}",
        library=library,
        make=make,
        events=corpus.events,
        nbytes=corpus.nbytes,
        last=corpus.last_data,
        params={"axis": axis, axis: float(x)},
    )


def _axis(rows: list[Measurement], axis: str) -> list[Measurement]:
    return [m for m in rows if m.params.get("axis") == axis]


def _mb_per_s(m: Measurement) -> float:
    return m.mb_per_s


def plot_event_rate(ax: Any, rows: list[Measurement]) -> None:
    ax.set_title("Scaling: events/s vs event size", fontsize=10)
    plot_curves(ax, _axis(rows, "event_size"), x="event_size", xlabel="event data size (bytes)")


def plot_event_bytes(ax: Any, rows: list[Measurement]) -> None:
    ax.set_title("Scaling: MB/s vs event size", fontsize=10)
    plot_curves(
        ax,
        _axis(rows, "event_size"),
        x="event_size",
        y=_mb_per_s,
        ylabel="MB/s (flat = linear cost)",
        xlabel="event data size (bytes)",
    )


def plot_chunk_bytes(ax: Any, rows: list[Measurement]) -> None:
    ax.set_title("Scaling: MB/s vs chunk size", fontsize=10)
    plot_curves(
        ax,
        _axis(rows, "chunk_size"),
        x="chunk_size",
        y=_mb_per_s,
        ylabel="MB/s",
        xlabel=f"chunk size (bytes), {CHUNK_AXIS_DATA_SIZE} B events",
    )


SUITE = Suite(
    name="scaling",
    title="Scaling: framing throughput vs event size and chunk size",
    build=build,
    description=(
        "Event-size points: ~8 MiB of `data:` events per point in 16 KiB chunks. "
        f"Chunk-size points: {CHUNK_AXIS_DATA_SIZE} B events, 4 MiB per point "
        f"(at most {MAX_CHUNKS} chunks, so fewer bytes below 64 B chunks)."
    ),
    plots=(plot_event_rate, plot_event_bytes, plot_chunk_bytes),
)
