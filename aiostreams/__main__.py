"""``python -m aiostreams``: the same as the ``aiostreams`` command."""

from .cli import main

raise SystemExit(main())
