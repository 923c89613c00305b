"""Developer tasks: ``nox -s tests``, ``nox -s lint``, ``nox -s package``, ``nox -s bench``,
``nox -s docs``, ``nox -s soak``."""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
# ``tests`` runs on every supported Python the machine has; a missing one is
# skipped, not failed (CI decides which ones must exist: see .ci/run).
nox.options.error_on_missing_interpreters = False

#: The declared range (pyproject's requires-python and classifiers).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
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
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel into dist/ and check their metadata with twine."""
    session.install("build>=1.2", "twine>=5")
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", "dist")
    session.run("twine", "check", "--strict", *sorted(glob.glob(os.path.join("dist", "*"))))


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
