"""Recorded runs with known rows for the report tests (``from report_runs import write_run``)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from factories import make_run

from perfkit import store
from perfkit.bench.summary import summary_from_frame
from perfkit.jsonsafe import json_safe


def add_requests(con, run_id: str, frame: pd.DataFrame) -> None:
    """Insert per-request rows (any ``requests`` columns, by name) for ``run_id``, ``seq`` in row order."""
    rows = frame.assign(run_id=run_id, seq=np.arange(len(frame)))  # noqa: F841 (read by DuckDB)
    con.execute("INSERT INTO requests BY NAME SELECT * FROM rows")


def write_run(db: Path, run_id: str = "20261125T030000Z-abc123", n: int = 2000, rate_rps: float = 100.0,
              labels: dict[str, str] | None = None, error_every: int = 97, seed: int = 7) -> dict:
    """Record a constant-rate run with lognormal latencies, a 1 s stall and some 5xx errors, summarized
    as ``perfkit bench`` does."""
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
    cols = {"ok": ~err, "seq": np.arange(n), "latency_ms": latency_ms, "service_ms": (done - sent) * 1000.0,
            "connect_ms": np.full(n, np.nan), "intended_unix_s": intended, "sent_unix_s": sent,
            "done_unix_s": done, "errors": {"http_5xx": int(err.sum())}}
    summary = json_safe(summary_from_frame(cols, {
        "run_id": run_id, "status": "completed", "protocol": "http-json", "pattern": "constant", "t0_unix_s": t0,
        "intended_rate_rps": rate_rps, "scenario": {"workers": 1, "scheduled": n}}))
    machine = {"hostname": "testhost", "cpu_model": "Test CPU", "cpu_cores_logical": 2,
               "memory_bytes": 8 * 2**30, "gpus": [], "perfkit_version": "0.1.0", "git_commit": None}
    started = dt.datetime.fromtimestamp(t0, dt.timezone.utc)
    con = store.connect(db)
    with store.transaction(con):
        make_run(con, run_id, labels=labels or {"suite": "t", "case": "steady"}, summary=summary,
                 target="http://127.0.0.1:9/v1/predict", protocol="http-json", pattern="constant",
                 scenario={}, started_at=started, ended_at=started + dt.timedelta(seconds=n / rate_rps),
                 t0_unix_s=t0, intended_rate_rps=rate_rps, duration_s=n / rate_rps, tool="perfkit",
                 tool_version="0.1.0", machine=machine)
        add_requests(con, run_id, pd.DataFrame({
            "worker": 0, "stage": 0, "intended_unix_s": intended, "sent_unix_s": sent, "done_unix_s": done,
            "latency_ms": latency_ms, "service_ms": (done - sent) * 1000.0,
            "status_code": np.where(err, 503, 200), "error_kind": np.where(err, "http_5xx", None)}))
    con.close()
    return {"run_id": run_id, "latency_ms": latency_ms, "error": err, "n": n, "t0": t0,
            "intended": intended, "sent": sent, "done": done}

