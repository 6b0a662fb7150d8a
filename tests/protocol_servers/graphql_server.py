"""The GraphQL server the tests use: it lives in :mod:`nbsocket.demo.protocol_servers.graphql_server`."""

from nbsocket.demo.protocol_servers.graphql_server import GraphQLServer, schema

__all__ = ["GraphQLServer", "schema"]
