"""Application protocols over WebSocket as sans-I/O objects (text or bytes in; events, replies and
outgoing messages out): the :class:`~nbsocket.core.protocols.base.Protocol` base and the built-ins."""

__all__: list[str] = []
