"""The wire: a ``websockets`` client connection that hands over each read's complete messages as one batch.

``websockets`` delivers messages one by one through ``recv()``: a future and
an assembler round trip per message. :class:`BatchingConnection` instead
collects the complete data messages of each read and hands them, in order, to
its ``sink`` in one call (in calls of at most ``MAX_BATCH`` for a long read),
on the loop thread.

The wire reads every frame header itself, from the end of the handshake on,
so it always knows where the next frame starts and whether a fragmented
message is open. Whole, unfragmented, uncompressed text and binary frames
within ``max_size`` are cut from the read here (a header check and a slice
each). Every other frame (control frames, fragments, compressed or masked
frames, frames over ``max_size``, reserved opcodes or bits, text that is not
UTF-8) goes to ``websockets``' parser, which answers pings, runs the close
handshake, enforces limits and fails the connection as RFC 6455 says; the
data messages it parses come back through :meth:`process_event` and join the
batch in order. Fragments are joined into one buffer as they arrive (an empty
fragment costs nothing; ``websockets`` caps the total at ``max_size``).

Text is decoded as strict UTF-8. A text message that is not UTF-8 fails the
connection with 1007, as ``websockets`` does, and nothing after it is
delivered: the bytes handed to ``websockets`` are cut after every frame that
ends a text message, so a failure is decided before anything later in the
stream is processed (RFC 6455 7.1.7: after failing the connection, process
no more data). ``websockets`` caps a message at 4,096 fragments
(``recv()``'s assembler); the wire does not (the RFC sets no limit, and
Autobahn's 9.3/9.4 cases send 65,536).

Until :meth:`BatchingConnection.attach` gives it a sink, batches are kept, so
nothing that arrives with the handshake response is lost or reordered; once a
read has been kept, reading waits for the sink, so what is kept is at most one
read (the sink's backpressure holds from the first message on).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.version import version as websockets_version

from .interface import Batch, CloseInfo, Sink
from .reads import limit_reads

if TYPE_CHECKING:
    from websockets.protocol import Event

__all__ = ["MAX_BATCH", "READ_SIZE", "BatchingConnection", "PingingConnection", "RawTextConnection"]

log = logging.getLogger("nbsocket")

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_WHOLE_TEXT, _WHOLE_BINARY = 0x81, 0x82  # a frame's first byte: FIN, no RSV bit (uncompressed), text / binary
_OPEN, _CONNECTING, _CLOSED = State.OPEN, State.CONNECTING, State.CLOSED
_END_OF_HEAD = b"\r\n\r\n"
_unpack_length = struct.Struct("!Q").unpack_from

READ_SIZE = 64 * 1024
"""Bytes asked of the socket per read, over TLS too (asyncio's default is 256 KiB; see ``reads``): a flooded
socket then holds the loop for a short read at a time, and other sockets, timers and writers run in between."""
MAX_BATCH = 256
"""A read that completes more messages hands them over in batches of at most this many, so the
live frame and the handlers see a long read progress instead of all at its end."""
MAX_RUN = 1024
"""Frames handed to websockets' parser in one go at most: it keeps a ``Frame`` per frame until the call
returns, so a read of 32,768 empty fragments would otherwise hold as many at once."""

_short_path_refusal_logged = False


class BatchingConnection(ClientConnection):
    """A ``ClientConnection`` whose data messages go to a sink per read instead of through ``recv()``."""

    decode_text = True
    """Text messages are handed over as ``str``; :class:`RawTextConnection` hands over their UTF-8 bytes."""
    ping_at_open = False
    """Ping the server when attached (:class:`PingingConnection`); ``opening_pong`` settles with its pong."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink: Sink | None = None
        self._held: Batch = []
        self._held_paused = False  # reading waits for attach() (something is kept for a sink not given yet)
        self._batch: Batch | None = None
        self.short_path = False
        """True once the handshake is done and whole frames are cut here (False: everything goes through websockets)."""
        self._head_tail = b""  # the last bytes of the handshake response so far (its end may be split across reads)
        self._kept: list[bytes] = []  # the reads so far of a frame (or header) a read ended in, joined once it is whole
        self._kept_size = 0
        self._kept_needs = 0
        self._owed = 0  # bytes still to come of a frame websockets' parser is in the middle of
        self._owed_ends_text = False  # that frame ends a text message
        self._fragmented = False  # a fragmented message is open (its frames all go to websockets)
        self._fragmented_text = False
        self._message: bytearray | None = None  # the fragments so far of a message websockets parses
        self._message_text = False
        self._failed = False  # the wire failed the connection (text that is not UTF-8): nothing more is delivered
        self._frame_limit: int | None = None
        self._lost: asyncio.Future[None] | None = None  # what wait_closed() waits for, made by its first call
        self.opening_pong: asyncio.Future[None] | None = None
        """Settled when the server answers the ping sent as the session attached (``ping_at_open``)."""
        self._opening_ping = b""
        self.on_pong: Callable[[], None] | None = None
        """Called after a pong updated ``latency`` (the keepalive round trip), on the loop thread."""

    # --- what the runtime reads -----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """The WebSocket connection is open (not connecting, closing or closed)."""
        return self.protocol.state is _OPEN

    @property
    def is_closed(self) -> bool:
        """The TCP connection is gone."""
        return self.protocol.state is _CLOSED

    @property
    def failure(self) -> BaseException | None:
        """What broke the connection from our side, if anything (websockets' ``connection_exc``, from version 15)."""
        return getattr(self, "connection_exc", None)

    def close_info(self) -> CloseInfo:
        """How the connection ended: the peer's close code and reason, else ours (e.g. 1009), else 1006."""
        protocol = self.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        if received is not None:
            return CloseInfo(received.code, received.reason, False)
        if sent is not None:
            return CloseInfo(sent.code, sent.reason, True)
        return CloseInfo(1006, "", False)

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is gone. As ``websockets``' own, whose shield keeps two futures and three
        callbacks per waiting socket for the whole life of the connection; here one future that ``connection_lost``
        settles (a cancelled wait leaves the connection alone)."""
        if self.connection_lost_waiter.done():
            return
        lost = self._lost
        if lost is None or lost.done():
            lost = self._lost = self.loop.create_future()
        await lost

    async def abort(self) -> None:
        """Drop the connection at once (no close handshake) and wait briefly for it to be gone."""
        self.drop()
        try:
            await asyncio.wait_for(asyncio.shield(self.connection_lost_waiter), 1.0)
        except (asyncio.TimeoutError, Exception):
            pass

    def drop(self) -> None:
        """Drop the TCP connection at once, if there is one."""
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.abort()

    def pause_reading(self) -> None:
        """Stop reading from the socket (TCP then pushes back on the server)."""
        transport = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        transport = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def attach(self, sink: Sink) -> None:
        """Hand every batch from now on to ``sink`` (loop thread); what arrived before goes first."""
        self._sink = sink
        if self.ping_at_open and self.opening_pong is None and self.protocol.state is _OPEN:
            self.opening_pong = self.loop.create_future()
            self._opening_ping = os.urandom(4)  # as websockets' own pings
            self.protocol.send_ping(self._opening_ping)
            self.send_data()
        if self._held_paused:
            self._held_paused = False
            self.resume_reading()  # before the sink sees what was kept: it may pause reading again
        held, self._held = self._held, []
        if held:
            sink(held)

    # --- websockets' hooks ------------------------------------------------------------------

    def acknowledge_pings(self, data: bytes) -> None:
        super().acknowledge_pings(data)
        pong = self.opening_pong
        if pong is not None and data == self._opening_ping and not pong.done():
            pong.set_result(None)
        on_pong = self.on_pong
        if on_pong is not None:
            on_pong()

    def connection_made(self, transport: Any) -> None:
        limit_reads(transport, READ_SIZE)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        state = self.protocol.state
        if state is not _OPEN:
            if state is _CONNECTING and self.response is None:
                data = self._take_handshake(data)
                if not data:
                    return
                state = self.protocol.state
            if state is not _OPEN:  # a refused handshake, a close handshake, a failed connection: websockets' alone
                super().data_received(data)
                return
        if not self.short_path:
            self._batch = []
            try:
                super().data_received(data)
            finally:
                self._hand_over_batch()
            return
        kept = self._kept
        if kept:
            kept.append(data)
            self._kept_size += len(data)
            if self._kept_size < self._kept_needs:
                return  # the kept frame is still incomplete: joined once, when it is whole
            data, self._kept = b"".join(kept), []
        self._batch = []
        try:
            self._cut(data)
        finally:
            self._hand_over_batch()

    def _take_handshake(self, data: bytes) -> bytes:
        """Give websockets the handshake response up to its blank line; returns the frames' bytes after it."""
        seen = self._head_tail + data
        end = seen.find(_END_OF_HEAD)
        if end < 0:
            self._head_tail = seen[-3:]
            super().data_received(data)
            return b""
        split = end + len(_END_OF_HEAD) - len(self._head_tail)
        self._head_tail = b""
        super().data_received(data[:split])
        if self.protocol.state is _OPEN:
            self._start_short_path()
        return data[split:]

    def _start_short_path(self) -> None:
        """The handshake is done: cut whole frames here from now on, unless this websockets cannot allow it."""
        global _short_path_refusal_logged
        self.request = None  # the handshake request (a dozen containers a socket would keep): websockets is done with it
        problem = _short_path_problem(self.protocol)
        if problem is None:
            self._frame_limit = _frame_limit(self.protocol)
            self.short_path = True
        elif not _short_path_refusal_logged:
            _short_path_refusal_logged = True
            log.info("receiving through websockets' frame parser only (%s; websockets %s)", problem, websockets_version)

    def _cut(self, data: bytes) -> None:
        """Cut the whole frames of ``data`` (which starts at a frame boundary, or inside a frame websockets
        is parsing); hand every other frame to websockets, in order."""
        end = len(data)
        pos = 0
        run = -1  # where the bytes for websockets not yet handed over start, or -1
        run_frames = 0
        if self._owed:
            pos = min(self._owed, end)
            self._owed -= pos
            run = 0
            if self._owed == 0 and self._owed_ends_text:
                if not self._parse(data, 0, pos):
                    return
                run = -1
        limit = self._frame_limit
        decode_text = self.decode_text
        protocol = self.protocol
        log_frames = protocol.logger if protocol.debug else None
        batch = self._batch
        while pos < end:
            head = data[pos]
            start = pos + 2
            if start > end:
                break  # the header is incomplete: kept below
            length = data[pos + 1]
            masked = length & 0x80
            length &= 0x7F
            if length == 126:
                start += 2
                if start > end:
                    break
                length = (data[start - 2] << 8) | data[start - 1]
            elif length == 127:
                start += 8
                if start > end:
                    break
                length = _unpack_length(data, start - 8)[0]
            if masked:
                start += 4
                if start > end:
                    break
            stop = start + length
            if (
                (head == _WHOLE_TEXT or head == _WHOLE_BINARY)  # noqa: SIM109 (no tuple built per frame)
                and not masked
                and not self._fragmented
                and (limit is None or length <= limit)
            ):
                if stop > end and length <= READ_SIZE:
                    break  # kept below until a read completes it
                if stop <= end:
                    body: str | bytes | None = data[start:stop]
                    if head == _WHOLE_TEXT and decode_text:
                        try:
                            body = body.decode("utf-8")  # type: ignore[union-attr]
                        except UnicodeDecodeError:
                            body = None  # websockets parses it, and the wire fails the connection with 1007
                    if body is not None:
                        if run >= 0:
                            if not self._parse(data, run, pos):
                                return
                            run = -1
                            batch = self._batch
                        if log_frames is not None:
                            log_frames.debug("< %s", _LoggedFrame(_TEXT if head == _WHOLE_TEXT else _BINARY, data[start:stop]))
                        batch.append(body)  # type: ignore[union-attr]
                        pos = stop
                        if len(batch) >= MAX_BATCH:  # type: ignore[arg-type]
                            self._hand_over_batch()
                            batch = self._batch = []
                        continue
            # a frame for websockets: note where messages start and end, so the wire stays in step with its parser
            opcode = head & 0x0F
            ends_text = False
            if opcode == _TEXT or opcode == _BINARY:  # noqa: SIM109 (no tuple built per frame)
                if head & 0x80:
                    ends_text = opcode == _TEXT and not self._fragmented
                else:
                    self._fragmented, self._fragmented_text = True, opcode == _TEXT
            elif opcode == _CONT and head & 0x80 and self._fragmented:
                ends_text = self._fragmented_text
                self._fragmented = False
            if run < 0:
                run, run_frames = pos, 0
            run_frames += 1
            if stop > end:
                self._owed, self._owed_ends_text = stop - end, ends_text
                pos = end
                break
            pos = stop
            if ends_text or run_frames >= MAX_RUN:  # ends_text: a failure is decided before anything after it is parsed
                if not self._parse(data, run, pos):
                    return
                run = -1
                batch = self._batch
        if run >= 0 and not self._parse(data, run, pos):
            return
        if pos < end:
            part = data[pos:]
            needs = 0
            if not self._owed:  # a whole frame's length is known once its header is: wait for all of it
                needs = _frame_size(part)
            self._kept, self._kept_size, self._kept_needs = [part], len(part), needs

    def _parse(self, data: bytes, start: int, stop: int) -> bool:
        """Let websockets parse ``data[start:stop]``; False (and the rest of ``data`` given to websockets too) when
        the connection is no longer open, so nothing after a close or a failure is cut here."""
        super().data_received(data[start:stop])
        if self.protocol.state is _OPEN and not self._failed:
            return True
        if stop < len(data):
            super().data_received(data[stop:])
        return False

    def _hand_over_batch(self) -> None:
        batch, self._batch = self._batch, None
        if batch:
            sink = self._sink
            if sink is None:
                self._held.extend(batch)
                if not self._held_paused:
                    self._held_paused = True
                    self.pause_reading()
            else:
                sink(batch)

    def process_event(self, event: Event) -> None:
        batch = self._batch
        if batch is None or self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response, or a frame outside a read
            return
        opcode = event.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if self._failed:
                return
            if event.fin:
                self._deliver(batch, opcode is _TEXT, event.data)
            else:
                self._message = bytearray(event.data)
                self._message_text = opcode is _TEXT
        elif opcode is _CONT:
            message = self._message
            if message is None or self._failed:  # the protocol has already refused a stray continuation
                return
            message += event.data
            if event.fin:
                self._message = None
                self._deliver(batch, self._message_text, message)
        else:
            super().process_event(event)

    def _deliver(self, batch: Batch, is_text: bool, data: bytes | bytearray | memoryview) -> None:
        if not is_text or not self.decode_text:
            batch.append(bytes(data))
        else:
            try:
                batch.append(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else bytes(data).decode("utf-8"))
            except UnicodeDecodeError as exc:
                self._failed = True
                note_cause = getattr(self, "set_connection_exc", None)  # (websockets >= 15)
                if note_cause is not None:
                    note_cause(exc)
                self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self.send_data()
                return
        if len(batch) >= MAX_BATCH:
            self._hand_over_batch()
            self._batch = []

    def eof_received(self) -> None:
        kept, self._kept = self._kept, []
        if kept:  # websockets sees the frame the stream ended in, as it would have without the short path
            self._batch = []
            try:
                super().data_received(b"".join(kept))
            finally:
                self._hand_over_batch()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._message = None
        self._kept = []
        super().connection_lost(exc)
        lost, self._lost = self._lost, None
        if lost is not None and not lost.done():
            lost.set_result(None)


def _frame_size(part: bytes) -> int:
    """The whole size of the frame ``part`` starts with, or 0 while its header is incomplete."""
    if len(part) < 2:
        return 0
    length = part[1] & 0x7F
    size = 2 + (4 if part[1] & 0x80 else 0)
    if length == 126:
        if len(part) < 4:
            return 0
        return size + 2 + ((part[2] << 8) | part[3])
    if length == 127:
        if len(part) < 10:
            return 0
        length64: int = _unpack_length(part, 2)[0]
        return size + 8 + length64
    return size + length


def _short_path_problem(protocol: Any) -> str | None:  # websockets' Protocol: its attributes differ by version
    """Why whole frames cannot be cut here on this connection, or None when they can."""
    for name in ("state", "extensions", "debug", "logger"):
        if not hasattr(protocol, name):
            return f"its protocol has no {name!r}"
    if not (hasattr(protocol, "max_message_size") or hasattr(protocol, "max_size")):
        return "its protocol has no message size limit to check frames against"
    for extension in protocol.extensions:
        if not isinstance(extension, PerMessageDeflate):
            return f"the {type(extension).__name__} extension may change uncompressed frames"
    return None


def _frame_limit(protocol: Any) -> int | None:  # (as above)
    """The largest frame websockets' parser would take from this connection (``max_size``), or None."""
    limit: int | None  # max_size in websockets 14
    limit = protocol.max_message_size if hasattr(protocol, "max_message_size") else protocol.max_size
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
        except UnicodeDecodeError:  # (websockets before 17 cannot show a text frame that is not UTF-8)
            return "TEXT " + str(Frame(_BINARY, self.data)).split(" ", 1)[1]


class PingingConnection(BatchingConnection):
    """A :class:`BatchingConnection` that pings the server as soon as the session attaches to it, before anything
    else is sent: a plain socket with nothing to write first settles its first open on that pong, already on its way
    while the session starts its parts (most of a round trip less in each of a loop of connects). The payload is 4
    random bytes, as ``websockets``' own pings: servers that answer a ping in the middle of a frame they send in
    chops (Autobahn's 6.4.3 and 6.4.4) corrupt the stream the same way as before."""

    ping_at_open = True


class RawTextConnection(BatchingConnection):
    """A :class:`BatchingConnection` that hands text messages over as bytes, for protocols whose
    text frames may carry binary bodies (STOMP): they are never decoded, so never refused as bad UTF-8."""

    decode_text = False
