"""Outbound: what a socket sends, from the verb to the wire.

The ``Sender`` refuses a closed socket and puts encoded messages in the bounded ``Outbox`` (waiting for room
from a notebook thread); the ``Writer`` takes them out while the connection is open and writes them, yielding
to the loop after every slice so no socket starves another; ``pacing`` spreads bursts and replays over time.
"""

__all__: list[str] = []
