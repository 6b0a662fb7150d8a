"""``python -m nbsocket`` runs the ``nbsocket`` command."""

import sys

from .cli import main

__all__: list[str] = []


sys.exit(main())
