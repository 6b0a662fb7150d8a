"""How much one read of a socket may bring: asking asyncio's transports, plain and TLS, for short reads.

Everything one read brings is handled before the loop moves on, so the read size bounds how long a flooded
socket holds the loop. asyncio's plain TCP transport reads ``max_size`` bytes at a time (256 KiB unless told).
Its TLS transport reads through an ``SSLProtocol`` instead, which has its own read size and hands the
application everything one read decrypts in one call; the TCP transport's ``max_size`` is not what it uses.
Python 3.10's ``SSLProtocol`` is fed by a plain TCP transport's reads; from 3.11 it reads into a buffer of its
own (``max_size`` bytes, 256 KiB). asyncio has no public setting for either, so :func:`limit_reads` sets the
attribute each one reads, where it finds it, and leaves a transport it does not know as it is.

From 3.11 the TLS transport also goes on reading while the application has paused reading (the runtime's
backpressure), up to its read buffer's high-water mark (256 KiB), and hands all of it over at once on resuming;
:func:`limit_reads` lowers that mark to the read size too (``set_read_buffer_limits``), so the first turn after a
pause brings at most about two reads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["limit_reads"]


def limit_reads(transport: Any, size: int) -> bool:  # Any: asyncio's private transports, read by attribute
    """Ask ``transport`` (as given to ``connection_made``) for reads of at most ``size`` bytes (for TLS: of at most
    ``size`` encrypted bytes, so one read decrypts to about that much); True if it could be asked."""
    if _set_max_size(transport, size):
        return True
    tls = getattr(transport, "_ssl_protocol", None)  # asyncio's _SSLProtocolTransport: its SSLProtocol reads
    if tls is None:
        return False
    buffer = getattr(tls, "_ssl_buffer", None)
    if isinstance(buffer, bytearray) and isinstance(getattr(tls, "max_size", None), int):
        # Python 3.11+: the TCP transport reads into the buffer get_buffer() returns (all of it, whatever its
        # max_size); get_buffer() grows it back only up to max_size
        tls.max_size = size
        if len(buffer) > size:
            tls._ssl_buffer = bytearray(size)
            tls._ssl_buffer_view = memoryview(tls._ssl_buffer)
        set_read_buffer_limits = getattr(transport, "set_read_buffer_limits", None)
        if callable(set_read_buffer_limits):
            set_read_buffer_limits(high=size)
        return True
    return _set_max_size(getattr(tls, "_transport", None), size)  # Python 3.10: the TCP transport under it


def _set_max_size(transport: Any, size: int) -> bool:
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = size
        return True
    return False
