"""Loggers and the redaction every log line, span and stats repr goes through.

Logger names (all children of ``"aiostreams"``, so one ``getLogger("aiostreams")``
configures them all):

* ``aiostreams.stream``: a stream's life: response, timeouts, limits, close;
* ``aiostreams.connect``: ``connect()``/``EventSource``: reconnects and failures;
* ``aiostreams.request``: sending a request and its retries;
* ``aiostreams.server``: the embedded server's access log (``aiostreams serve``).

Levels a service can leave on: INFO for reconnects, retries and failures, DEBUG
for the rest.  Nothing is logged per event or per read; every call is behind
``isEnabledFor`` or uses %-style arguments, so a disabled level formats nothing.

No URL is logged as given: :func:`redact_url` drops ``user:password@``, the query
string and the fragment (a token often travels in the query); :func:`redact_text`
does the same to every URL inside a message (an error's text).
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["connect_log", "redact_text", "redact_url", "request_log", "server_log", "stream_log"]

root_log: Final = logging.getLogger("aiostreams")
stream_log: Final = logging.getLogger("aiostreams.stream")
connect_log: Final = logging.getLogger("aiostreams.connect")
request_log: Final = logging.getLogger("aiostreams.request")
server_log: Final = logging.getLogger("aiostreams.server")

#: A URL inside free text: scheme, then anything up to whitespace or a quote.
_URL_IN_TEXT: Final = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*")


def redact_url(url: str) -> str:
    """``url`` without ``user:password@``, query string or fragment.

    Plain string work (never raises, even on a URL no parser accepts); an ``@`` in
    the path (``/users/@me``) is not taken for credentials."""
    if "@" not in url and "?" not in url and "#" not in url:
        return url  # nothing to hide: the same string (one per stream is kept)
    url = url.partition("?")[0].partition("#")[0]
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def describe_error(error: BaseException) -> str:
    """``Type: message`` of an error, redacted, on one line (for a log line or span)."""
    message = " ".join(str(error).split())
    name = type(error).__name__
    return redact_text(f"{name}: {message}" if message else name)
