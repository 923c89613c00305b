"""The benchmark runner: cases in, timed measurements out, as JSON, markdown and PNG.

A suite is a module with a ``SUITE = Suite(...)`` attribute, listed in
``benchmarks.SUITE_MODULES``.  ``Suite.build(quick)`` returns its :class:`Case`
list; each case says which library decodes which corpus, how to make a runner
(untimed set-up) and what a correct answer is.  The harness times the runner
``repeats`` times (``gc.collect()`` before each, ``time.perf_counter``), checks
every answer, and records a :class:`Measurement` — raw per-repeat seconds, not
just a summary, so results stay data.

Ratios are computed pair by pair: for each suite and case, the median time of
each peer over the median time of aiostreams on the same bytes in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import platform
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "AIOSTREAMS",
    "Case",
    "Measurement",
    "Outcome",
    "Runner",
    "Suite",
    "main",
    "plot_bars",
    "plot_curves",
    "run_cases",
]

AIOSTREAMS = "aiostreams"

#: Distributions whose versions are recorded with the results.
LIBRARIES = (
    "aiostreams",
    "httpx-sse",
    "httpx2",
    "openai",
    "sseclient-py",
    "aiohttp-sse-client2",
    "aiohttp",
    "msgspec",
    "pydantic",
)


@dataclass
class Outcome:
    """What one run of a case produced: checked against the case's expectation."""

    events: int
    last: str | None = None  # the last event's data (or decoded content)
    extra: dict[str, float] = field(default_factory=dict)  # e.g. peak RSS for fan-in


#: A zero-argument callable that does the timed work once.  If it has a
#: ``close()`` method the harness calls it after the last repeat.
Runner = Callable[[], Outcome]


@dataclass
class Case:
    """One library on one corpus (or one point of a curve)."""

    case: str
    library: str
    make: Callable[[], Runner]  # untimed set-up; each call of the runner is one repeat
    events: int  # the event count a correct run produces
    nbytes: int  # bytes fed per run (for MB/s)
    last: str | None = None  # expected Outcome.last, if checked
    note: str = ""
    params: dict[str, float | str] = field(default_factory=dict)  # curve coordinates
    time_limit: float | None = None  # seconds for one repeat; None: the run's default


@dataclass
class Measurement:
    suite: str
    case: str
    library: str
    events: int
    bytes: int
    seconds: list[float]
    note: str = ""
    error: str | None = None  # a wrong answer, an exception, or a time-out: no figures
    timed_out_after: float | None = None
    params: dict[str, float | str] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def events_per_s(self) -> float:
        return self.events / self.median

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.median / 1e6

    def summary(self) -> dict[str, Any]:
        if not self.ok:
            return {}
        lo, hi = min(self.seconds), max(self.seconds)
        return {
            "median_s": self.median,
            "min_s": lo,
            "max_s": hi,
            "events_per_s": self.events_per_s,
            "events_per_s_range": [self.events / hi, self.events / lo],
            "mb_per_s": self.mb_per_s,
            "mb_per_s_range": [self.bytes / hi / 1e6, self.bytes / lo / 1e6],
            "repeats": len(self.seconds),
        }


PlotFn = Callable[[Any, list[Measurement]], None]  # (matplotlib Axes, this suite's rows)


@dataclass
class Suite:
    name: str
    title: str
    build: Callable[[bool], list[Case]]  # quick -> cases
    description: str = ""
    notes: Sequence[str] = ()  # shown under the suite's table
    #: One function per plot panel; default: one grouped bar chart of events/s.
    plots: Sequence[PlotFn] | None = None


# -- timing -------------------------------------------------------------------------


class MeasurementTimeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt pure-Python code after ``seconds`` (SIGALRM, main thread only).

    Any timer already armed (e.g. pytest-timeout's) is restored afterwards with
    the time it had left.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise MeasurementTimeout

    start = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            left = max(old_delay - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _check(case: Case, out: Outcome) -> str | None:
    if out.events != case.events:
        return f"wrong answer: {out.events} events, expected {case.events}"
    if case.last is not None and out.last != case.last:
        got = "None" if out.last is None else f"{len(out.last)} chars {out.last[:40]!r}"
        return f"wrong answer: last event data {got}, expected {len(case.last)} chars"
    return None


def _check_or_raise(case: Case, out: Outcome) -> None:
    error = _check(case, out)
    if error:
        raise AssertionError(error)


def measure(suite: str, case: Case, repeats: int, time_limit: float, budget: float) -> Measurement:
    """Time ``case`` up to ``repeats`` times; stop early (at least one repeat) once the
    repeats so far took ``budget`` seconds, so a slow peer cannot blow the run's time."""
    m = Measurement(
        suite, case.case, case.library, case.events, case.nbytes, [], case.note,
        params=dict(case.params),
    )  # fmt: skip
    limit = case.time_limit or time_limit
    runner: Runner | None = None
    try:
        runner = case.make()
        if repeats == 1:  # quick mode: one untimed run first, so imports and first-use
            _check_or_raise(case, runner())  # costs are not the only figure
        gc.collect()
        gc.freeze()  # what make() imported or built lives on: keep collections off it
        for _ in range(repeats):
            gc.collect()
            t0 = time.perf_counter()
            try:
                with _time_limit(limit):
                    out = runner()
            except MeasurementTimeout:
                m.timed_out_after = limit
                m.error = f"timed out after {limit:g} s"
                m.seconds.clear()
                break
            m.seconds.append(time.perf_counter() - t0)
            m.error = _check(case, out)
            if m.error:
                m.seconds.clear()
                break
            m.extra.update(out.extra)
            if sum(m.seconds) >= budget:
                break
    except Exception as exc:  # noqa: BLE001 - a peer that cannot decode the corpus is a finding
        m.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        m.seconds.clear()
    finally:
        close = getattr(runner, "close", None)
        if callable(close):
            close()
    return m


def run_cases(
    suites: Sequence[Suite],
    *,
    quick: bool,
    repeats: int,
    time_limit: float,
    budget: float,
    progress: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> list[Measurement]:
    planned = [(s, c) for s in suites for c in s.build(quick)]
    # Imported modules and corpora live for the whole run: freezing them keeps the
    # per-repeat gc.collect() (and the collections during timing) from rescanning them.
    gc.collect()
    gc.freeze()
    results: list[Measurement] = []
    for i, (suite, case) in enumerate(planned, 1):
        label = f"{_bar(i, len(planned))} {suite.name}/{case.case}/{case.library}"
        t0 = time.perf_counter()
        m = measure(suite.name, case, repeats, time_limit, budget)
        took = time.perf_counter() - t0
        if m.ok:
            status = f"{_fmt_rate(m.events_per_s)} ev/s, {m.mb_per_s:.1f} MB/s"
        else:
            status = f"ERROR {m.error}"
        progress(f"{label} ... {status} ({took:.1f} s)")
        results.append(m)
    gc.unfreeze()
    return results


def _bar(done: int, total: int, width: int = 20) -> str:
    """A progress bar for the stderr lines: ``[#######-------------]  7/20``."""
    filled = max(1, round(width * done / total)) if done else 0
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:>{len(str(total))}}/{total}"


# -- machine ------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {dist: _version(dist) for dist in LIBRARIES}
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# -- reporting ----------------------------------------------------------------------


def ratios(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """aiostreams vs each peer, same suite and case: peer median time / aiostreams
    median time (= ratio of events/s).  A peer that timed out gives a lower bound."""
    out: list[dict[str, Any]] = []
    ours = {(m.suite, m.case): m for m in results if m.library == AIOSTREAMS and m.ok}
    for m in results:
        mine = ours.get((m.suite, m.case))
        if m.library == AIOSTREAMS or mine is None:
            continue
        if m.ok:
            out.append(_ratio_row(m, m.median / mine.median, exact=True))
        elif m.timed_out_after:
            out.append(_ratio_row(m, m.timed_out_after / mine.median, exact=False))
    return out


def _ratio_row(m: Measurement, ratio: float, *, exact: bool) -> dict[str, Any]:
    return {"suite": m.suite, "case": m.case, "peer": m.library, "ratio": ratio, "exact": exact}


def _fmt_rate(x: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _fmt_ratio(r: dict[str, Any] | None) -> str:
    if r is None:
        return ""
    if not r["exact"]:
        return f"> {r['ratio']:.1f}x"
    text = f"{r['ratio']:.2f}x"
    return f"**{text}**" if r["ratio"] < 1 else text  # below 1: shown, and shown plainly


def to_markdown(
    results: Sequence[Measurement], suites: Sequence[Suite], machine: dict[str, Any], quick: bool
) -> str:
    rat = {(r["suite"], r["case"], r["peer"]): r for r in ratios(results)}
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        "# aiostreams benchmarks",
        "",
        (
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}, "
            f"{machine['python']}.  "
        ),
        f"Versions: {versions}.  ",
        "Figures: median of the repeats, range = slowest..fastest repeat; "
        "ratio = aiostreams events/s / peer events/s on the same bytes in the same run."
        + (
            "  **Quick mode: small corpora (each case name and row states its event "
            "count), one repeat; not representative.**"
            if quick
            else ""
        ),
    ]
    for suite in suites:
        rows = [m for m in results if m.suite == suite.name]
        if not rows:
            continue
        lines += ["", f"## {suite.title}", ""]
        if suite.description:
            lines += [suite.description, ""]
        lines += [
            (
                "| case | library | events/s (median) | range | MB/s | ratio aiostreams/peer "
                "| events | note |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for m in rows:
            note = m.note
            if not m.ok:
                err = m.error or "no repeat completed"
                note = f"**{err}**" + (f"; {note}" if note else "")
                lines.append(f"| {m.case} | {m.library} | — | — | — | "
                             f"{_fmt_ratio(rat.get((m.suite, m.case, m.library)))} | "
                             f"{m.events:,} | {note} |")  # fmt: skip
                continue
            s = m.summary()
            lo, hi = s["events_per_s_range"]
            ratio = (
                "" if m.library == AIOSTREAMS else _fmt_ratio(rat.get((m.suite, m.case, m.library)))
            )
            lines.append(
                f"| {m.case} | {m.library} | {_fmt_rate(m.events_per_s)} | "
                f"{_fmt_rate(lo)}–{_fmt_rate(hi)} | {m.mb_per_s:.1f} | {ratio} | "
                f"{m.events:,} | {note} |"
            )
        best = _vs_fastest_peer(rows)
        if best:
            lines += ["", *best]
        if suite.notes:
            lines += ["", *(f"- {n}" for n in suite.notes)]
    return "\n".join(lines) + "\n"


def is_peer(library: str) -> bool:
    """A library a user would pick instead; not aiostreams' own variants (e.g.
    "aiostreams (batches)") nor a no-parsing ceiling (e.g. "aiohttp raw read (ceiling)")."""
    return not library.startswith(AIOSTREAMS) and "(ceiling)" not in library


def _vs_fastest_peer(rows: Sequence[Measurement]) -> list[str]:
    out = []
    for case in dict.fromkeys(m.case for m in rows):
        ours = [m for m in rows if m.case == case and m.library == AIOSTREAMS and m.ok]
        peers = [m for m in rows if m.case == case and is_peer(m.library) and m.ok]
        if ours and peers:
            fastest = min(peers, key=lambda m: m.median)
            ratio = fastest.median / ours[0].median
            shown = f"**{ratio:.2f}x**" if ratio < 1 else f"{ratio:.2f}x"
            out.append(f"- {case}: aiostreams is {shown} the fastest peer ({fastest.library})")
    return out


def to_json(
    results: Sequence[Measurement], machine: dict[str, Any], argv: dict[str, Any]
) -> dict[str, Any]:
    return {
        "machine": machine,
        "run": argv,
        "measurements": [{**asdict(m), **m.summary()} for m in results],
        "ratios": ratios(results),
    }


# -- plotting -----------------------------------------------------------------------


def plot_bars(ax: Any, rows: list[Measurement]) -> None:
    """Grouped bars: events/s (log scale) per library for each case, with the range."""
    cases = list(dict.fromkeys(m.case for m in rows))
    libs = list(dict.fromkeys(m.library for m in rows))
    width = 0.8 / max(len(libs), 1)
    for j, lib in enumerate(libs):
        xs: list[float] = []
        ys: list[float] = []
        errs: list[list[float]] = [[], []]
        for i, case in enumerate(cases):
            m = next((m for m in rows if m.case == case and m.library == lib and m.ok), None)
            if m is None:
                continue
            lo, hi = m.summary()["events_per_s_range"]
            xs.append(i + (j - (len(libs) - 1) / 2) * width)
            ys.append(m.events_per_s)
            errs[0].append(m.events_per_s - lo)
            errs[1].append(hi - m.events_per_s)
        ax.bar(xs, ys, width, yerr=errs, label=lib, capsize=2)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(cases, rotation=15, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("events/s (median)")
    ax.legend(fontsize=7)


def plot_curves(
    ax: Any,
    rows: list[Measurement],
    *,
    x: str,
    y: Callable[[Measurement], float] = lambda m: m.events_per_s,
    ylabel: str = "events/s",
    xlabel: str | None = None,
    logx: bool = True,
    logy: bool = True,
) -> None:
    """One line per library through the rows having ``params[x]`` (e.g. the scaling
    curves, or fan-in: x="streams", y=aggregate events/s or memory)."""
    for lib in dict.fromkeys(m.library for m in rows):
        pts = sorted(
            (float(m.params[x]), y(m)) for m in rows if m.library == lib and m.ok and x in m.params
        )
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=lib)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def write_plot(results: Sequence[Measurement], suites: Sequence[Suite], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, PlotFn, list[Measurement]]] = []
    for suite in suites:
        rows = [m for m in results if m.suite == suite.name]
        if not rows:
            continue
        fns = suite.plots if suite.plots is not None else [plot_bars]
        for k, fn in enumerate(fns):
            title = suite.title if len(fns) == 1 else f"{suite.title} ({k + 1}/{len(fns)})"
            panels.append((title, fn, rows))
    if not panels:
        return
    cols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(7 * cols, 4.2 * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (title, fn, rows) in zip(flat, panels, strict=False):
        ax.set_title(title, fontsize=10)  # a panel function may set a more precise one
        fn(ax, rows)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- CLI ----------------------------------------------------------------------------


def load_suites(names: Sequence[str] | None = None) -> list[Suite]:
    from . import SUITE_MODULES

    suites = [importlib.import_module(mod).SUITE for mod in SUITE_MODULES]
    if not names:
        return suites
    by_name = {s.name: s for s in suites}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    return [by_name[n] for n in names]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="aiostreams vs its peers on the same bytes; writes results.json/.md/.png.",
    )
    p.add_argument("--quick", action="store_true", help="small corpora, 1 repeat (smoke run)")
    p.add_argument("--only", default="", help="comma-separated suite names (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per measurement (5)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument(
        "--time-limit", type=float, default=None,
        help="seconds one repeat may take before it is cut off and reported as timed out",
    )  # fmt: skip
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    suites = load_suites(names)
    repeats = args.repeats or (1 if args.quick else 5)
    if repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    time_limit = args.time_limit or (5.0 if args.quick else 20.0)
    budget = 2.0 if args.quick else 8.0  # stop repeating a slow measurement after this
    started = time.perf_counter()
    results = run_cases(
        suites, quick=args.quick, repeats=repeats, time_limit=time_limit, budget=budget
    )
    machine = machine_info()
    run = {
        "argv": list(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "repeats": repeats,
        "time_limit_s": time_limit,
        "wall_s": round(time.perf_counter() - started, 1),
        "suites": [s.name for s in suites],
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(to_json(results, machine, run), indent=1) + "\n")
    md = to_markdown(results, suites, machine, args.quick)
    (out / "results.md").write_text(md)
    write_plot(results, suites, out / "results.png")
    print(md)
    print(
        f"wrote {out}/results.json, results.md, results.png in {run['wall_s']} s", file=sys.stderr
    )
    return 0
