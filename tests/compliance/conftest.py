"""Fixtures of the compliance tests: wstest, and its fuzzing server on 127.0.0.1 for the cases CI runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ARTIFACTS
from .fuzzingserver import REQUIRE_ENV, FuzzingServer, WstestMissingError, find_wstest, load_config

__all__ = ["REPORTS"]

REPORTS = ARTIFACTS / "autobahn"
"""Where the fuzzing server writes its reports during the tests (``clients/index.html`` is Autobahn's page)."""


@pytest.fixture(scope="session")
def wstest() -> Path:
    """wstest's path. Missing, it fails the test when ``NBSOCKET_REQUIRE_WSTEST=1`` (CI), and skips it otherwise."""
    try:
        return find_wstest()
    except WstestMissingError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{exc} ({REQUIRE_ENV}=1 makes this a failure)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def fuzzing_server(wstest: Path) -> Iterator[FuzzingServer]:
    """The fuzzing server with the cases of ``fuzzingserver.json``; stopped (its process group killed) afterwards."""
    config = load_config()
    shutil.rmtree(REPORTS, ignore_errors=True)
    server = FuzzingServer(wstest, REPORTS, cases=config["cases"], exclude=config.get("exclude-cases", []))
    with server:
        yield server
