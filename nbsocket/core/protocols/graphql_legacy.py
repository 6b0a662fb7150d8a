"""Apollo's ``subscriptions-transport-ws`` (``protocol="graphql-ws-legacy"``) as a sans-I/O protocol.

The same verbs and actions as :class:`~.graphql.GraphQLWS` (whose module
docstring describes them); only the wire differs: ``start``/``stop`` and
``data`` messages, a ``connection_error`` refusal, and the server's ``ka``
keep-alives.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from .base import Action, Close, Housekeeping, Refused
from .graphql import GraphQLWS, MessageHandler

__all__ = ["GraphQLWSLegacy"]


class GraphQLWSLegacy(GraphQLWS):
    """Apollo ``subscriptions-transport-ws`` client (``connect(..., protocol="graphql-ws-legacy")``).

    Same verbs and actions as :class:`GraphQLWS`; on the wire ``start``/``stop``
    and ``data``. ``connection_error`` becomes ``Refused``; the server's ``ka``
    keep-alives are ``Housekeeping``. ``keepalive`` here is how long the server
    may stay silent once it has sent a first ``ka`` before the socket is closed
    (4499) so the runtime reconnects (Apollo's client ``timeout``).
    """

    name: ClassVar[str] = "graphql-ws-legacy"
    subprotocols: ClassVar[tuple[str, ...]] = ("graphql-ws",)

    _START: ClassVar[str] = "start"
    _STOP: ClassVar[str] = "stop"

    def _handlers(self) -> dict[str, MessageHandler]:
        return {
            "connection_ack": self._on_ack,
            "connection_error": self._on_connection_error,
            "ka": self._on_keepalive,
            "data": self._on_result,
            "error": self._on_error,
            "complete": self._on_complete,
        }

    _OPTIONAL_OBJECT_PAYLOAD: ClassVar[frozenset[str]] = frozenset({"connection_ack"})

    def _has_client_keepalive(self) -> bool:
        return False  # the server sends ka; the deadline starts at the first one

    def _error_payload_problem(self, payload: Any) -> str | None:
        """subscriptions-transport-ws sends one error object (``{"message": ...}``) or a list of them."""
        items = payload if isinstance(payload, list) else [payload]
        if not items or not all(isinstance(item, dict) for item in items):
            return "is neither an error object nor a list of them"
        return None

    def _on_keepalive(self, message: dict[str, Any], now: float) -> list[Action]:
        if self.keepalive is not None:
            self._deadline = now + self.keepalive
        return [Housekeeping("ka")]

    def _on_connection_error(self, message: dict[str, Any], now: float) -> list[Action]:
        payload = message.get("payload")
        if isinstance(payload, dict) and payload.get("message"):
            reason = str(payload["message"])
        elif isinstance(payload, dict) and payload:
            reason = json.dumps(payload, default=str)
        elif isinstance(payload, str) and payload:
            reason = payload
        else:
            reason = "connection_error (the server refused connection_init)"
        extra = {key: value for key, value in payload.items() if key != "message"} if isinstance(payload, dict) else None
        return [Refused(reason, data=extra or None)]

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """As :meth:`GraphQLWS.receive`; any message also proves the server alive (resets the ``ka`` deadline)."""
        if self._deadline is not None and self.keepalive is not None:
            self._deadline = now + self.keepalive
        return super().receive(body, now)

    def poll(self, now: float) -> list[Action]:
        """Close (4499) when the server's keep-alives stopped for longer than ``keepalive``."""
        if self._deadline is None or self.keepalive is None or now < self._deadline:
            return []
        self._deadline = None
        return [Close(4499, f"no keep-alive from the server within {self.keepalive:g}s")]
