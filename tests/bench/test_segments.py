"""Schedule segments (``perfkit bench --segment I/N --start-at``), the clock check and ``perfkit merge``."""
from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import numpy as np
import pytest

from perfkit.bench import schedule
from perfkit.bench.merge import check_segments
from perfkit.bench.schedule import Stage
from perfkit.bench.segments import NOT_CHECKED, Segment, check_clock, clock_offset, parse_start, schedule_id
from perfkit.errors import UsageError
from perfkit.quantiles import percentiles


def test_segment_parse_and_refusals():
    assert Segment.parse("2/3") == Segment(2, 3)
    for bad in ("3/3", "-1/3", "1", "a/b", "0/0"):
        with pytest.raises(UsageError, match="--segment"):
            Segment.parse(bad)


def test_segments_are_the_worker_split_and_cover_the_schedule_once():
    seqs = np.arange(1001)
    parts = [schedule.share(seqs, i, 3) for i in range(3)]
    assert all((p % 3 == i).all() for i, p in enumerate(parts))
    assert np.array_equal(np.sort(np.concatenate(parts)), seqs)


def test_start_at_absolute_relative_and_past():
    assert parse_start("1000.5", now=1000.0) == 1000.5
    assert parse_start("+2", now=1000.0) == 1002.0
    assert parse_start("999.5", now=1000.0) == 999.5  # within the one second allowed
    with pytest.raises(UsageError, match="in the past"):
        parse_start("998", now=1000.0)
    with pytest.raises(UsageError, match="Unix time"):
        parse_start("soon", now=1000.0)


def test_schedule_id_changes_with_stages_seed_and_count():
    st = [Stage(pattern="poisson", rate_rps=100, duration_s=2)]
    base = schedule_id(st, 0, 200)
    assert base == schedule_id(list(st), 0, 200)
    assert len({base, schedule_id(st, 1, 200), schedule_id(st, 0, 201),
                schedule_id([Stage(pattern="poisson", rate_rps=101, duration_s=2)], 0, 200)}) == 4


def _fetch(offset_s: float, rtt_s: float):
    """A fake reference whose clock is ``offset_s`` ahead, answering after ``rtt_s``."""
    def fetch(url: str) -> tuple[float, float, float]:
        sent = 1000.0
        return sent, sent + rtt_s / 2 + offset_s, sent + rtt_s
    return fetch


def test_clock_offset_within_and_beyond_the_bound():
    rec = clock_offset("http://u:pw@ref/health", 2.5, fetch=_fetch(0.001, 0.0004))
    assert rec["offset_ms"] == pytest.approx(1.0, abs=1e-6) and rec["rtt_ms"] == pytest.approx(0.4, abs=1e-6)
    assert "pw" not in rec["reference"]
    with pytest.raises(UsageError, match="clock offset \\+3.00 ms"):
        clock_offset("http://ref/health", 2.5, fetch=_fetch(0.003, 0.0004))
    with pytest.raises(UsageError, match="round trip"):
        clock_offset("http://ref/health", 2.5, fetch=_fetch(0.0, 0.010))
    assert check_clock(None, 5.0) == NOT_CHECKED


def _seg(index: int, count: int = 3, sid: str = "abc", t0: float = 10.0, path: str | None = None) -> dict:
    return {"_path": path or f"seg{index}.duckdb", "t0_unix_s": t0,
            "scenario": {"segment": {"index": index, "count": count, "schedule_id": sid, "scheduled_total": 9}}}


def test_merge_refuses_what_is_not_one_schedule():
    assert [r["scenario"]["segment"]["index"] for r in check_segments([_seg(2), _seg(0), _seg(1)])] == [0, 1, 2]
    cases = [([_seg(0), _seg(1), _seg(2, sid="other")], "another schedule"),
             ([_seg(0), _seg(1), _seg(1)], "segment 1 given more than once"),
             ([_seg(0), _seg(2)], "segment 1 of 3 missing"),
             ([_seg(0), _seg(1, count=2)], "N differs"),
             ([_seg(0), _seg(1), _seg(2, t0=11.0)], "another time")]
    for runs, message in cases:
        with pytest.raises(UsageError, match=message):
            check_segments(runs)


def _bench(url: str, db, i: int, start: float, rate: float, duration: float, seed: int):
    return subprocess.Popen(
        [sys.executable, "-m", "perfkit", "bench", "--target", url, "--pattern", "poisson", "--rate", str(rate),
         "--duration", str(duration), "--seed", str(seed), "--segment", f"{i}/3", "--start-at", repr(start),
         "--clock-ref", url + "/health", "--db", str(db), "--no-collect", "--quiet", "--min-duration-s", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_three_segments_merge_into_the_single_instance_schedule(demo, tmp_path):
    rate, duration, seed = 300.0, 3.0, 7
    # One absolute start for the three processes (`+S` would be read by each on its own start).
    start = time.time() + 10
    dbs = [tmp_path / f"seg{i}.duckdb" for i in range(3)]
    procs = [_bench(demo.url, db, i, start, rate, duration, seed) for i, db in enumerate(dbs)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    out = tmp_path / "merged.duckdb"
    res = subprocess.run([sys.executable, "-m", "perfkit", "merge", "--db", str(out), *map(str, dbs)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr

    offsets, _, _ = schedule.build([Stage(pattern="poisson", rate_rps=rate, duration_s=duration)], seed)
    expected = start + np.rint(offsets * 1e9).astype(np.int64) / 1e9
    union = []
    for i, db in enumerate(dbs):
        with duckdb.connect(str(db), read_only=True) as con:
            seqs, lat = con.execute("SELECT seq, latency_ms FROM requests WHERE error_kind IS NULL").fetchnumpy(
                ).values()
            scen = con.execute("SELECT scenario::VARCHAR FROM runs").fetchone()[0]
            assert (seqs % 3 == i).all() and '"clock": {' in scen and f'"index": {i}' in scen
            union.append(lat)
    with duckdb.connect(str(out), read_only=True) as con:
        seq, intended = con.execute("SELECT seq, intended_unix_s FROM requests ORDER BY seq").fetchnumpy().values()
        summary = con.execute("SELECT summary::VARCHAR FROM runs").fetchone()[0]
    assert np.array_equal(seq, np.arange(len(offsets)))
    assert np.array_equal(intended, expected)  # exactly: the same float operations on the same integers
    import json

    merged = json.loads(summary)
    assert merged["scheduled"] == len(offsets) and merged["requests"] == len(offsets)
    want = percentiles(np.concatenate(union))
    for key in ("n", "p50", "p90", "p99", "p999", "max"):
        assert merged["latency_ms"][key] == want[key], key

    again = subprocess.run([sys.executable, "-m", "perfkit", "merge", "--db", str(tmp_path / "x.duckdb"),
                            str(dbs[0]), str(dbs[0]), str(dbs[2])], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "given more than once" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
