"""The pure core: events, codecs, flatten, match, redaction, backoff, URLs, options, the live frame,
transcript entries, compare and the sans-I/O protocols. No asyncio, threads, sockets or widgets here."""

__all__: list[str] = []
