"""Each server-side rule, present and absent, on every server kind the vocabulary maps.

The series are constructed, under each server's own names and units (those the
vocabulary reads off the real expositions in tests/data/server-metrics/), and
written to a store with the store's writer next to a run of requests; the rules
run through ``rootcause.diagnose``, so the evidence is gathered by canonical
signal exactly as for a benchmarked server.
"""
from __future__ import annotations

import numpy as np
import pytest

from analyze_synth import insert_run, insert_series
from perfkit import store
from perfkit.analyze import rootcause, vocabulary

T0, RATE, N, DT = 1.7e9, 100.0, 3000, 2.0
SCRAPES = T0 + DT * np.arange(16)                  # a scrape every 2 s over the 30-s run
DONE = np.clip((SCRAPES - T0) * RATE, 0, N)        # requests answered by each scrape


def _term(kind: str, key: str) -> vocabulary.Term | None:
    return next((t for t in vocabulary.terms(kind) if t.key == key), None)


def _write(con, kind: str, columns: dict[str, np.ndarray], scrapes: np.ndarray = SCRAPES) -> bool:
    """Canonical columns (per scrape; amounts cumulative) written under the server's names and units.

    False when the server has no name for one of them.
    """
    rows: dict[str, list] = {}
    for key, values in columns.items():
        term = _term(kind, key)
        if term is None:
            return False
        scale = term.canonical(1.0) - term.canonical(0.0)
        labels = dict(term.only) or {"model": "m", "endpoint": "/api/v1/infer"}
        rows[term.metric] = [(term.metric, labels, float(ts), (float(v) - term.offset) / scale)
                             for ts, v in zip(scrapes, values) if np.isfinite(v)]
    insert_series(con, "r", "scrape", [r for rs in rows.values() for r in rs])
    return True


def _findings(tmp_db, kind: str, columns: dict[str, np.ndarray], latency_ms: np.ndarray | None = None,
              intended: np.ndarray | None = None) -> list[str] | None:
    rng = np.random.default_rng(3)
    lat = rng.gamma(16, 2.5, N) if latency_ms is None else latency_ms   # mean 40 ms
    with store.connect(tmp_db) as con:
        insert_run(con, "r", lat, rate_rps=RATE, t0=T0, intended=intended)
        if not _write(con, kind, columns):
            return None
        return [f.rule for f in rootcause.diagnose(con, "r", gpu=False, server_kind=kind)]


KINDS = vocabulary.SERVER_KINDS


def _queue(kind: str, wait_s: float) -> dict[str, np.ndarray] | None:
    """Queue wait per request as the server counts it: a queue-time pair, else its queue's size."""
    if _term(kind, "queue_time_sum"):
        return {"queue_time_sum": DONE * wait_s, "queue_time_count": DONE,
                "server_time_sum": DONE * (wait_s + 0.006), "server_time_count": DONE}
    if _term(kind, "queue_depth_sum"):           # MLServer: sizes observed per request, L = lambda W
        return {"queue_depth_sum": DONE * RATE * wait_s, "queue_depth_count": DONE}
    if _term(kind, "queue_depth"):
        return {"queue_depth": np.full(len(SCRAPES), RATE * wait_s)}
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_queueing_on_every_server(tmp_db, kind):
    present, absent = _queue(kind, 0.030), _queue(kind, 0.002)
    if present is None or absent is None:   # KServe's model server counts no queue: no claim
        assert kind == "kserve"
        assert "queueing" not in (_findings(tmp_db, kind, {"compute_time_sum": DONE * 0.03,
                                                             "compute_time_count": DONE}) or [])
        return
    assert "queueing" in (_findings(tmp_db, kind, present) or [])
    assert "queueing" not in (_findings(tmp_db.with_name("b.duckdb"), kind, absent) or [])


