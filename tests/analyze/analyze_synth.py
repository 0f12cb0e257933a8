"""Synthetic runs written through the real store (for analyze tests): requests rows and demo-server series."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl

from factories import make_run
from perfkit import store
from perfkit.ingest.frames import from_long
from perfkit.ingest.importers import write_telemetry


def insert_run(con, run_id: str, latency_ms: np.ndarray, rate_rps: float = 100.0, t0: float = 1.7e9,
               label: str = "", errors: np.ndarray | None = None, lag_ms: np.ndarray | None = None,
               intended: np.ndarray | None = None, scenario: dict | None = None,
               unsent: np.ndarray | None = None) -> str:
    """A run with one request per latency value, sent on a constant schedule unless ``intended`` is given."""
    n = len(latency_ms)
    intended = t0 + np.arange(n) / rate_rps if intended is None else np.asarray(intended, float)
    lag = np.zeros(n) if lag_ms is None else np.asarray(lag_ms, float)
    sent = intended + lag / 1000.0
    if unsent is not None:
        sent = np.where(unsent, np.nan, sent)
    done = intended + np.asarray(latency_ms, float) / 1000.0
    err = np.zeros(n, bool) if errors is None else np.asarray(errors, bool)
    frame = pd.DataFrame({
        "run_id": run_id, "seq": np.arange(n), "worker": 0, "stage": 0,
        "intended_unix_s": intended, "sent_unix_s": sent, "first_byte_unix_s": done - 0.0001,
        "done_unix_s": done, "latency_ms": latency_ms, "service_ms": np.asarray(latency_ms) - lag,
        "status_code": np.where(err, 500, 200), "error_kind": np.where(err, "http_5xx", None),
    })
    with store.transaction(con):
        make_run(con, run_id, labels=store.parse_label(label), summary={},
                 started_at=_utc(float(intended[0])), ended_at=_utc(float(done.max())),
                 target="http://127.0.0.1:1/api/v1/infer", protocol="http-json", pattern="constant",
                 scenario=scenario or {}, t0_unix_s=float(intended[0]), intended_rate_rps=rate_rps,
                 duration_s=float(intended[-1] - intended[0]), tool="synthetic")
        con.register("synth_frame", frame)
        con.execute("INSERT INTO requests (run_id, seq, worker, stage, intended_unix_s, sent_unix_s,"
                    " first_byte_unix_s, done_unix_s, latency_ms, service_ms, status_code, error_kind)"
                    " SELECT run_id, seq, worker, stage, intended_unix_s, sent_unix_s, first_byte_unix_s,"
                    " done_unix_s, latency_ms, service_ms, status_code, error_kind FROM synth_frame")
        con.unregister("synth_frame")
    return run_id


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def insert_series(con, run_id: str | None, kind: str, rows: list[tuple[str, dict, float | None, float]],
                  path: str = "synthetic") -> int:
    """Series/samples under one new source, through the store's writer: rows of (name, labels, ts_unix_s, value)."""
    long = pl.DataFrame(
        [(name, json.dumps(labels, sort_keys=True), None,
          "counter" if name.endswith(("_total", "_sum", "_count", "_bucket")) else "gauge", ts, value)
         for name, labels, ts, value in rows],
        schema=["name", "labels", "unit", "type", "ts_unix_s", "value"], orient="row")
    with store.transaction(con):
        write_telemetry(con, from_long(long), kind=kind, path=path, sha256=None, run_id=run_id, label=None)
    return int(con.execute("SELECT max(source_id) FROM sources").fetchone()[0])
