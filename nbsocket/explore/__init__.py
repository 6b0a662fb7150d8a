"""Exploring a server: replaying transcripts, bursts of messages, transcript files."""

__all__: list[str] = []
