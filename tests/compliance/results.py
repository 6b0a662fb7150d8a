"""The fuzzing server's reports, the table of expected results, and how the two compare.

A case has two verdicts in Autobahn's report: ``behavior`` (what the client did with the frames)
and ``behaviorClose`` (how the connection ended). The table ``expected.json`` keeps both for
nbsocket, from a real run. A verdict is worse when it ranks lower:
OK > NON-STRICT > INFORMATIONAL = UNIMPLEMENTED > anything else (FAILED, WRONG CODE, UNCLEAN, ...).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EXPECTED",
    "CaseResult",
    "Comparison",
    "case_key",
    "compare",
    "count_by_section",
    "load_expected",
    "rank",
    "read_report",
    "save_expected",
    "section_of",
]

EXPECTED = Path(__file__).resolve().parent / "expected.json"
"""nbsocket's expected verdict per case, all sections (written by ``run_full.py --write-expected``)."""

_TAG = re.compile(r"<[^>]+>")
RANK = {"OK": 3, "NON-STRICT": 2, "INFORMATIONAL": 1, "UNIMPLEMENTED": 1}


def rank(verdict: str) -> int:
    """Higher is better; every verdict Autobahn counts as a failure ranks 0."""
    return RANK.get(verdict, 0)


def case_key(case_id: str) -> tuple[int, ...]:
    """Sorts ``"9.10.2"`` after ``"9.2.1"``."""
    return tuple(int(part) for part in case_id.split("."))


def section_of(case_id: str) -> str:
    """The group a case is counted in: its first number, and its first two for 12 and 13 (per compression setting)."""
    parts = case_id.split(".")
    return ".".join(parts[:2]) if parts[0] in ("12", "13") else parts[0]


@dataclass
class CaseResult:
    """One case as the fuzzing server judged it."""

    case: str
    behavior: str
    behavior_close: str
    description: str = ""
    expectation: str = ""
    result: str = ""
    result_close: str = ""
    remote_close_code: int | None = None
    duration_ms: int | None = None

    def summary(self) -> str:
        """The case's description on one line, without Autobahn's HTML."""
        return " ".join(_TAG.sub(" ", self.description).split())

    def why(self) -> str:
        """The report's reason, on one line."""
        parts = [self.result]
        if self.behavior_close != "OK":
            parts.append(f"close {self.behavior_close}: {self.result_close}")
        if self.remote_close_code is not None:
            parts.append(f"client's close code {self.remote_close_code}")
        return "; ".join(part for part in parts if part)


def read_report(clients_dir: Path, agent: str) -> dict[str, CaseResult]:
    """Every case of ``agent`` in ``clients_dir/index.json``, with the details of its own report file."""
    index = json.loads((clients_dir / "index.json").read_text(encoding="utf-8"))
    if agent not in index:
        raise KeyError(f"the report has no agent {agent!r} (it has {sorted(index)})")
    results = {}
    for case_id, entry in index[agent].items():
        details: dict = {}
        report_file = entry.get("reportfile")
        if report_file and (clients_dir / report_file).is_file():
            details = json.loads((clients_dir / report_file).read_text(encoding="utf-8"))
        results[case_id] = CaseResult(
            case=case_id,
            behavior=entry["behavior"],
            behavior_close=entry["behaviorClose"],
            description=details.get("description", ""),
            expectation=details.get("expectation", ""),
            result=details.get("result", ""),
            result_close=details.get("resultClose", ""),
            remote_close_code=entry.get("remoteCloseCode"),
            duration_ms=entry.get("duration"),
        )
    return dict(sorted(results.items(), key=lambda item: case_key(item[0])))


def load_expected(path: Path = EXPECTED) -> dict[str, tuple[str, str]]:
    """case -> (behavior, behaviorClose) from the table."""
    table = json.loads(path.read_text(encoding="utf-8"))
    close = table.get("close", {})
    return {case: (behavior, close.get(case, "OK")) for case, behavior in table["cases"].items()}


def save_expected(results: dict[str, CaseResult], path: Path = EXPECTED, note: str = "") -> None:
    """Write the table: every case's behavior, and its close behavior where that is not OK."""
    table = {
        "about": "nbsocket's Autobahn|Testsuite client results, case -> behavior; 'close' lists the cases whose "
        "closing behavior is not OK. A case that gets worse than this fails tests/compliance." + (f" {note}" if note else ""),
        "cases": {case: result.behavior for case, result in sorted(results.items(), key=lambda item: case_key(item[0]))},
        "close": {
            case: result.behavior_close
            for case, result in sorted(results.items(), key=lambda item: case_key(item[0]))
            if result.behavior_close != "OK"
        },
    }
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")


@dataclass
class Comparison:
    """Cases worse or better than the table, and cases the table or the report lacks."""

    worse: list[tuple[CaseResult, tuple[str, str]]] = field(default_factory=list)
    better: list[tuple[CaseResult, tuple[str, str]]] = field(default_factory=list)
    not_in_table: list[CaseResult] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    def describe(self, worse: bool = True, better: bool = True) -> str:
        """The cases worse than the table (``worse``), better (``better``), and those missing on either side."""
        lines = []
        groups = (
            ("WORSE than expected", self.worse if worse else []),
            ("better than expected (update expected.json)", self.better if better else []),
        )
        for title, entries in groups:
            if entries:
                lines.append(f"{len(entries)} case(s) {title}:")
                for result, (behavior, close) in entries:
                    lines.append(
                        f"  {result.case}: {behavior}/{close} -> {result.behavior}/{result.behavior_close}"
                        f"  [{result.summary()}]  reason: {result.why()}"
                    )
        if self.not_in_table:
            lines.append(
                f"{len(self.not_in_table)} case(s) not in expected.json: "
                + ", ".join(f"{result.case}={result.behavior}" for result in self.not_in_table)
            )
        if self.not_run:
            lines.append(f"{len(self.not_run)} case(s) selected but missing from the report: {', '.join(self.not_run)}")
        return "\n".join(lines)


def compare(
    results: dict[str, CaseResult], expected: dict[str, tuple[str, str]], selected: list[str] | None = None
) -> Comparison:
    """Each case of ``results`` against the table; ``selected`` (case ids) must all be in ``results``."""
    comparison = Comparison()
    for case, result in results.items():
        if case not in expected:
            comparison.not_in_table.append(result)
            continue
        behavior, close = expected[case]
        got = (rank(result.behavior), rank(result.behavior_close))
        want = (rank(behavior), rank(close))
        if got[0] < want[0] or got[1] < want[1]:
            comparison.worse.append((result, (behavior, close)))
        elif got != want:
            comparison.better.append((result, (behavior, close)))
    comparison.not_run = [case for case in selected or [] if case not in results]
    return comparison


def count_by_section(results: dict[str, CaseResult]) -> dict[str, Counter[str]]:
    """section -> how many cases got each behavior."""
    sections: dict[str, Counter[str]] = {}
    for case, result in results.items():
        sections.setdefault(section_of(case), Counter())[result.behavior] += 1
    return dict(sorted(sections.items(), key=lambda item: case_key(item[0])))
