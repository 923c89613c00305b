"""Errors of the eventstreams API: the JSON error body and the SDK's exceptions."""

from __future__ import annotations

import msgspec

from ..errors import ResponseValidationError, SDKError, StreamError

__all__ = ["ErrorMessage", "ResponseValidationError", "SDKError", "StreamError"]


class ErrorMessage(msgspec.Struct, kw_only=True):
    """A JSON error body, e.g. the text operation's 418 ``{"message": "I'm a teapot"}``."""

    message: str
