"""The server in a child process, for benchmarks that must not share the client's loop."""

from __future__ import annotations

import queue
import subprocess
import sys
import tempfile
import threading
from types import TracebackType
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ServerProcess"]

#: The first line ``aiostreams serve`` prints; the URL follows it.
READY_PREFIX: Final = "aiostreams server listening on "


class ServerProcess:
    """Run ``python -m aiostreams serve`` in a child process (a sync context manager).

    Example::

        with ServerProcess(pace=0) as server:
            run_benchmark(f"{server.url}/load/chat?n=100000")

    Args:
        host, port, pace, api_key: the ``serve`` options (port 0: a free port).
        startup_timeout: seconds to wait for the server to print its URL.

    Attributes:
        url: the base URL, e.g. ``"http://127.0.0.1:40123"`` (set on ``__enter__``).

    ``__enter__`` raises :class:`RuntimeError` with the child's stderr if it does not
    start in time; ``__exit__`` terminates it (SIGTERM, then kill after 5 s).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pace: float = 0.0,
        api_key: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.args = [
            sys.executable, "-m", "aiostreams", "serve",
            "--host", host, "--port", str(port), "--pace", str(pace),
            "--quiet",  # no line per request: benchmarks open thousands
        ]  # fmt: skip
        if api_key is not None:
            self.args += ["--api-key", api_key]
        self._api_key = api_key
        self.startup_timeout = startup_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> Self:
        # stderr goes to a file, not a pipe nobody reads (a full pipe would block the child).
        self._stderr = tempfile.TemporaryFile("w+")
        self._process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        try:
            self.url = self._read_url(self._process)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _read_url(self, process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            line = ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(
                f"the server did not start within {self.startup_timeout} s "
                f"({self._shown_command()}); it printed {line!r}, "
                f"stderr: {self._hide(self._stderr_text())!r}"
            )
        return line[len(READY_PREFIX) :].strip()

    def _shown_command(self) -> str:
        """The command line, its API key replaced (a start failure must not show it)."""
        return " ".join("<redacted>" if self._is_key(i) else a for i, a in enumerate(self.args))

    def _is_key(self, index: int) -> bool:
        return index > 0 and self.args[index - 1] == "--api-key"

    def _hide(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "<redacted>")
        return text

    def __repr__(self) -> str:
        return f"<ServerProcess {self.url or 'not started'}>"

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
