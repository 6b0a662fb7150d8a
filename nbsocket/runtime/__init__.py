"""The runtime: the loop thread, the session that owns each WebSocket, dispatch to handlers, the outbox,
waits, requests, recording, the :class:`~nbsocket.runtime.connection.Connection` facade and the manager."""

__all__: list[str] = []
