"""Sharding with no coordinator: which of N processes holds a socket, from its name alone.

``nbsocket run feeds.py --shard I/N`` holds exactly the sockets whose names fall to shard ``I``.
The shard of a name is a stable hash: the name's SHA-256 (the same on every machine, Python
version and process start, unlike ``hash()``) fed to Lamping and Veach's jump consistent hash,
so N processes together hold every socket exactly once, and going from N to N+1 processes moves
only about 1/(N+1) of the sockets (each to the new shard). Shards count from 1 to N; ``0/N``
means the same as ``N/N``, so a count from 0 to N-1 works too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..errors import InvalidOptionError

__all__ = ["Shard", "jump_hash", "name_key", "parse_shard", "shard_of"]

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_MASK64 = (1 << 64) - 1


def name_key(name: str) -> int:
    """A socket name as a 64-bit number that every process computes alike (the first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: ``key`` to a bucket in ``0 .. buckets-1``.

    Growing ``buckets`` by one moves a key only into the new bucket, and only about one key in ``buckets``.
    """
    if buckets < 1:
        raise InvalidOptionError(f"a shard count must be at least 1, not {buckets}")
    bucket, jump = -1, 0
    key &= _MASK64
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(name: str, count: int) -> int:
    """The shard (1 to ``count``) that holds socket ``name`` when ``count`` processes share the sockets."""
    return jump_hash(name_key(name), count) + 1


@dataclass(frozen=True)
class Shard:
    """One process's share of the sockets: shard ``index`` (1 to ``count``) of ``count``."""

    index: int
    count: int

    def holds(self, name: str) -> bool:
        """True when socket ``name`` falls to this shard."""
        return self.count == 1 or shard_of(name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` as :class:`Shard` (``I/N``, I from 1 to N; ``0/N`` is taken as ``N/N``); a clear error otherwise."""
    match = _SPEC.fullmatch(text)
    if match is None:
        raise InvalidOptionError(f"--shard takes I/N, e.g. 2/3 (the second of three processes), not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise InvalidOptionError(f"--shard {text}: the number of shards must be at least 1")
    if index > count:
        raise InvalidOptionError(f"--shard {text}: the shard must be 1 to {count} (0 also means {count})")
    return Shard(index or count, count)
