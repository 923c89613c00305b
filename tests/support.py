"""Helpers shared by the test modules (importable as ``support``: pytest's
``pythonpath`` puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

import signal

import aiohttp

__all__ = ["default_sigint", "pool_state"]


def default_sigint() -> None:
    """``preexec_fn`` of a child a test interrupts with SIGINT: Ctrl-C as a terminal
    delivers it, even when the test run was started with SIGINT ignored
    (``trap '' INT``), a disposition children inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pool_state(session: aiohttp.ClientSession) -> tuple[int, int]:
    """(connections in use, idle connections in the keep-alive pool) of ``session``.

    aiohttp (3.14) has no public view of its pool, so this is the one place the
    tests read its connector's private ``_acquired``/``_conns``; if they change,
    only this function needs to follow."""
    connector = session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    in_use = len(connector._acquired)
    idle = sum(len(connections) for connections in connector._conns.values())
    return in_use, idle
