"""Protocol sockets: the loop side of ``connect(protocol=...)``.

``ProtocolConnection`` adds a protocol's verbs (``emit``, ``call``, ``subscribe``...) to a connection; its
``ProtocolDriver`` runs the sans-I/O protocol object of ``core.protocols`` on the loop thread and carries out
the actions it answers; ``calls`` keeps which connection each call was written on, what handlers did with the
server's requests, and the recent topics.
"""

__all__: list[str] = []
