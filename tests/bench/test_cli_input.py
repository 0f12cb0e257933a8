"""Bad input: one clear line on stderr, exit 2, and nothing written to the database."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def bench(tmp_path, *args):
    db = tmp_path / "r.duckdb"
    res = subprocess.run([sys.executable, "-m", "perfkit", "bench", "--db", str(db), "--no-collect", "--quiet", *args],
                         capture_output=True, text=True, timeout=120)
    return res, db


@pytest.mark.parametrize("args,message", [
    (["--target", "127.0.0.1:8000", "--rate", "5", "--duration", "1"], "malformed --target URL"),
    (["--target", "http://127.0.0.1:1", "--rate", "0", "--duration", "1"], "--rate must be > 0"),
    (["--target", "http://127.0.0.1:1", "--rate", "5", "--duration", "0"], "--duration must be > 0"),
    (["--target", "http://127.0.0.1:1", "--rate", "5", "--duration", "1", "--teleport"], "unrecognized arguments"),
    (["--target", "http://127.0.0.1:1", "--rate", "five", "--duration", "1"], "invalid float value"),
    (["--target", "http://127.0.0.1:1", "--rate", "5", "--duration", "1", "--bearer-env", "PK_NOPE_UNSET"],
     "no such environment variable"),
    (["--target", "http://127.0.0.1:1", "--rate", "5", "--duration", "1", "--header", "NoColon"],
     "--header must look like"),
])
def test_bad_flags(tmp_path, args, message):
    res, db = bench(tmp_path, *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not db.exists()


def test_bad_payload_file_names_file_and_line(tmp_path):
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text('{"input_data": [1]}\n{"input_data": [\n')
    res, db = bench(tmp_path, "--target", "http://127.0.0.1:1", "--rate", "5", "--duration", "1",
                    "--payload", str(bodies))
    assert res.returncode == 2 and "bodies.jsonl:2: not valid JSON" in res.stderr
    assert not db.exists()


def test_replay_trace_from_cli(tmp_path, demo):
    trace = tmp_path / "trace.csv"
    trace.write_text("offset_s\n0\n0.1\n0.1\n0.35\n")
    res, db = bench(tmp_path, "--target", demo.url, "--pattern", "replay", "--trace", str(trace),
                    "--summary-json", str(tmp_path / "s.json"))
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["requests"] == 4 and s["pattern"] == "replay"


def test_a_signal_that_a_library_turns_into_its_own_error_at_start_up_is_an_interruption(monkeypatch, capsys):
    """DuckDB runs Python signal handlers inside a query and re-raises the handler's exception as
    its own ``RuntimeError: Query interrupted`` (seen with a SIGINT during the store's migrations):
    the bench still exits 130 with one line, no traceback. An error without a signal stays an error."""
    import signal

    import pytest

    from perfkit.bench import runner
    from perfkit.cli import main

    def interrupted_inside_a_query(cfg, stop):
        try:
            stop._handle(signal.SIGINT, None)  # what the SIGINT handler does when the signal lands
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None

    monkeypatch.setattr(runner, "run", interrupted_inside_a_query)
    argv = ["bench", "--target", "http://127.0.0.1:9", "--rate", "1", "--duration", "1", "--no-collect"]
    assert main(argv) == 130
    assert "interrupted by SIGINT before the first request" in capsys.readouterr().err

    def plain_error(cfg, stop):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(runner, "run", plain_error)
    with pytest.raises(RuntimeError, match="a real bug"):
        main(argv)
