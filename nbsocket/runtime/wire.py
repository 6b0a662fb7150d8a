"""The wire: a ``websockets`` client connection that hands over each read's complete messages as one batch.

``websockets`` delivers messages one by one through ``recv()``: a future and
an assembler round trip per message. :class:`BatchingConnection` instead
collects the complete data messages that one ``data_received`` call parsed
and hands them, in order, to its ``sink`` in one call (in calls of at most
``MAX_BATCH`` for a long read), on the loop thread. Control frames (ping, pong, close), the close handshake, keepalive,
``max_size`` and compression stay with ``websockets``. Fragmented messages
are joined here; text is decoded as strict UTF-8 and invalid text closes the
connection with 1007, as ``websockets`` does.

Between frames, a read that starts with whole, uncompressed data frames is
cut into messages here without websockets' frame parser (a generator and a
``Frame`` per message); the first frame of any other kind, and everything
after it in that read, goes through websockets as before.

Until :meth:`BatchingConnection.attach` gives it a sink, batches are kept, so
nothing that arrives with the handshake response is lost or reordered.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

__all__ = ["Batch", "BatchingConnection", "RawTextConnection", "Sink"]

Batch = list[str | bytes]
"""The data messages of one read, in order: ``str`` for text, ``bytes`` for binary."""
Sink = Callable[[Batch], None]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_WHOLE_TEXT, _WHOLE_BINARY = 0x81, 0x82  # a frame's first byte: FIN, no RSV bit (uncompressed), text / binary
_OPEN = State.OPEN
_WAITING_FOR_A_FRAME = StreamReader.at_eof.__code__  # where websockets' parser waits between frames
_unpack_length = struct.Struct("!Q").unpack_from

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
        self._between_frames = False  # websockets' parser waits for a new frame and holds no bytes
        self._partial: list[bytes] = []  # the reads so far of a frame a read ended in, kept until it is whole
        self._partial_size = 0
        self._partial_needs = 0
        self._frame_limit = _frame_limit(self.protocol)
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
        partial = self._partial
        if partial:
            partial.append(data)
            self._partial_size += len(data)
            if self._partial_size < self._partial_needs:
                return  # the kept frame is still incomplete: joined once, when it is whole
            data, self._partial = b"".join(partial), []
        self._batch = []
        try:
            taken = self._take_whole_frames(data) if self._between_frames and self.protocol.state is _OPEN else 0
            if taken < len(data):
                super().data_received(data[taken:] if taken else data)
                self._between_frames = self._parser_between_frames()
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._hand_over(batch)

    def _take_whole_frames(self, data: bytes) -> int:
        """Take the complete, unfragmented, uncompressed data frames at the start of ``data`` without going
        through websockets' parser (which is waiting for a new frame); returns how many bytes were taken.

        A read that ends inside such a frame (of at most :data:`READ_SIZE` bytes) keeps that frame's start
        for the next read. Anything else (a control frame, a fragment, a compressed or masked frame, one
        over ``max_size``, text that is not UTF-8, a longer frame) stops it: websockets parses the rest.
        """
        protocol = self.protocol
        limit = self._frame_limit
        decode_text = self.decode_text
        log = protocol.logger if protocol.debug else None
        batch = self._batch
        pos, end = 0, len(data)
        while pos < end:
            head = data[pos]
            if head != _WHOLE_TEXT and head != _WHOLE_BINARY:
                break
            start = pos + 2
            if start > end:
                return self._keep_partial(data, pos, 0)
            length = data[pos + 1]
            if length > 127:  # the mask bit: a server must not mask
                break
            if length == 126:
                if start + 2 > end:
                    return self._keep_partial(data, pos, 0)
                length = (data[start] << 8) | data[start + 1]
                start += 2
            elif length == 127:
                if start + 8 > end:
                    return self._keep_partial(data, pos, 0)
                length = _unpack_length(data, start)[0]
                start += 8
            if limit is not None and length > limit:
                break
            stop = start + length
            if stop > end:
                return self._keep_partial(data, pos, stop - pos) if length <= READ_SIZE else pos
            if log is not None:
                log.debug("< %s", _LoggedFrame(_TEXT if head == _WHOLE_TEXT else _BINARY, data[start:stop]))
            if head == _WHOLE_TEXT and decode_text:
                try:
                    body: str | bytes = data[start:stop].decode("utf-8")
                except UnicodeDecodeError:
                    break
            else:
                body = data[start:stop]
            batch.append(body)  # type: ignore[union-attr]
            pos = stop
            if len(batch) >= MAX_BATCH:  # type: ignore[arg-type]
                self._batch = []
                self._hand_over(batch)  # type: ignore[arg-type]
                batch = self._batch
        return pos

    def _keep_partial(self, data: bytes, pos: int, needs: int) -> int:
        """Keep the incomplete frame that starts at ``pos`` (``needs`` bytes in all, 0 while its header is
        incomplete) until a read completes it; all of ``data`` counts as taken."""
        part = data[pos:]
        self._partial, self._partial_size, self._partial_needs = [part], len(part), needs
        return len(data)

    def _parser_between_frames(self) -> bool:
        """Whether websockets' parser now waits for the first byte of a new data message with nothing buffered,
        so the next read may start with :meth:`_take_whole_frames` (checked after websockets parsed a read)."""
        protocol = self.protocol
        if (protocol.state is not _OPEN or self.response is None or self._fragments is not None
                or protocol.reader.buffer or getattr(protocol, "current_size", None) is not None):
            return False
        for extension in protocol.extensions:
            if not isinstance(extension, PerMessageDeflate) or extension.decode_cont_data:
                return False  # only permessage-deflate leaves uncompressed frames as they are
        parser = protocol.parser
        while getattr(parser, "gi_yieldfrom", None) is not None:
            parser = parser.gi_yieldfrom
        return getattr(parser, "gi_code", None) is _WAITING_FOR_A_FRAME

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

    def eof_received(self) -> None:
        partial, self._partial = self._partial, []
        if partial:  # websockets sees the frame the stream ended in, as it would have without the short path
            self._batch = []
            try:
                super().data_received(b"".join(partial))
            finally:
                self._batch = None
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fragments = None
        self._partial = []
        super().connection_lost(exc)


def _frame_limit(protocol: Any) -> int | None:
    """The largest frame websockets' parser would take from this connection (``max_size``), or None."""
    limit = protocol.max_message_size if hasattr(protocol, "max_message_size") else protocol.max_size  # (websockets 14)
    fragment_limit = getattr(protocol, "max_fragment_size", None)
    if fragment_limit is not None and (limit is None or fragment_limit < limit):
        limit = fragment_limit
    return limit


class _LoggedFrame:
    """A frame the wire cut, as websockets' debug log shows a received frame; formatted only if the line is written."""

    __slots__ = ("data", "opcode")

    def __init__(self, opcode: Opcode, data: bytes) -> None:
        self.opcode = opcode
        self.data = data

    def __str__(self) -> str:
        try:
            return str(Frame(self.opcode, self.data))
        except UnicodeDecodeError:  # (websockets 14 cannot show a text frame that is not UTF-8)
            return "TEXT " + str(Frame(_BINARY, self.data)).split(" ", 1)[1]


class RawTextConnection(BatchingConnection):
    """A :class:`BatchingConnection` that hands text messages over as bytes, for protocols whose
    text frames may carry binary bodies (STOMP): they are never decoded, so never refused as bad UTF-8."""

    decode_text = False
