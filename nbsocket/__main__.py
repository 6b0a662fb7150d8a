"""``python -m nbsocket`` runs the ``nbsocket`` command."""

import sys

from .cli import main

sys.exit(main())
