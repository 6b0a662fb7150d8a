"""Running headless: nbsocket run, sharding, the JetStream and fsspec sinks, nbs.follow and the metrics, against real servers."""
