"""The eventstreams API's models: ``shared`` (types), ``operations`` (one
EventSchema per operation) and ``errors``."""

from . import errors, operations, shared

__all__ = ["errors", "operations", "shared"]
