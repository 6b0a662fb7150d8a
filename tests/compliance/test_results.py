"""How a fuzzing-server report is read and compared with the table, on a small report written here (no wstest)."""

from __future__ import annotations

import json
from pathlib import Path

from .results import EXPECTED, CaseResult, case_key, compare, count_by_section, load_expected, rank, read_report, save_expected

__all__: list[str] = []


def write_report(clients_dir: Path, agent: str, cases: dict[str, tuple[str, str]]) -> None:
    """An ``index.json`` and one case file per case, shaped as wstest writes them."""
    clients_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for case, (behavior, close) in cases.items():
        report_file = f"{agent}_case_{case.replace('.', '_')}.json"
        index[case] = {
            "behavior": behavior,
            "behaviorClose": close,
            "duration": 3,
            "remoteCloseCode": 1000,
            "reportfile": report_file,
        }
        details = {
            "description": f"case {case}",
            "expectation": "echo",
            "result": f"result of {case}",
            "resultClose": f"close of {case}",
        }
        (clients_dir / report_file).write_text(json.dumps(details), encoding="utf-8")
    (clients_dir / "index.json").write_text(json.dumps({agent: index, "other": {}}), encoding="utf-8")


def test_verdicts_rank_ok_over_non_strict_over_informational_over_failed() -> None:
    assert rank("OK") > rank("NON-STRICT") > rank("INFORMATIONAL") == rank("UNIMPLEMENTED") > rank("FAILED")
    assert rank("WRONG CODE") == rank("UNCLEAN") == rank("FAILED BY CLIENT") == rank("FAILED")
    assert sorted(["9.10.2", "9.2.1", "10.1.1", "1.1.8"], key=case_key) == ["1.1.8", "9.2.1", "9.10.2", "10.1.1"]


def test_a_worse_case_is_listed_with_its_description_and_reason_and_a_better_one_apart(tmp_path: Path) -> None:
    write_report(
        tmp_path,
        "nbsocket",
        {"1.1.1": ("OK", "OK"), "6.4.1": ("FAILED", "OK"), "7.1.5": ("OK", "OK"), "12.1.1": ("NON-STRICT", "WRONG CODE")},
    )
    results = read_report(tmp_path, "nbsocket")
    expected = {
        "1.1.1": ("OK", "OK"),
        "6.4.1": ("NON-STRICT", "OK"),
        "7.1.5": ("OK", "WRONG CODE"),
        "12.1.1": ("NON-STRICT", "OK"),
    }

    comparison = compare(results, expected, selected=["1.1.1", "6.4.1", "7.1.5", "12.1.1", "13.1.1"])

    assert [result.case for result, _ in comparison.worse] == ["6.4.1", "12.1.1"]
    assert [result.case for result, _ in comparison.better] == ["7.1.5"]
    assert comparison.not_run == ["13.1.1"]
    text = comparison.describe()
    assert "6.4.1: NON-STRICT/OK -> FAILED/OK  [case 6.4.1]  reason: result of 6.4.1" in text
    assert "close WRONG CODE: close of 12.1.1" in text
    assert count_by_section(results) == {"1": {"OK": 1}, "6": {"FAILED": 1}, "7": {"OK": 1}, "12.1": {"NON-STRICT": 1}}


def test_a_case_missing_from_the_table_is_reported(tmp_path: Path) -> None:
    write_report(tmp_path, "nbsocket", {"1.1.1": ("OK", "OK")})
    comparison = compare(read_report(tmp_path, "nbsocket"), {})
    assert [result.case for result in comparison.not_in_table] == ["1.1.1"]


def test_the_table_round_trips_and_keeps_only_closing_verdicts_that_are_not_ok(tmp_path: Path) -> None:
    path = tmp_path / "expected.json"
    save_expected({"7.1.5": CaseResult("7.1.5", "OK", "WRONG CODE"), "1.1.1": CaseResult("1.1.1", "OK", "OK")}, path)
    assert json.loads(path.read_text())["close"] == {"7.1.5": "WRONG CODE"}
    assert load_expected(path) == {"1.1.1": ("OK", "OK"), "7.1.5": ("OK", "WRONG CODE")}


def test_the_committed_table_covers_every_case_ci_runs() -> None:
    from .fuzzingserver import load_config

    table = load_expected(EXPECTED)
    sections = {case.split(".")[0] for case in table}
    for pattern in load_config()["cases"]:
        prefix = pattern.rstrip("*").rstrip(".")
        assert any(case == prefix or case.startswith(prefix + ".") for case in table), f"{pattern} has no case in {EXPECTED.name}"
    assert sections == {"1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"}  # Autobahn has no section 8 or 11
    assert set(table.values()) <= {
        (b, c)
        for b in ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
        for c in ("OK", "INFORMATIONAL", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT", "FAILED")
    }
