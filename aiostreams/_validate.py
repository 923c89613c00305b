"""Checks of user input shared by the SDK, ``connect()`` and the CLI.

Each raises ``TypeError``/``ValueError`` with a message that names the argument,
says what was expected and never echoes a value that may be secret (a header
value, a URL's credentials or query string).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "check_header",
    "check_header_value",
    "check_method",
    "check_port",
    "check_timeout_ms",
]

#: RFC 9110 §5.6.2 ``token``: what a method or a header name may contain.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Bytes that would end a header line (request smuggling) or are never valid.
_LINE_BREAKS: Final = re.compile(r"[\r\n\x00]")


def check_timeout_ms(name: str, value: object) -> None:
    """``value`` is ``None`` or a positive number of milliseconds (never 0: it is not "off")."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a positive number of milliseconds or None, got {type(value).__name__}"
        )
    if not value > 0:  # also NaN
        raise ValueError(
            f"{name} must be a positive number of milliseconds (or None for the session's "
            f"timeouts), got {value}"
        )


def check_method(method: str) -> str:
    """An HTTP method: one token (``GET``, ``POST``, ...), returned upper-cased."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"HTTP method must be one word such as GET or POST, got {method!r}")
    return method.upper()


def check_header(name: str, value: str) -> None:
    """A header name is a token; its value has no line break or NUL (the value is not shown)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}: use letters, digits and -")
    check_header_value(name, value)


def check_header_value(name: str, value: str) -> None:
    if _LINE_BREAKS.search(value):
        raise ValueError(f"the {name} header value contains a line break or NUL")


def check_port(port: int) -> int:
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535 (0 picks a free port), got {port}")
    return port
