"""The eventstreams API served by aiohttp.web: the reference operations and load endpoints.

``create_app()`` builds the application, ``run_server()`` serves it in the running
event loop (tests), ``ServerProcess`` in a child process (benchmarks), and
``aiostreams serve`` from the command line.
"""

from ._app import PACE_KEY, REQUESTS_KEY, RequestRecord, create_app
from ._process import ServerProcess
from ._runner import DEFAULT_PORT, run_server, serve

__all__ = [
    "DEFAULT_PORT",
    "PACE_KEY",
    "REQUESTS_KEY",
    "RequestRecord",
    "ServerProcess",
    "create_app",
    "run_server",
    "serve",
]
