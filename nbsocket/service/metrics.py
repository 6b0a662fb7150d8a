"""Prometheus metrics for ``nbsocket run --metrics HOST:PORT`` (``prometheus_client``'s text format on ``/metrics``).

Read from the registry at each scrape, nothing counted twice:

* per socket (label ``socket``): ``nbsocket_messages_received_total``, ``nbsocket_bytes_received_total``,
  ``nbsocket_messages_sent_total``, ``nbsocket_bytes_sent_total``, ``nbsocket_reconnects_total``,
  ``nbsocket_errors_total``, ``nbsocket_socket_state`` (1 for the socket's state, 0 for the others, label
  ``state``) and ``nbsocket_socket_open`` (1 or 0);
* per sink (labels ``socket`` and ``sink``: ``nats``, ``parts`` or ``file``): ``nbsocket_sink_written_total``
  (acknowledged or written), ``nbsocket_sink_pending`` (received, not yet acknowledged or written),
  ``nbsocket_sink_dropped_total`` and ``nbsocket_sink_lag_seconds`` (age of the oldest pending message);
* ``nbsocket_shard_info`` (labels ``shard`` and ``run``) and ``nbsocket_sockets_held_elsewhere``.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

from ..core.state import STATES
from ..errors import InvalidOptionError
from ..runtime import Manager, process_run
from .logs import log

__all__ = ["MetricsServer", "collect", "parse_address", "serve"]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:PORT`` for every interface, port 0 for a free one) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidOptionError(f"--metrics takes HOST:PORT, e.g. 127.0.0.1:9464, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def collect(manager: Manager, shard: str | None) -> Iterator[Any]:
    """The metric families of one scrape (see the module)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

    counters = {
        "messages_in": CounterMetricFamily("nbsocket_messages_received", "Messages received", labels=["socket"]),
        "bytes_in": CounterMetricFamily("nbsocket_bytes_received", "Bytes received", labels=["socket"]),
        "messages_out": CounterMetricFamily("nbsocket_messages_sent", "Messages sent", labels=["socket"]),
        "bytes_out": CounterMetricFamily("nbsocket_bytes_sent", "Bytes sent", labels=["socket"]),
        "reconnects": CounterMetricFamily("nbsocket_reconnects", "Reconnects", labels=["socket"]),
        "errors": CounterMetricFamily("nbsocket_errors", "Errors (connects, closes, handlers, sinks)", labels=["socket"]),
    }
    state = GaugeMetricFamily("nbsocket_socket_state", "1 for the socket's current state", labels=["socket", "state"])
    open_ = GaugeMetricFamily("nbsocket_socket_open", "1 while the socket is open", labels=["socket"])
    written = CounterMetricFamily("nbsocket_sink_written", "Messages a sink wrote or had acknowledged", labels=["socket", "sink"])
    pending = GaugeMetricFamily(
        "nbsocket_sink_pending", "Messages received, not yet written or acknowledged", labels=["socket", "sink"]
    )
    dropped = CounterMetricFamily(
        "nbsocket_sink_dropped", "Messages a sink dropped (full, or lost at close)", labels=["socket", "sink"]
    )
    lag = GaugeMetricFamily(
        "nbsocket_sink_lag_seconds", "Age of the oldest message a sink has not written", labels=["socket", "sink"]
    )
    for name in manager.names():
        conn = manager.find(name)
        if conn is None:
            continue
        stats = conn.stats
        for key, family in counters.items():
            family.add_metric([name], float(getattr(stats, key)))
        current = conn.state
        for each in STATES:
            state.add_metric([name, each], 1.0 if each == current else 0.0)
        open_.add_metric([name], 1.0 if current == "open" else 0.0)
        recording = conn.recorder
        if recording is not None:
            sink = recording.sink_stats()
            labels = [name, str(sink["kind"])]
            written.add_metric(labels, float(sink["written"]))
            pending.add_metric(labels, float(sink["pending"]))
            dropped.add_metric(labels, float(sink["dropped"]))
            lag.add_metric(labels, float(sink["lag_s"]))
    yield from counters.values()
    yield from (state, open_, written, pending, dropped, lag)
    info = InfoMetricFamily("nbsocket_shard", "This process's shard and run")
    info.add_metric([], {"shard": shard or "1/1", "run": process_run()})
    yield info
    elsewhere = GaugeMetricFamily("nbsocket_sockets_held_elsewhere", "Sockets the feed file connects that other shards hold")
    elsewhere.add_metric([], float(len(manager.held_elsewhere())))
    yield elsewhere


class MetricsServer:
    """``/metrics`` over HTTP on its own thread; ``address`` is where it listens, ``shutdown()`` stops it."""

    def __init__(self, address: tuple[str, int], manager: Manager, shard: str | None) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)

        class Collector:
            def collect(self) -> Iterator[Any]:
                return collect(manager, shard)

        registry.register(Collector())

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes are not logged."""

        self._server = http.server.ThreadingHTTPServer(address, Handler)
        self._server.daemon_threads = True
        self.address: tuple[str, int] = (address[0], int(self._server.server_address[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, name="nbsocket-metrics", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def serve(address: tuple[str, int], manager: Manager, shard: str | None) -> MetricsServer:
    """Serve the metrics at ``address`` (logs where); needs ``prometheus_client`` (``nbsocket[service]``)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise InvalidOptionError("--metrics needs prometheus_client: pip install 'nbsocket[service]'") from None
    server = MetricsServer(address, manager, shard)
    host, port = server.address
    log.info("metrics on http://%s:%d/metrics", host, port, extra={"event": "metrics", "url": f"http://{host}:{port}/metrics"})
    return server
