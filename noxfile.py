"""Developer tasks: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s docs``,
``nox -s soak``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pytest exits non-zero when no test ran, so zero tests fail).

    The bench extra is installed too: a smoke test runs the benchmark harness
    against the peers in quick mode (no speed assertions)."""
    session.install("-e", ".[test,bench]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "aiostreams", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "aiostreams", "tests", "benchmarks", "noxfile.py")
    session.run("mypy", "--strict", "aiostreams")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers; writes benchmarks/results/*.json, .md, .png.

    The ray extra brings the ``distributed`` suite (one process vs Ray workers);
    without Ray that suite has no cases."""
    session.install("-e", ".[bench,ray]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs site with --strict (any warning fails)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session
def soak(session: nox.Session) -> None:
    """The soak check: 1,000 faulty connections, 0 lost (``-- --cycles N`` for more)."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks.soak", *session.posargs)
