"""Autobahn|Testsuite client compliance: nbsocket against wstest's fuzzing server, with a table of expected results."""

__all__: list[str] = []