def test_queueing_names_mlservers_own_queue_metric(tmp_db):
    with store.connect(tmp_db) as con:
        insert_run(con, "r", np.random.default_rng(3).gamma(16, 2.5, N), rate_rps=RATE, t0=T0)
        assert _write(con, "mlserver", _queue("mlserver", 0.030) or {})
        found = [f for f in rootcause.diagnose(con, "r", gpu=False) if f.rule == "queueing"]  # kind detected
    (f,) = found
    assert f.numbers["queue_metric"] == "parallel_request_queue_count, parallel_request_queue_sum"
    assert f.numbers["mean_queue_depth"] == pytest.approx(3.0)
    assert f.numbers["mean_queue_wait_ms"] == pytest.approx(30.0, rel=0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_littles_law_on_every_server(tmp_db, kind):
    # lambda W = 100 req/s x 40 ms = 4 requests; the server reads 2 (present) or 4 (absent)
    got = _findings(tmp_db, kind, {"in_flight": np.full(len(SCRAPES), 2.0)})
    if got is None:
        assert _term(kind, "in_flight") is None
        return
    assert "littles_law" in got
    assert "littles_law" not in (_findings(tmp_db.with_name("b.duckdb"), kind,
                                           {"in_flight": np.full(len(SCRAPES), 4.0)}) or [])


def _batching(batch: list[float], qwait_ms: list[float], server_ms: list[float]) -> dict[str, np.ndarray]:
    """Four low-load (20 req/s) then three high-load (80 req/s) scrape intervals of 2 s.

    The rule reads an interval from its own start, so the first is not judged.
    """
    rate = np.array([20, 20, 20, 20, 80, 80, 80], float)
    reqs = np.concatenate([[0], np.cumsum(rate * DT)])
    calls = np.concatenate([[0], np.cumsum(rate * DT / np.array(batch))])
    qsum = np.concatenate([[0], np.cumsum(rate * DT * np.array(qwait_ms) / 1000)])
    ssum = np.concatenate([[0], np.cumsum(rate * DT * np.array(server_ms) / 1000)])
    return {"inferences": reqs, "executions": calls, "queue_time_sum": qsum, "queue_time_count": reqs,
            "server_time_sum": ssum, "server_time_count": reqs}


FIXED = _batching([8] * 7, [35] * 4 + [28] * 3, [37] * 4 + [30] * 3)
DYNAMIC = _batching([1.2] * 4 + [3.5] * 3, [5] * 7, [6] * 7)


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_batching_on_every_server(tmp_db, kind):
    scrapes = SCRAPES[:8]
    with store.connect(tmp_db) as con:
        insert_run(con, "r", np.full(N, 40.0), rate_rps=RATE, t0=T0)
        if not _write(con, kind, FIXED, scrapes):
            assert not (_term(kind, "inferences") and _term(kind, "executions"))
            return
        found = rootcause.diagnose(con, "r", gpu=False, server_kind=kind)
    (f,) = [f for f in found if f.rule == "fixed_batching"]
    assert f.numbers["executed_batch_median"] == pytest.approx(8) and f.numbers["max_batch"] is None
    with store.connect(tmp_db.with_name("b.duckdb")) as con:
        insert_run(con, "r", np.full(N, 40.0), rate_rps=RATE, t0=T0)
        assert _write(con, kind, DYNAMIC, scrapes)
        assert "fixed_batching" not in [f.rule for f in rootcause.diagnose(con, "r", gpu=False,
                                                                          server_kind=kind)]


def test_the_articles_triton_case_batch_size_does_not_follow_load(tmp_db):
    """Triton: nv_inference_count / nv_inference_exec_count stays 32 while the load goes 1x -> 4x."""
    case = _batching([32] * 7, [120] * 4 + [40] * 3, [125] * 4 + [46] * 3)
    with store.connect(tmp_db) as con:
        insert_run(con, "r", np.full(N, 130.0), rate_rps=RATE, t0=T0)
        assert _write(con, "triton", case, SCRAPES[:8])
        found = rootcause.diagnose(con, "r", gpu=False)      # Triton detected from its names
        table = rootcause.batching_table(con, ["r"])
    (f,) = [f for f in found if f.rule == "fixed_batching"]
    assert f.numbers["executed_batch_median"] == pytest.approx(32)
    assert f.numbers["load_ratio_p90_p10"] == pytest.approx(4.0)
    assert f.numbers["queue_share_low_load"] == pytest.approx(120 / 125)
    assert table["requests_per_call"].iloc[0] == pytest.approx(32)


@pytest.mark.parametrize("kind", KINDS)
def test_cold_starts_on_every_server(tmp_db, kind):
    term = _term(kind, "model_load_time") or _term(kind, "model_loads")
    served = {"requests": DONE} if _term(kind, "requests") else {}
    lat = np.full(N, 40.0)
    lat[1200:1500] = 900.0                       # seconds 12-15: requests wait for the load
    load = np.where(SCRAPES >= T0 + 16, 1.5, np.nan)   # first seen by the scrape at 16 s: 1.5 s
    got = _findings(tmp_db, kind, {**served, "model_load_time": load}, latency_ms=lat)
    if term is None:
        assert got is None
        return
    assert "cold_start" in (got or [])
    warm = _findings(tmp_db.with_name("b.duckdb"), kind, {**served, "model_load_time": np.full(len(SCRAPES), 1.5)})
    assert "cold_start" not in (warm or [])


@pytest.mark.parametrize("kind", KINDS)
def test_kv_cache_pressure_on_every_server(tmp_db, kind):
    full = {"kv_cache_usage": np.full(len(SCRAPES), 0.97), "queue_depth": np.full(len(SCRAPES), 3.0)}
    got = _findings(tmp_db, kind, full)
    if got is None:
        assert _term(kind, "kv_cache_usage") is None
        return
    assert "kv_cache_pressure" in got
    roomy = {"kv_cache_usage": np.full(len(SCRAPES), 0.5), "queue_depth": np.zeros(len(SCRAPES))}
    assert "kv_cache_pressure" not in (_findings(tmp_db.with_name("b.duckdb"), kind, roomy) or [])
