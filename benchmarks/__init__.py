"""aiostreams benchmark suite: ``python -m benchmarks`` (``nox -s bench``).

Each suite is one module defining ``SUITE`` (a :class:`benchmarks._harness.Suite`);
adding a suite is adding its module name to ``SUITE_MODULES``.
"""

SUITE_MODULES: tuple[str, ...] = (
    "benchmarks.bench_framing",
    "benchmarks.bench_typed",
    "benchmarks.bench_scaling",
    "benchmarks.bench_fanin",
    "benchmarks.bench_e2e",
    "benchmarks.bench_distributed",  # no cases unless Ray is installed
)
