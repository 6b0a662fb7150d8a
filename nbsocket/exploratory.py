"""Exploratory testing on a connection: request/expect, transcripts, latency history (mixed into Connection)."""

from __future__ import annotations


class ExploratoryMixin:
    """Methods of :class:`~nbsocket.connection.Connection` for testing servers by hand."""
