"""The eventstreams SDK: a thin layer of declarations over the transport.

``_operations`` declares the seven operations (method, path, event schema,
request type); ``_sdk`` holds the configuration and the one call path.  The
transport (``aiostreams._request``, ``_stream``) knows nothing of these models.
"""

from ._operations import OPERATIONS, Operation
from ._sdk import (
    DEFAULT_SERVER_URL,
    SDK,
    ChatCall,
    ChatEvent,
    Eventstreams,
    RequestCall,
    StreamCall,
)

__all__ = [
    "DEFAULT_SERVER_URL",
    "OPERATIONS",
    "SDK",
    "ChatCall",
    "ChatEvent",
    "Eventstreams",
    "Operation",
    "RequestCall",
    "StreamCall",
]
