"""Observation: what the runtime records about each socket and how callers wait for it.

``Observers`` are the hooks that see every received batch, send, handled event and lifecycle change; on them
sit the ``Transcript`` (every message both ways), ``Waits`` (``conn.wait``), ``Requests`` (``request``/``expect``
and their replies), ``Latency`` (ping and request round trips), the ``ErrorLog`` (``conn.errors``) and
``recording`` (the live frame to JSONL or Parquet on disk, on its own thread).
"""

__all__: list[str] = []
