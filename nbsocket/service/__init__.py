"""Running a feed file headless: ``nbsocket run FILE [--shard I/N] [--metrics HOST:PORT]``.

A feed file is an ordinary Python file that uses the nbsocket API, the same calls a notebook makes
(``nbs.connect(name, url, handler=..., record=...)``). :mod:`.runner` runs it with no Jupyter: it holds
only the sockets of its shard (a stable hash of each name, :mod:`nbsocket.core.sharding`), logs one JSON
line per state change and error (:mod:`.logs`, secrets masked), serves Prometheus metrics
(:mod:`.metrics`) and, on SIGTERM or SIGINT, closes every socket with 1001, flushes every sink and exits 0.
A front end: it uses the runtime's surface (``nbsocket.runtime``) only.
"""

from __future__ import annotations

from .runner import EXIT_CODES, RunSettings, run

__all__ = ["EXIT_CODES", "RunSettings", "run"]
