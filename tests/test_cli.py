"""The top-level command line: help, unknown commands, `runs`."""
from __future__ import annotations

import subprocess
import sys


def perfkit(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perfkit", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_help_lists_the_contract_commands():
    res = perfkit("--help")
    assert res.returncode == 0
    for name in ("serve-demo", "bench", "sweep", "ingest", "prometheus", "runs", "report"):
        assert name in res.stdout, name


def test_unknown_command_is_one_line_exit_2():
    res = perfkit("frobnicate")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "frobnicate" in res.stderr


def test_runs_on_missing_database_is_exit_2(tmp_path):
    res = perfkit("runs", "--db", str(tmp_path / "none.duckdb"))
    assert res.returncode == 2
    assert "no such database" in res.stderr
    assert "Traceback" not in res.stderr


def test_runs_on_empty_database(tmp_path):
    from perfkit import store

    store.connect(tmp_path / "p.duckdb").close()
    res = perfkit("runs", "--db", str(tmp_path / "p.duckdb"))
    assert res.returncode == 0
    assert "no runs yet" in res.stdout


def test_report_list_suite_prints_the_plan():
    res = perfkit("report", "--list-suite")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "suite default:"
    assert any(line.startswith("  case   steady ") for line in lines)
    assert any(line.startswith("  report 06_tco ") for line in lines)


def test_report_suite_errors_are_one_line_exit_2():
    unknown = perfkit("report", "--suite", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == ["perfkit report: unknown suite 'nope' (known: default)"]
    both = perfkit("report", "01", "--suite", "default")
    assert both.returncode == 2
    assert "give either NOTEBOOK or --suite" in both.stderr and len(both.stderr.strip().splitlines()) == 1
