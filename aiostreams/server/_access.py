"""One INFO line per request on ``logging.getLogger("aiostreams.server")``.

Written when the response is finished (for a stream: when it ends), with the time
it took.  The path is logged without its query string, which may carry a key.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

__all__ = ["AccessLogger"]


class AccessLogger(AbstractAccessLogger):
    """``127.0.0.1 POST /eventstreams/chat 200 text/event-stream 1234 B 0.412 s``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %s %d B %.3f s",
            request.remote or "-",
            request.method,
            request.path,
            response.status,
            response.content_type,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
