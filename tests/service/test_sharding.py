"""Shard membership: a stable hash of the name that splits every socket exactly once, and moves few when N grows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nbsocket.core.sharding import Shard, jump_hash, parse_shard, shard_of
from nbsocket.errors import InvalidOptionError

NAMES = [f"feed{i:04d}" for i in range(3000)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_n_shards_hold_every_socket_exactly_once(count: int) -> None:
    shards = [Shard(i, count) for i in range(1, count + 1)]
    for name in NAMES:
        assert sum(shard.holds(name) for shard in shards) == 1, name
    sizes = [sum(shard.holds(name) for name in NAMES) for shard in shards]
    assert min(sizes) > len(NAMES) / count * 0.8, f"uneven shards: {sizes}"


def test_growing_from_n_to_n_plus_one_moves_sockets_only_to_the_new_shard() -> None:
    for count in (2, 3, 7):
        moved = [name for name in NAMES if shard_of(name, count) != shard_of(name, count + 1)]
        assert all(shard_of(name, count + 1) == count + 1 for name in moved)
        assert len(moved) < len(NAMES) / (count + 1) * 1.3


def test_the_hash_is_the_same_in_another_process() -> None:
    """Not Python's salted hash(): another interpreter (another PYTHONHASHSEED) puts every name in the same shard."""
    probe = "from nbsocket.core.sharding import shard_of; print([shard_of(f'feed{i:04d}', 5) for i in range(200)])"
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "7"})
    assert other.stdout.strip() == str([shard_of(f"feed{i:04d}", 5) for i in range(200)])
    assert jump_hash(0, 1) == 0 and shard_of("prices", 1) == 1


def test_shard_specs() -> None:
    assert parse_shard("2/3") == Shard(2, 3)
    assert parse_shard(" 3 / 3 ") == Shard(3, 3)
    assert parse_shard("0/3") == Shard(3, 3), "0/N is N/N, so counting from 0 covers every shard too"
    for bad in ("4/3", "1/0", "a/b", "2", "-1/3", "1/3/4"):
        with pytest.raises(InvalidOptionError, match="shard"):
            parse_shard(bad)
