"""Warm-up and cool-down (``--warmup-s``/``--cooldown-s``): phase windows at their edges, the
``requests.phase`` column, statistics over the measured phase only, and databases from before it."""
from __future__ import annotations

import io

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from factories import make_run, store_before
from perfkit import store
from perfkit.bench import BenchConfig, Stage, run
from perfkit.bench.cli import add_load_arguments, config_from_args, phase_line, print_summary
from perfkit.bench.engine import COLUMNS
from perfkit.bench.recorder import to_table
from perfkit.bench.schedule import PHASES, Phases
from perfkit.bench.summary import summarize
from perfkit.errors import UsageError
from perfkit.quantiles import percentiles
from perfkit.store import runs, write

S = 1_000_000_000  # ns per second


# ---- pure: phase assignment ----------------------------------------------------------------------

def test_phase_edges_warmup_end_is_measured_and_cooldown_start_is_cooldown():
    ph = Phases(1.0, 1.0, 3.0)
    offsets = np.array([0, S - 1, S, 2 * S - 1, 2 * S, 3 * S - 1, 4 * S])
    names = [PHASES[c] for c in ph.codes(offsets)]
    assert names == ["warmup", "warmup", "measure", "measure", "cooldown", "cooldown", "cooldown"]


def test_no_windows_means_every_request_is_measured():
    assert set(Phases(0.0, 0.0, 3.0).codes(np.array([0, S, 5 * S])).tolist()) == {1}
    assert Phases(0.0, 0.0, 3.0).summary({"measure": 3}) is None
    # only a warm-up: nothing is cool-down, however late (closed loop sends past the schedule)
    assert [PHASES[c] for c in Phases(0.5, 0.0, 2.0).codes(np.array([0, S // 2, 9 * S]))] == \
        ["warmup", "measure", "measure"]


def test_windows_in_fractional_seconds_compare_in_nanoseconds():
    ph = Phases(0.25, 0.1, 1.0)  # measured [0.25, 0.9)
    codes = ph.codes(np.array([249_999_999, 250_000_000, 899_999_999, 900_000_000]))
    assert [PHASES[c] for c in codes] == ["warmup", "measure", "measure", "cooldown"]


@pytest.mark.parametrize("warm, cool, total", [(-1.0, 0.0, 10.0), (0.0, float("nan"), 10.0),
                                               (5.0, 5.0, 10.0), (10.0, 0.0, 10.0), (0.0, 12.0, 10.0)])
def test_windows_that_leave_nothing_to_measure_are_refused(warm, cool, total):
    with pytest.raises(UsageError):
        Phases(warm, cool, total).check()


def test_summary_block_states_windows_and_counts():
    block = Phases(2.0, 1.0, 10.0).summary({"warmup": 40, "measure": 140})
    assert block is not None
    assert (block["measure_start_s"], block["measure_end_s"], block["schedule_s"]) == (2.0, 9.0, 10.0)
    assert block["requests"] == {"warmup": 40, "measure": 140, "cooldown": 0}
    assert "measured window" in block["definition"]
    assert phase_line(block) == "warm-up 2 s (n=40) and cool-down 1 s (n=0) excluded"
    only_warm = Phases(5.0, 0.0, 20.0).summary({"warmup": 40, "measure": 120})
    assert only_warm is not None and phase_line(only_warm) == "warm-up 5 s (n=40) excluded"


def test_recorder_writes_each_rows_phase_from_its_intended_offset():
    t0 = 7 * S
    batch = np.zeros((5, len(COLUMNS)), dtype=np.int64)
    c = {name: i for i, name in enumerate(COLUMNS)}
    batch[:, c["seq"]] = np.arange(5)
    batch[:, c["intended_ns"]] = t0 + np.array([0, S - 1, S, 2 * S - 1, 2 * S])
    batch[:, c["done_ns"]] = batch[:, c["intended_ns"]] + 1000
    table = to_table(batch, 0, t0, 1e9, ["fixed"], np.array([10]), False, phases=Phases(1.0, 1.0, 3.0))
    assert table.column("phase").to_pylist() == ["warmup", "warmup", "measure", "measure", "cooldown"]
    assert "phase" not in to_table(batch, 0, t0, 1e9, ["fixed"], np.array([10]), False).column_names


# ---- configuration -------------------------------------------------------------------------------

def _args(*argv: str):
    import argparse

    p = argparse.ArgumentParser()
    add_load_arguments(p)
    return p.parse_args(list(argv))


def test_flags_and_scenario_keys_set_the_windows(tmp_path):
    cfg = config_from_args(_args("--target", "http://127.0.0.1:9", "--rate", "5", "--duration", "10",
                                 "--warmup-s", "2", "--cooldown-s", "1.5"))
    assert (cfg.warmup_s, cfg.cooldown_s) == (2.0, 1.5)
    cfg.validate()
    assert cfg.public()["warmup_s"] == 2.0
    scen = tmp_path / "s.toml"
    scen.write_text('target = "http://127.0.0.1:9"\nwarmup_s = 3\ncooldown_s = 1\n'
                    '[[stage]]\nrate = 5\nduration = 4\n[[stage]]\nrate = 10\nduration = 4\n')
    cfg = config_from_args(_args(str(scen)))
    assert (cfg.warmup_s, cfg.cooldown_s) == (3.0, 1.0)
    assert config_from_args(_args(str(scen), "--warmup-s", "0")).warmup_s == 0.0  # a flag wins


def test_windows_longer_than_the_schedule_are_a_usage_error():
    cfg = BenchConfig(target="http://127.0.0.1:9", stages=[Stage("constant", duration_s=3.0, rate_rps=5.0)],
                      warmup_s=2.0, cooldown_s=1.0)
    with pytest.raises(UsageError, match="nothing to measure"):
        cfg.validate()


# ---- the store: statistics over the measured phase; databases from before 0011 -------------------

def _requests(con, run_id: str, phases: list[str | None]) -> None:
    n = len(phases)
    lat = np.arange(1, n + 1, dtype=float) * 10.0  # 10, 20, ... ms: warm-up rows come first, so they are smallest
    write.insert_requests(con, run_id, pa.table({
        "seq": np.arange(n), "intended_unix_s": 100.0 + np.arange(n), "sent_unix_s": 100.0 + np.arange(n),
        "done_unix_s": 100.0 + np.arange(n) + lat / 1e3, "latency_ms": lat, "service_ms": lat,
        "phase": pa.array(phases, pa.string())}))


def test_store_readers_leave_out_warmup_and_cooldown(tmp_path):
    with store.connect(tmp_path / "p.duckdb") as con:
        make_run(con, "r", t0_unix_s=100.0)
        phases = ["warmup"] * 3 + ["measure"] * 10 + ["cooldown"] * 2
        _requests(con, "r", phases)
        measured = np.arange(4, 14) * 10.0
        est = runs.percentiles(con, "r", qs=(0.5, 0.99))
        assert est[0.5].n == 10 and est[0.5].value == percentiles(measured)["p50"]
        assert est[0.99].value == percentiles(measured)["p99"] == 130.0
        assert runs.totals(con, "r")["requests"] == 10
        assert runs.count(con, "r") == 10 and len(runs.values(con, "r")) == 10
        assert runs.goodput(con, "r", {"latency_ms": 1000.0})["requests"] == 10
        assert runs.schedule_lag(con, "r")["requests"] == 10
        assert int(runs.windows(con, "r")["requests"].sum()) == 10
        assert runs.request_sequence(con, "r")[2] == 10
        assert runs.count_over(con, "r", 0.0) == 10
        assert runs.phase_counts(con, "r") == {"warmup": 3, "measure": 10, "cooldown": 2}
        # the time series behind the figures keep every phase (the figures shade them)
        assert int(runs.window_percentiles(con, "r", 100.0, 5.0, {"p50": 0.5})["n"].sum()) == 15


def test_database_from_before_0011_reads_null_phase_as_measured(tmp_path):
    path = tmp_path / "old.duckdb"
    con = store_before(path, 11)
    make_run(con, "old", t0_unix_s=100.0, protocol="http-json", scenario={"scheduled": 4})
    con.execute("INSERT INTO requests (run_id, seq, intended_unix_s, sent_unix_s, done_unix_s, latency_ms, "
                "service_ms) VALUES ('old', 0, 100, 100, 100.01, 10, 10), ('old', 1, 101, 101, 101.02, 20, 20), "
                "('old', 2, 102, 102, 102.03, 30, 30), ('old', 3, 103, 103, 103.04, 40, 40)")
    con.close()
    with store.connect(path) as con:
        assert store.schema_version(con) >= 11
        assert con.execute("SELECT count(*) FROM requests WHERE phase IS NULL").fetchone()[0] == 4
        assert runs.percentiles(con, "old", qs=(0.5,))[0.5].n == 4
        assert runs.totals(con, "old")["requests"] == 4
        s = summarize(con, "old")
    assert s["requests"] == 4 and s["latency_ms"]["n"] == 4 and s["never_sent"] == 0
    assert "phases" not in s


# ---- end to end against the demo server ----------------------------------------------------------

@pytest.mark.slow
def test_warmup_and_cooldown_run_against_the_demo_server(demo, tmp_path):
    from perfkit.plots.benchmark import latency_over_time, throughput_errors
    from perfkit.report.benchmark import load_run

    db = tmp_path / "w.duckdb"
    s = run(config_from_args(_args("--target", demo.url, "--rate", "20", "--duration", "3", "--warmup-s", "1",
                                   "--cooldown-s", "1", "--db", str(db), "--quiet", "--no-collect",
                                   "--min-duration-s", "1")))
    assert s["status"] == "completed" and s["scheduled"] == 60 and s["never_sent"] == 0
    assert s["phases"]["requests"] == {"warmup": 20, "measure": 20, "cooldown": 20}
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT seq, phase, intended_unix_s, latency_ms, error_kind IS NULL FROM requests "
                       "WHERE run_id = ? ORDER BY seq", [s["run_id"]]).fetchall()
    t0 = con.execute("SELECT t0_unix_s FROM runs WHERE run_id = ?", [s["run_id"]]).fetchone()[0]
    con.close()
    # constant 20 req/s: request i is intended at i / 20 s, so seq 0-19 warm up and 40-59 cool down
    assert [r[1] for r in rows] == ["warmup"] * 20 + ["measure"] * 20 + ["cooldown"] * 20
    assert all(1.0 - 1e-3 <= r[2] - t0 < 2.0 for r in rows if r[1] == "measure")
    measured = np.array([r[3] for r in rows if r[1] == "measure" and r[4]])
    assert s["requests"] == 20 and s["latency_ms"]["n"] == len(measured) == s["ok"]
    expected = percentiles(measured)
    for key in ("p50", "p90", "p99", "max"):
        assert s["latency_ms"][key] == pytest.approx(expected[key])
    assert s["duration_s"] < 1.5  # the measured window (1 s and the last answers), not the 3 s schedule
    out = io.StringIO()
    print_summary(s, out)
    assert "warm-up 1 s (n=20) and cool-down 1 s (n=20) excluded" in out.getvalue()
    # the 01 report: its percentile table counts the measured phase, its figures shade the others
    data = load_run(str(db), s["run_id"])
    assert data.n_ok == 20 and data.latency[0.99].value == pytest.approx(expected["p99"])
    assert [(p.name, p.start_s, p.end_s, p.n) for p in data.phases] == \
        [("warm-up", 0.0, 1.0, 20), ("cool-down", 2.0, 3.0, 20)]
    for fig in (latency_over_time(data), throughput_errors(data)):
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert any("warm-up" in t and "excluded from statistics" in t for t in labels)
        assert any("cool-down" in t and "excluded from statistics" in t for t in labels)
