"""The whole Autobahn|Testsuite client suite through nbsocket and through bare websockets, side by side.

    python tests/compliance/run_full.py [--cases "9.*,12.1.*" | --cases ci] [--clients nbsocket,websockets] [--write-expected]

Starts wstest's fuzzing server on 127.0.0.1 (see ``fuzzingserver.py`` for where wstest comes from), runs every
selected case (all of them by default, sections 9, 12 and 13 included: about ten minutes; ``--cases ci`` runs
the cases of ``fuzzingserver.json``, as CI does) with each client in turn, and prints, per section, how many
cases got each verdict for both, then every case that is not OK with the report's reason, and how nbsocket's
results compare with ``expected.json``. ``--write-expected`` rewrites that table from this run's nbsocket
results (the cases run; the rest of the table is kept). The reports stay in ``tests/compliance/reports/full/``
(``clients/index.html`` is Autobahn's own page).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import websockets

import nbsocket as nbs
from tests.compliance.clients import run_nbsocket_cases, run_websockets_cases
from tests.compliance.fuzzingserver import FuzzingServer, find_wstest, load_config
from tests.compliance.results import (
    EXPECTED,
    CaseResult,
    compare,
    count_by_section,
    load_expected,
    read_report,
    save_expected,
)

__all__ = ["main"]

REPORTS = Path(__file__).resolve().parent / "reports" / "full"
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
CLIENTS = {"nbsocket": run_nbsocket_cases, "websockets": run_websockets_cases}


def _progress(agent: str):
    started = time.monotonic()

    def show(number: int, count: int) -> None:
        if number % 25 == 0 or number == count:
            print(f"  {agent}: {number}/{count} cases, {time.monotonic() - started:.0f} s", flush=True)

    return show


def _counts_line(counts: Counter[str]) -> str:
    other = sum(count for verdict, count in counts.items() if verdict not in VERDICTS)
    cells = [f"{counts.get(verdict, 0):>4}" for verdict in VERDICTS[:-1]]
    cells.append(f"{counts.get('FAILED', 0) + other:>4}")
    return " ".join(cells)


def print_table(results: dict[str, dict[str, CaseResult]]) -> None:
    agents = list(results)
    header = " ".join(f"{verdict[:4]:>4}" for verdict in VERDICTS)
    print(f"\n{'section':<8}" + "".join(f" | {agent:^24}" for agent in agents))
    print(f"{'':<8}" + "".join(f" | {header}" for _ in agents))
    sections = {agent: count_by_section(cases) for agent, cases in results.items()}
    names = sorted({name for counts in sections.values() for name in counts}, key=lambda name: tuple(map(int, name.split("."))))
    for name in names:
        print(f"{name:<8}" + "".join(f" | {_counts_line(sections[agent].get(name, Counter()))}" for agent in agents))
    totals = {agent: Counter(result.behavior for result in cases.values()) for agent, cases in results.items()}
    print(f"{'total':<8}" + "".join(f" | {_counts_line(totals[agent])}" for agent in agents))
    print("(OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED; a closing behavior that is not OK is listed below)")


def print_not_ok(agent: str, cases: dict[str, CaseResult]) -> None:
    not_ok = [result for result in cases.values() if result.behavior != "OK" or result.behavior_close != "OK"]
    print(f"\n{agent}: {len(not_ok)} case(s) not OK")
    for result in not_ok:
        print(f"  {result.case:<8} {result.behavior}/{result.behavior_close}  [{result.summary()}]  {result.why()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="*", help="comma-separated Autobahn case patterns (default: all); 'ci': CI's")
    parser.add_argument("--exclude", default="", help="comma-separated case patterns to leave out")
    parser.add_argument("--clients", default="nbsocket,websockets")
    parser.add_argument("--write-expected", action="store_true", help="rewrite expected.json from nbsocket's results")
    parser.add_argument("--verbose", action="store_true", help="show nbsocket's warnings (each close it did not expect)")
    args = parser.parse_args(argv)
    logging.getLogger("nbsocket").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    agents = [agent for agent in args.clients.split(",") if agent]
    shutil.rmtree(REPORTS, ignore_errors=True)
    cases = load_config()["cases"] if args.cases == "ci" else args.cases.split(",")
    server = FuzzingServer(find_wstest(), REPORTS, cases=cases, exclude=[p for p in args.exclude.split(",") if p])
    seconds = {}
    with server:
        print(f"fuzzing server on {server.url}, reports in {server.clients_dir}")
        for agent in agents:
            started = time.monotonic()
            CLIENTS[agent](server.url, agent, _progress(agent))
            seconds[agent] = time.monotonic() - started
            if agent == "nbsocket":
                nbs.shutdown()
    results = {agent: read_report(server.clients_dir, agent) for agent in agents}
    print_table(results)
    print("time: " + ", ".join(f"{agent} {value:.0f} s" for agent, value in seconds.items()))
    for agent, cases in results.items():
        print_not_ok(agent, cases)
    if "nbsocket" in results:
        if EXPECTED.is_file():
            comparison = compare(results["nbsocket"], load_expected())
            print("\nnbsocket against expected.json: " + (comparison.describe() or "as expected"))
        if args.write_expected:
            table = {
                case: CaseResult(case, behavior, close)
                for case, (behavior, close) in (load_expected().items() if EXPECTED.is_file() else [])
            }
            table.update(results["nbsocket"])
            save_expected(table, note=f"Recorded {time.strftime('%Y-%m-%d')} with websockets {websockets.__version__}.")
            print(f"wrote {EXPECTED.name}: {len(table)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
