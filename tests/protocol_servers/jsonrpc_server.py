"""The JSON-RPC server the tests use: it lives in :mod:`nbsocket.demo.protocol_servers.jsonrpc_server`."""

from nbsocket.demo.protocol_servers.jsonrpc_server import METHODS, JSONRPCServer

__all__ = ["METHODS", "JSONRPCServer"]
