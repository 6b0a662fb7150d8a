"""Autobahn|Testsuite's client cases through nbsocket's public API, judged against the table of expected results.

The sections in ``fuzzingserver.json`` run against wstest's fuzzing server on 127.0.0.1; a case whose
verdict (or closing verdict) is worse than ``expected.json`` fails the test, with the report's
description and reason. A case that got better is shown as a warning, so the table can be updated
(``python tests/compliance/run_full.py --write-expected``).
"""

from __future__ import annotations

import logging
import warnings

import pytest

from .clients import run_nbsocket_cases
from .fuzzingserver import FuzzingServer
from .results import compare, load_expected, read_report

__all__: list[str] = []

AGENT = "nbsocket"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_autobahn_case_is_worse_than_expected(fuzzing_server: FuzzingServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="nbsocket")  # not every frame of 300 cases in the log, nor on screen on failure
    runs = run_nbsocket_cases(fuzzing_server.url, AGENT)
    results = read_report(fuzzing_server.clients_dir, AGENT)
    comparison = compare(results, load_expected())

    assert runs and len(results) == len(runs), f"{len(runs)} cases run, {len(results)} in the report"
    stuck = [run for run in runs if run.state not in ("closed", "failed", "refused")]
    assert not stuck, "cases the client never saw end:\n" + "\n".join(map(str, stuck))
    if comparison.better:
        warnings.warn(comparison.describe(worse=False), stacklevel=1)
    assert not comparison.worse and not comparison.not_in_table, (
        f"Autobahn report: {fuzzing_server.clients_dir / 'index.html'}\n{comparison.describe()}"
    )
