"""The wire: a ``websockets`` client connection that hands over each read's complete messages as one batch.

``websockets`` delivers messages one by one through ``recv()``: a future and
an assembler round trip per message. :class:`BatchingConnection` instead
collects the complete data messages that one ``data_received`` call parsed
and hands them, in order, to its ``sink`` in one call (in calls of at most
``MAX_BATCH`` for a long read), on the loop thread. Control frames (ping, pong, close), the close handshake, keepalive,
``max_size`` and compression stay with ``websockets``. Fragmented messages
are joined here; text is decoded as strict UTF-8 and invalid text closes the
connection with 1007, as ``websockets`` does.

Until :meth:`BatchingConnection.attach` gives it a sink, batches are kept, so
nothing that arrives with the handshake response is lost or reordered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode, Frame, Opcode

__all__ = ["BatchingConnection", "RawTextConnection", "Batch", "Sink"]

Batch = list[str | bytes]
"""The data messages of one read, in order: ``str`` for text, ``bytes`` for binary."""
Sink = Callable[[Batch], None]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT

READ_SIZE = 64 * 1024
"""Bytes asked of the socket per read (asyncio's default is 256 KiB): a flooded socket then holds the
loop for a short read at a time, and other sockets, timers and writers run in between."""
MAX_BATCH = 256
"""A read that completes more messages hands them over in batches of at most this many, so the
live frame and the handlers see a long read progress instead of all at its end."""


class BatchingConnection(ClientConnection):
    """A ``ClientConnection`` whose data messages go to a sink per read instead of through ``recv()``."""

    decode_text = True
    """Text messages are handed over as ``str``; :class:`RawTextConnection` hands over their UTF-8 bytes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink: Sink | None = None
        self._held: Batch = []
        self._batch: Batch | None = None
        self._fragments: list[bytes] | None = None
        self._fragments_text = False
        self.on_pong: Callable[[], None] | None = None
        """Called after a pong updated ``latency`` (the keepalive round trip), on the loop thread."""

    def acknowledge_pings(self, data: bytes) -> None:
        super().acknowledge_pings(data)
        on_pong = self.on_pong
        if on_pong is not None:
            on_pong()

    def connection_made(self, transport: Any) -> None:
        if isinstance(getattr(transport, "max_size", None), int):
            transport.max_size = READ_SIZE
        super().connection_made(transport)

    def attach(self, sink: Sink) -> None:
        """Hand every batch from now on to ``sink`` (loop thread); what arrived before goes first."""
        self._sink = sink
        held, self._held = self._held, []
        if held:
            sink(held)

    def data_received(self, data: bytes) -> None:
        self._batch = []
        try:
            super().data_received(data)
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._hand_over(batch)

    def _hand_over(self, batch: Batch) -> None:
        sink = self._sink
        if sink is None:
            self._held.extend(batch)
        else:
            sink(batch)

    def process_event(self, event: Any) -> None:
        batch = self._batch
        if batch is None or self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response, or a frame outside a read
            return
        opcode = event.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if event.fin:
                self._deliver(batch, opcode is _TEXT, event.data)
            else:
                self._fragments = [bytes(event.data)]
                self._fragments_text = opcode is _TEXT
        elif opcode is _CONT:
            fragments = self._fragments
            if fragments is None:  # the protocol has already refused a stray continuation
                return
            fragments.append(bytes(event.data))
            if event.fin:
                self._fragments = None
                self._deliver(batch, self._fragments_text, b"".join(fragments))
        else:
            super().process_event(event)

    def _deliver(self, batch: Batch, is_text: bool, data: Any) -> None:
        if not is_text or not self.decode_text:
            batch.append(bytes(data))
        else:
            try:
                batch.append(bytes(data).decode("utf-8") if not isinstance(data, bytes) else data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                note_cause = getattr(self, "set_connection_exc", None)  # (websockets >= 15)
                if note_cause is not None:
                    note_cause(exc)
                self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self.send_data()
                return
        if len(batch) >= MAX_BATCH:
            self._batch = []
            self._hand_over(batch)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fragments = None
        super().connection_lost(exc)


class RawTextConnection(BatchingConnection):
    """A :class:`BatchingConnection` that hands text messages over as bytes, for protocols whose
    text frames may carry binary bodies (STOMP): they are never decoded, so never refused as bad UTF-8."""

    decode_text = False
