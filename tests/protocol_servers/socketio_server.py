"""The Socket.IO server the tests use: it lives in :mod:`nbsocket.demo.protocol_servers.socketio_server`."""

from nbsocket.demo.protocol_servers.socketio_server import ADMIN_NAMESPACE, ADMIN_TOKEN, SocketIOServer

__all__ = ["ADMIN_NAMESPACE", "ADMIN_TOKEN", "SocketIOServer"]
