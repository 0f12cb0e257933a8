"""Fixtures of the report tests: a store holding one recorded run with known rows."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from perfkit import store


def write_run(db: Path, run_id: str = "20261125T030000Z-abc123", n: int = 2000, rate_rps: float = 100.0,
              label: str = "suite=t,case=steady", error_every: int = 97, seed: int = 7) -> dict:
    """Record a constant-rate run with lognormal latencies, a 1 s stall and some 5xx errors."""
    rng = np.random.default_rng(seed)
    t0 = 1_795_000_000.0
    intended = t0 + np.arange(n) / rate_rps
    sent = intended + rng.exponential(0.0004, n)
    service_ms = rng.lognormal(np.log(8.0), 0.35, n)
    stall = (intended - t0 >= 10.0) & (intended - t0 < 11.0)
    done = sent + service_ms / 1000.0
    done[stall] = np.maximum(done[stall], t0 + 11.0 + service_ms[stall] / 1000.0)
    latency_ms = (done - intended) * 1000.0
    err = np.zeros(n, dtype=bool)
    err[::error_every] = True
    summary = {"format_version": 1, "run_id": run_id, "status": "completed", "requests": n,
               "ok": int((~err).sum()), "errors": {"http_5xx": int(err.sum())},
               "intended_rate_rps": rate_rps, "achieved_rate_rps": rate_rps * (~err).mean(),
               "duration_s": n / rate_rps, "valid": True,
               "validity": {"min_duration_met": True, "early_stopping_met": True}}
    machine = {"hostname": "testhost", "cpu_model": "Test CPU", "cpu_cores_logical": 2,
               "memory_bytes": 8 * 2**30, "gpus": [], "perfkit_version": "0.1.0", "git_commit": None}
    started = dt.datetime.fromtimestamp(t0, dt.timezone.utc)
    con = store.connect(db)
    with store.transaction(con):
        con.execute(
            "INSERT INTO runs (run_id, label, labels, target, protocol, pattern, scenario, started_at, "
            "ended_at, t0_unix_s, status, intended_rate_rps, duration_s, tool, tool_version, machine, summary) "
            "VALUES (?, ?, ?, ?, 'http-json', 'constant', '{}', ?, ?, ?, 'completed', ?, ?, 'perfkit', '0.1.0', ?, ?)",
            [run_id, label, json.dumps(store.parse_label(label)), "http://127.0.0.1:9/v1/predict", started,
             started + dt.timedelta(seconds=n / rate_rps), t0, rate_rps, n / rate_rps,
             json.dumps(machine), json.dumps(summary)])
        rows = [(run_id, i, 0, 0, float(intended[i]), float(sent[i]), float(done[i]), float(latency_ms[i]),
                 float((done[i] - sent[i]) * 1000.0), 503 if err[i] else 200, "http_5xx" if err[i] else None)
                for i in range(n)]
        con.executemany(
            "INSERT INTO requests (run_id, seq, worker, stage, intended_unix_s, sent_unix_s, done_unix_s, "
            "latency_ms, service_ms, status_code, error_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return {"run_id": run_id, "latency_ms": latency_ms, "error": err, "n": n}


@pytest.fixture
def run_db(tmp_path: Path) -> tuple[Path, dict]:
    """A fresh store with one recorded run (see :func:`write_run`)."""
    db = tmp_path / "report.duckdb"
    return db, write_run(db)
