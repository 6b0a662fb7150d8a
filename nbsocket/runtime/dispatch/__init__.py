"""Dispatch: running the handlers and callbacks of each socket, in order, without ever holding the loop.

The ``Dispatcher`` takes a socket's received batches and lifecycle callbacks in order; plain handlers run on
the ``WorkerPool``'s daemon threads through a per-socket ``SerialLane``, async ones on the loop. ``handlers``
holds the registered functions and callback slots, and ``lockable`` the one synchronised mapping every handler
shares (``event.lockable``).
"""

__all__: list[str] = []
