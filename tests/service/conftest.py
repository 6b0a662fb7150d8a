"""Fixtures of the service tests: a private JetStream server for the session, and a numbered feed server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .feeds import FeedServer
from .natsserver import nats_server  # noqa: F401  (a fixture)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
