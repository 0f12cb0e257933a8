"""Synthetic runs written through the real store (for analyze tests): requests rows and demo-server series."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from perfkit import store


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
    labels = store.parse_label(label)
    with store.transaction(con):
        con.execute(
            "INSERT INTO runs (run_id, label, labels, target, protocol, pattern, scenario, started_at, ended_at,"
            " t0_unix_s, status, intended_rate_rps, duration_s, tool, summary) VALUES"
            " (?, ?, ?, 'http://127.0.0.1:1/api/v1/infer', 'http-json', 'constant', ?, to_timestamp(?),"
            " to_timestamp(?), ?, 'completed', ?, ?, 'synthetic', '{}')",
            [run_id, label, json.dumps(labels), json.dumps(scenario or {}), float(intended[0]),
             float(done.max()), float(intended[0]), rate_rps, float(intended[-1] - intended[0])])
        con.register("synth_frame", frame)
        con.execute("INSERT INTO requests (run_id, seq, worker, stage, intended_unix_s, sent_unix_s,"
                    " first_byte_unix_s, done_unix_s, latency_ms, service_ms, status_code, error_kind)"
                    " SELECT run_id, seq, worker, stage, intended_unix_s, sent_unix_s, first_byte_unix_s,"
                    " done_unix_s, latency_ms, service_ms, status_code, error_kind FROM synth_frame")
        con.unregister("synth_frame")
    return run_id


def insert_series(con, run_id: str | None, kind: str, rows: list[tuple[str, dict, float | None, float]],
                  path: str = "synthetic") -> int:
    """Series/samples under one new source: rows of (name, labels, ts_unix_s, value)."""
    with store.transaction(con):
        sid = con.execute("SELECT nextval('source_id_seq')").fetchone()[0]
        con.execute("INSERT INTO sources (source_id, kind, path, sha256, row_count, run_id) VALUES (?, ?, ?, ?, ?, ?)",
                    [sid, kind, path, f"synthetic-{sid}", len(rows), run_id])
        ids: dict[tuple[str, str], int] = {}
        for name, labels, ts, value in rows:
            key = (name, json.dumps(labels, sort_keys=True))
            if key not in ids:
                ids[key] = con.execute("SELECT nextval('series_id_seq')").fetchone()[0]
                con.execute("INSERT INTO series (series_id, source_id, name, labels, unit, type) VALUES (?, ?, ?, ?, NULL, ?)",
                            [ids[key], sid, name, key[1],
                             "counter" if name.endswith(("_total", "_sum", "_count", "_bucket")) else "gauge"])
            con.execute("INSERT INTO samples VALUES (?, ?, ?)", [ids[key], ts, value])
    return sid
