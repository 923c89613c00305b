"""The plugin as a user gets it: found through the ``pytest11`` entry point once the
package is installed, and nothing of one test's server left for the next."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

USER_TESTS = """
import socket
import threading

import pytest

PORTS = []


@pytest.mark.asyncio
async def test_one(sse_server):
    sse_server.on().events("a").stall()  # a connection still open at teardown
    reader = socket.create_connection(("127.0.0.1", int(sse_server.url.rsplit(":", 1)[1])))
    reader.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    assert reader.recv(1000).startswith(b"HTTP/1.1 200")
    PORTS.append((sse_server.url, reader))


def test_two(sse_server):
    (url, reader), = PORTS
    assert url != sse_server.url and sse_server.requests == []
    reader.settimeout(10)
    while reader.recv(1000):  # the stalled stream was closed when test_one ended
        pass
    reader.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    servers = [t for t in threading.enumerate() if t.name == "aiostreams-sse-server"]
    assert len(servers) == 1  # this test's own
"""


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_entry_point_names_the_plugin() -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.value.startswith("aiostreams")]
    assert (plugin.name, plugin.value) == ("aiostreams", "aiostreams.testing.pytest_plugin")


def test_pytest_fixtures_lists_sse_server(tmp_path: Path) -> None:
    listed = run_pytest(tmp_path, "--fixtures")
    assert listed.returncode == 0, listed.stderr
    assert "sse_server -- " in listed.stdout
    assert "aiostreams/testing/pytest_plugin.py" in listed.stdout
    disabled = run_pytest(tmp_path, "--fixtures", "-p", "no:aiostreams")
    assert "sse_server" not in disabled.stdout


def test_nothing_leaks_into_the_next_test(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    result = run_pytest(tmp_path, "-q", "test_user.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_loading_the_plugin_imports_no_aiohttp() -> None:
    """pytest loads the plugin in every run of the environment: it must stay light."""
    code = (
        "import sys\n"
        "import aiostreams.testing.pytest_plugin\n"
        "assert 'aiohttp' not in sys.modules, 'eager import'\n"
        "from aiostreams.testing import SSEServer, record\n"
        "assert 'aiohttp' in sys.modules\n"
        "import aiostreams.testing as t\n"
        "assert sorted(t.__all__) == t.__all__ and all(getattr(t, n) for n in t.__all__)\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
