"""The one way to read runs and their requests: SQL in DuckDB, small frames up.

The per-request table can hold tens of millions of rows; everything here pushes
the work into SQL (quantiles, per-window group-bys, counts) and hands small
frames or :class:`~perfkit.quantiles.Estimate` objects to the pure
functions in :mod:`perfkit.analyze.stats`. Values are always bound parameters.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd

from perfkit.names import SLO_SERIES
from perfkit.quantiles import Estimate, order_stat_ranks, proportion_ci, rank_index
from perfkit.store.db import StoreError

# Columns a caller may name as a latency-like metric (never interpolated from user text
# without passing this allow-list).
LATENCY_COLUMNS = ("latency_ms", "service_ms", "ttft_ms", "ttft_intended_ms", "tpot_ms", "itl_ms_max",
                   "schedule_lag_ms", "ttfb_ms", "connect_ms", "tpot_incl_ttft_ms", "itl_request_mean_ms")
#: The rows statistics are computed from: the measured phase of the schedule. Warm-up and
#: cool-down requests (``perfkit bench --warmup-s/--cooldown-s``) are stored but left out of
#: every percentile, count, rate and window here; the time series behind figures
#: (:func:`window_percentiles`, :func:`completion_bins`, :func:`sample_requests`,
#: :func:`latency_by_step`) keep them, for the figures to shade. NULL (rows written before
#: migration 0011, imported runs) is measured.
MEASURED = "coalesce(phase, 'measure') = 'measure'"
_COLUMN_SQL = {
    "latency_ms": "latency_ms",
    "service_ms": "service_ms",
    "ttft_ms": "ttft_ms",                    # first token - actual send
    "ttft_intended_ms": "ttft_intended_ms",  # first token - intended send (what a user waits)
    "tpot_ms": "tpot_ms",                    # (done - first token) / (output tokens - 1)
    "itl_ms_max": "itl_ms_max",              # the request's largest inter-token gap
    # (done - intended send) / output tokens: TPOT with TTFT included (guidellm's convention)
    "tpot_incl_ttft_ms": "latency_ms / nullif(output_tokens, 0)",
    # the mean of the request's own inter-token gaps (AIPerf's per-request ITL)
    "itl_request_mean_ms": "(SELECT avg(g.gap_ms) FROM token_gaps g "
                           "WHERE g.run_id = requests.run_id AND g.seq = requests.seq)",
    "schedule_lag_ms": "(sent_unix_s - intended_unix_s) * 1000.0",
    "ttfb_ms": "(first_byte_unix_s - sent_unix_s) * 1000.0",
    "connect_ms": "connect_ms",
}


def _row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row of an aggregate query (DuckDB always returns one for these)."""
    row = cur.fetchone()
    if row is None:  # pragma: no cover - an aggregate without GROUP BY always yields a row
        raise RuntimeError("aggregate query returned no row")
    return row


def list_runs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Runs, newest first, as a pandas frame."""
    return con.execute(
        """
        SELECT run_id, label, protocol, pattern, status, started_at, duration_s,
               intended_rate_rps,
               CAST(json_extract(summary, '$.requests') AS BIGINT) AS requests,
               CAST(json_extract(summary, '$.latency_ms.p99') AS DOUBLE) AS p99_ms,
               target
        FROM runs ORDER BY started_at DESC NULLS LAST, run_id DESC
        """
    ).df()


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """One run as a dict (JSON columns decoded); ``latest`` picks the newest run."""
    if run_id == "latest":
        rows = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC NULLS LAST LIMIT 1").fetchall()
        if not rows:
            raise StoreError("the database holds no runs yet")
        run_id = rows[0][0]
    cur = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        raise StoreError(f"no run with id {run_id!r} (see `perfkit runs`)")
    out = dict(zip(cols, rows[0]))
    for key in ("labels", "scenario", "machine", "summary"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def started_at(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> dict[str, Any]:
    """``run_id -> started_at`` of the given runs that exist (others are left out)."""
    rows = con.execute("SELECT run_id, started_at FROM runs WHERE run_id IN (SELECT unnest(?))",
                       [list(run_ids)]).fetchall()
    return {str(rid): started for rid, started in rows}


def run_window(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[str, float, float]:
    """(run_id, start, end) in epoch seconds; ``latest`` resolves to the newest run."""
    run = get_run(con, run_id)
    start = run.get("t0_unix_s")
    if start is None and run.get("started_at") is not None:
        start = _epoch(run["started_at"])
    end = None
    if run.get("ended_at") is not None:
        end = _epoch(run["ended_at"])
    elif start is not None and run.get("duration_s"):
        end = start + float(run["duration_s"])
    if start is None or end is None:
        raise ValueError(f"run {run['run_id']} has no start/end time to align on")
    return run["run_id"], float(start), float(end)


def _epoch(value: Any) -> float:
    """A TIMESTAMPTZ as DuckDB hands it (a datetime; naive means UTC) in epoch seconds."""
    return float(pd.Timestamp(value).timestamp())


def column_sql(metric: str) -> str:
    """SQL expression for a metric name from :data:`LATENCY_COLUMNS` (allow-list)."""
    try:
        return _COLUMN_SQL[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(LATENCY_COLUMNS)}") from None


def resolve_run_ids(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str] | None) -> list[str]:
    """Run ids from a comma-separated string or list; ``latest`` allowed.

    Empty: every run of the newest suite, i.e. the runs that share the newest
    run's ``suite`` label (``labels.suite``), or the newest run alone when it has none.
    Raises :class:`~perfkit.store.StoreError` for an unknown id.
    """
    if isinstance(run_ids, str):
        items = [r.strip() for r in run_ids.split(",") if r.strip()]
    else:
        items = [r for r in (run_ids or []) if r]
    if items:
        return [get_run(con, r)["run_id"] for r in items]
    newest = get_run(con, "latest")
    suite = (newest.get("labels") or {}).get("suite")
    if not suite:
        return [newest["run_id"]]
    rows = con.execute(
        "SELECT run_id FROM runs WHERE json_extract_string(labels, '$.suite') = ? "
        "ORDER BY started_at NULLS LAST, run_id", [suite]).fetchall()
    return [r[0] for r in rows]


def _where(ok_only: bool, measured: bool = True) -> str:
    return (" AND error_kind IS NULL" if ok_only else "") + (f" AND {MEASURED}" if measured else "")


def count(con: duckdb.DuckDBPyConnection, run_id: str, metric: str = "latency_ms",
          ok_only: bool = True) -> int:
    expr = column_sql(metric)
    return int(_row(con.execute(
        f"SELECT count({expr}) FROM requests WHERE run_id = ?{_where(ok_only)}", [run_id]))[0])


def percentiles(con: duckdb.DuckDBPyConnection, run_id: str, metric: str = "latency_ms",
                qs: Iterable[float] = (0.5, 0.9, 0.95, 0.99, 0.999), confidence: float = 0.95,
                ok_only: bool = True) -> dict[float, Estimate]:
    """Percentiles with exact order-statistic intervals, computed in DuckDB.

    The needed order statistics (point, lower and upper rank per quantile) are
    fetched in one ``quantile_disc`` pass: DuckDB's discrete quantile at fraction
    f is the element of 1-based rank ceil(f n), so rank k is asked as (k - 0.5) / n.
    """
    qs = list(qs)
    expr = column_sql(metric)
    n = count(con, run_id, metric, ok_only)
    if n == 0:
        return {q: Estimate(math.nan, math.nan, math.nan, 0, confidence, "order-statistic",
                                  "ms", "no data") for q in qs}
    plan = {}
    ranks: set[int] = set()
    for q in qs:
        lo, hi, _cover = order_stat_ranks(n, q, confidence)
        point = rank_index(n, q)
        plan[q] = (point, lo, hi)
        ranks.update(r for r in (point, lo, hi) if 1 <= r <= n)
    ordered = sorted(ranks)
    fractions = [(k - 0.5) / n for k in ordered]
    values = _row(con.execute(
        f"SELECT quantile_disc({expr}, ?::DOUBLE[]) FROM requests WHERE run_id = ?"
        f" AND {expr} IS NOT NULL{_where(ok_only)}", [fractions, run_id]))[0]
    by_rank = dict(zip(ordered, values))

    def at(rank: int) -> float:
        return -math.inf if rank < 1 else (math.inf if rank > n else float(by_rank[rank]))

    out = {}
    for q, (point, lo, hi) in plan.items():
        note = "" if lo >= 1 and hi <= n else "sample too small for a two-sided interval"
        out[q] = Estimate(at(point), at(lo), at(hi), n, confidence, "order-statistic", "ms", note)
    return out


def values(con: duckdb.DuckDBPyConnection, run_id: str, metric: str = "latency_ms",
           ok_only: bool = True, max_rows: int | None = None, seed: int = 0) -> np.ndarray:
    """A metric's values as a float array; a reproducible uniform sample when above ``max_rows``."""
    expr = column_sql(metric)
    base = (f"SELECT {expr} AS v FROM requests WHERE run_id = ? AND {expr} IS NOT NULL"
            f"{_where(ok_only)}")
    if max_rows is not None and count(con, run_id, metric, ok_only) > max_rows:
        sql = f"SELECT v FROM ({base}) USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({int(seed)})"
    else:
        sql = base
    return con.execute(sql, [run_id]).fetchnumpy()["v"].astype(float)


_OUTCOME_SQL = {"ok": " AND error_kind IS NULL", "errors": " AND error_kind IS NOT NULL", "all": ""}


def _outcome(outcome: str) -> str:
    try:
        return _OUTCOME_SQL[outcome]
    except KeyError:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(_OUTCOME_SQL)}") from None


def quantile_values(con: duckdb.DuckDBPyConnection, run_id: str, qs: Sequence[float],
                    metric: str = "latency_ms", ok_only: bool = True) -> np.ndarray:
    """A metric's sample quantiles at ``qs`` (inverted CDF, ``quantile_disc``); empty when no rows."""
    expr = column_sql(metric)
    row = con.execute(f"SELECT quantile_disc({expr}, ?::DOUBLE[]) FROM requests WHERE run_id = ?"
                      f" AND {expr} IS NOT NULL{_where(ok_only)}", [list(qs), run_id]).fetchone()
    return np.asarray(row[0] if row and row[0] is not None else [], dtype=float)


def window_percentiles(con: duckdb.DuckDBPyConnection, run_id: str, t0: float, width_s: float,
                       which: Mapping[str, float], metric: str = "latency_ms", ok_only: bool = True) -> pd.DataFrame:
    """Per window of intended send time from ``t0``: ``t_s`` (its centre), ``n`` and one column per
    ``which`` key, the metric's exact percentiles in it (inverted CDF, ``quantile_disc``); every
    phase, warm-up and cool-down included (a time series, for figures that shade them)."""
    expr = column_sql(metric)
    names, qs = list(which), [float(q) for q in which.values()]
    rows = con.execute(
        f"SELECT floor((intended_unix_s - ?) / ?) AS w, count(*), quantile_disc({expr}, ?::DOUBLE[]) "
        f"FROM requests WHERE run_id = ? AND {expr} IS NOT NULL{_where(ok_only, False)} GROUP BY w ORDER BY w",
        [t0, width_s, qs, run_id]).fetchall()
    frame = pd.DataFrame({"t_s": [(w + 0.5) * width_s for w, _, _ in rows],
                          "n": np.asarray([n for _, n, _ in rows], dtype=np.int64)})
    for i, name in enumerate(names):
        frame[name] = np.asarray([v[i] for _, _, v in rows], dtype=float)
    return frame


def completion_bins(con: duckdb.DuckDBPyConnection, run_id: str, t0: float, bin_s: float) -> pd.DataFrame:
    """Per bin of ``bin_s`` from ``t0``: requests scheduled (by intended send) and completed ok or
    with an error (by done time).

    Bins cover the schedule, whole bins from 0 up to the last intended send;
    responses done after the last bin's end are counted in it, so the last bin is
    not a sliver. Columns ``t_s`` (bin centre), ``intended``, ``ok``, ``errors``.
    """
    return con.execute(
        """
        WITH r AS (SELECT intended_unix_s - ? AS t, done_unix_s - ? AS d, error_kind IS NULL AS ok
                   FROM requests WHERE run_id = ?),
        n AS (SELECT CASE WHEN max(t) IS NULL THEN 0
                          ELSE greatest(1, CAST(ceil(max(t) / ? - 1e-9) AS BIGINT)) END AS nb FROM r),
        sends AS (SELECT least(CAST(floor(t / ?) AS BIGINT), nb - 1) AS b, count(*) AS intended
                  FROM r, n WHERE t >= 0 GROUP BY 1),
        dones AS (SELECT least(CAST(floor(d / ?) AS BIGINT), nb - 1) AS b,
                         count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS errors
                  FROM r, n WHERE d >= 0 GROUP BY 1)
        SELECT (bins.range + 0.5) * ? AS t_s, coalesce(intended, 0) AS intended,
               coalesce(ok, 0) AS ok, coalesce(errors, 0) AS errors
        FROM (SELECT range FROM n, range(n.nb)) AS bins
        LEFT JOIN sends ON sends.b = bins.range LEFT JOIN dones ON dones.b = bins.range
        ORDER BY bins.range
        """, [t0, t0, run_id, bin_s, bin_s, bin_s, bin_s]).df()


def flow_bins(con: duckdb.DuckDBPyConnection, run_id: str, bin_s: float = 1.0) -> pd.DataFrame:
    """Per bin of ``bin_s`` from the first intended send: ``arrivals`` (by intended send),
    ``completions`` (by done time, ok or not) and ``median_latency_ms`` of the bin's arrivals (ok or
    not; NaN when none completed), for the over-saturation test.

    Unlike :func:`completion_bins` the bins cover the schedule only and nothing is
    folded into the last one: responses done after it (the drain) are not counted.
    Columns ``t_s`` (bin start), ``arrivals``, ``completions``, ``median_latency_ms``; empty for a
    run without requests.
    """
    return con.execute(
        """
        WITH f AS (SELECT min(intended_unix_s) AS t0, max(intended_unix_s) AS t1 FROM requests WHERE run_id = ?),
        bins AS (SELECT range AS b FROM f, range(CAST(floor((f.t1 - f.t0) / ?) AS BIGINT) + 1) WHERE f.t0 IS NOT NULL),
        a AS (SELECT CAST(floor((intended_unix_s - f.t0) / ?) AS BIGINT) AS b, count(*) AS n,
                     quantile_disc(latency_ms, 0.5) AS m FROM requests, f WHERE run_id = ? GROUP BY 1),
        c AS (SELECT CAST(floor((done_unix_s - f.t0) / ?) AS BIGINT) AS b, count(*) AS n
              FROM requests, f WHERE run_id = ? AND done_unix_s IS NOT NULL GROUP BY 1)
        SELECT bins.b * ? AS t_s, coalesce(a.n, 0) AS arrivals, coalesce(c.n, 0) AS completions,
               CAST(a.m AS DOUBLE) AS median_latency_ms
        FROM bins LEFT JOIN a ON a.b = bins.b LEFT JOIN c ON c.b = bins.b ORDER BY bins.b
        """, [run_id, bin_s, bin_s, run_id, bin_s, run_id, bin_s]).df()


def sample_requests(con: duckdb.DuckDBPyConnection, run_id: str, metric: str = "latency_ms",
                    outcome: str = "ok", max_rows: int = 40_000, tail_q: float = 0.99,
                    seed: int = 0) -> pd.DataFrame:
    """``intended_unix_s`` and the metric of requests (``outcome``: ok, errors, all), at most ``max_rows``.

    Past ``max_rows`` every request above the ``tail_q`` quantile is kept (the
    tail is what a scatter plot is for) plus a seeded reservoir sample of the
    rest; rows come in schedule order. For figures of runs of any length.
    """
    expr = column_sql(metric)
    base = (f"SELECT seq, intended_unix_s, {expr} AS v FROM requests WHERE run_id = ? "
            f"AND {expr} IS NOT NULL{_outcome(outcome)}")
    (n, cut, n_tail), = con.execute(
        f"WITH b AS ({base}), c AS (SELECT count(*) AS n, quantile_disc(v, ?) AS cut FROM b) "
        "SELECT n, cut, (SELECT count(*) FROM b, c WHERE v > c.cut) FROM c", [run_id, tail_q]).fetchall()
    if n <= max_rows:
        sql, params = f"{base} ORDER BY seq", [run_id]
    else:
        sql, params = f"SELECT * FROM ({base}) WHERE v > ?", [run_id, cut]
        if max_rows > n_tail:
            sql += (f" UNION ALL SELECT * FROM (SELECT * FROM ({base}) WHERE v <= ?) "
                    f"USING SAMPLE reservoir({int(max_rows - n_tail)} ROWS) REPEATABLE ({int(seed)})")
            params += [run_id, cut]
        sql = f"SELECT * FROM ({sql}) ORDER BY seq"
    frame = con.execute(sql, params).df()
    return frame[["intended_unix_s", "v"]].rename(columns={"v": metric})


def windows(con: duckdb.DuckDBPyConnection, run_id: str, width_s: float = 1.0) -> pd.DataFrame:
    """Per-window aggregates by intended send time (window_s = offset from the first measured
    request), over the measured phase."""
    return con.execute(
        f"""
        WITH m AS (SELECT * FROM requests WHERE run_id = ? AND {MEASURED}),
        t AS (SELECT min(intended_unix_s) AS t0 FROM m),
        r AS (SELECT m.*, floor((m.intended_unix_s - t.t0) / ?) AS w, t.t0 FROM m, t)
        SELECT w * ? AS window_s,
               any_value(t0) + w * ? AS start_unix_s,
               count(*) AS requests,
               count(*) FILTER (WHERE error_kind IS NULL) AS ok,
               count(*) FILTER (WHERE error_kind IS NOT NULL) AS errors,
               avg(latency_ms) FILTER (WHERE error_kind IS NULL) AS mean_latency_ms,
               quantile_disc(latency_ms, 0.5) FILTER (WHERE error_kind IS NULL) AS p50_ms,
               quantile_disc(latency_ms, 0.99) FILTER (WHERE error_kind IS NULL) AS p99_ms,
               avg(service_ms) FILTER (WHERE error_kind IS NULL) AS mean_service_ms,
               avg((sent_unix_s - intended_unix_s) * 1000.0) AS mean_schedule_lag_ms,
               max((sent_unix_s - intended_unix_s) * 1000.0) AS max_schedule_lag_ms
        FROM r GROUP BY w ORDER BY w
        """, [run_id, width_s, width_s, width_s]).df()


def breakdown(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Where a request's time goes, as the client saw it (successful requests).

    ``schedule_lag_ms`` = sent - intended (client side, before the wire),
    ``ttfb_ms`` = first byte - sent (network + server until the first byte),
    ``transfer_ms`` = done - first byte, ``service_ms`` = done - sent.
    """
    row = _row(con.execute(
        f"""
        SELECT count(*) AS n,
               avg(latency_ms), avg(service_ms),
               avg((sent_unix_s - intended_unix_s) * 1000.0),
               avg((first_byte_unix_s - sent_unix_s) * 1000.0),
               avg((done_unix_s - first_byte_unix_s) * 1000.0),
               min(intended_unix_s), max(intended_unix_s), max(done_unix_s)
        FROM requests WHERE run_id = ? AND error_kind IS NULL AND {MEASURED}
        """, [run_id]))
    keys = ("n", "mean_latency_ms", "mean_service_ms", "mean_schedule_lag_ms", "mean_ttfb_ms",
            "mean_transfer_ms", "first_intended_unix_s", "last_intended_unix_s", "last_done_unix_s")
    return {k: (float(v) if v is not None and k != "n" else (int(v) if k == "n" else None))
            for k, v in zip(keys, row)}


def totals(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Request counts, errors by kind, the run's span and arrival rate (measured phase)."""
    row = _row(con.execute(
        f"""
        SELECT count(*), count(*) FILTER (WHERE error_kind IS NULL),
               count(*) FILTER (WHERE sent_unix_s IS NULL),
               min(intended_unix_s), max(intended_unix_s), max(done_unix_s)
        FROM requests WHERE run_id = ? AND {MEASURED}
        """, [run_id]))
    n, ok, unsent, first, last, done = row
    errors = dict(con.execute(
        f"SELECT error_kind, count(*) FROM requests WHERE run_id = ? AND error_kind IS NOT NULL AND {MEASURED} "
        "GROUP BY 1 ORDER BY 2 DESC", [run_id]).fetchall())
    span = (last - first) if n and last is not None and first is not None else 0.0
    return {"requests": int(n), "ok": int(ok), "unsent": int(unsent), "errors": errors,
            "first_intended_unix_s": first, "last_intended_unix_s": last, "last_done_unix_s": done,
            "span_s": float(span),
            "arrival_rate_rps": (n - 1) / span if span and span > 0 else math.nan}


def phase_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Stored requests per phase of the schedule (``warmup``, ``measure``, ``cooldown``; NULL is measure)."""
    rows = con.execute("SELECT coalesce(phase, 'measure'), count(*) FROM requests WHERE run_id = ? GROUP BY 1",
                       [run_id]).fetchall()
    return {str(phase): int(n) for phase, n in rows}


def token_lengths(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Per successful measured request of a token-true workload: the prompt and output tokens
    asked for (``*_intended``) and those the server's usage reported; empty for other runs."""
    return con.execute(
        "SELECT prompt_tokens_intended, prompt_tokens, output_tokens_intended, output_tokens FROM requests "
        f"WHERE run_id = ? AND prompt_tokens_intended IS NOT NULL{_where(True)} ORDER BY seq", [run_id]).df()


def schedule_lag(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """How far the load generator fell behind its schedule: sent - intended, in ms."""
    row = _row(con.execute(
        f"""
        SELECT count(*), count(sent_unix_s),
               quantile_disc((sent_unix_s - intended_unix_s) * 1000.0, [0.5, 0.99]),
               max((sent_unix_s - intended_unix_s) * 1000.0),
               avg((sent_unix_s - intended_unix_s) * 1000.0)
        FROM requests WHERE run_id = ? AND {MEASURED}
        """, [run_id]))
    n, sent, q, mx, mean = row
    q = q or [math.nan, math.nan]
    return {"requests": int(n), "sent": int(sent), "p50_ms": _f(q[0]), "p99_ms": _f(q[1]),
            "max_ms": _f(mx), "mean_ms": _f(mean)}


def stage_rates(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> pd.DataFrame:
    """Per run and stage: achieved completion rate, P99, error share (for qps_at_slo)."""
    return con.execute(
        f"""
        SELECT run_id, coalesce(stage, 0) AS stage, count(*) AS requests,
               count(*) FILTER (WHERE error_kind IS NULL) AS ok,
               (count(*) - 1) / nullif(max(intended_unix_s) - min(intended_unix_s), 0) AS arrival_rate_rps,
               count(*) FILTER (WHERE error_kind IS NULL)
                 / nullif(max(done_unix_s) - min(intended_unix_s), 0) AS achieved_rate_rps,
               quantile_disc(latency_ms, 0.99) FILTER (WHERE error_kind IS NULL) AS p99_ms
        FROM requests WHERE list_contains(?::VARCHAR[], run_id) AND {MEASURED}
        GROUP BY 1, 2 ORDER BY 1, 2
        """, [list(run_ids)]).df()


def qps_at_slo(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str], p99_ms: float,
               max_error_share: float = 0.01) -> dict[str, Any]:
    """Highest achieved throughput among the runs/stages whose P99 met ``p99_ms`` (a TCO hook).

    Each (run, stage) is a load level; one qualifies when its P99 of successful
    requests is within ``p99_ms`` and its error share within ``max_error_share``.
    Returns the best level's rate with its request count; ``qps`` is NaN when
    none qualifies.
    """
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    frame = stage_rates(con, ids)
    frame["error_share"] = 1.0 - frame["ok"] / frame["requests"]
    ok = frame[(frame["p99_ms"] <= p99_ms) & (frame["error_share"] <= max_error_share)]
    if ok.empty:
        return {"qps": math.nan, "p99_ms_limit": p99_ms, "levels": len(frame), "n": 0,
                "run_id": None, "stage": None}
    best = ok.sort_values("achieved_rate_rps").iloc[-1]
    return {"qps": float(best["achieved_rate_rps"]), "p99_ms": float(best["p99_ms"]),
            "p99_ms_limit": p99_ms, "levels": len(frame), "n": int(best["requests"]),
            "run_id": best["run_id"], "stage": int(best["stage"])}


#: Stored ``--slo`` keys -> the metric (:data:`LATENCY_COLUMNS`) each bounds: :data:`perfkit.names.SLO_SERIES`,
#: and ``itl_ms``, which runs stored before the keys were named used for the largest gap (``--slo``
#: now refuses it as ambiguous).
SLO_METRICS = {**SLO_SERIES, "itl_ms": "itl_ms_max"}


def goodput(con: duckdb.DuckDBPyConnection, run_id: str, bounds_ms: dict[str, float],
            confidence: float = 0.95) -> dict[str, Any]:
    """Requests per second that succeeded and met every per-request bound (the keys of
    :data:`SLO_METRICS`), counted in SQL; the good share carries its
    Clopper–Pearson interval. A request missing a bounded value (no first token) is not good."""
    conds, params = ["error_kind IS NULL"], []
    for key, limit in bounds_ms.items():
        if key not in SLO_METRICS:
            raise ValueError(f"unknown SLO key {key!r}; one of {', '.join(SLO_METRICS)}")
        conds.append(f"{column_sql(SLO_METRICS[key])} <= ?")
        params.append(float(limit))
    n, good, first, last_done = _row(con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {' AND '.join(conds)}), min(intended_unix_s), max(done_unix_s) "
        f"FROM requests WHERE run_id = ? AND {MEASURED}", [*params, run_id]))
    span = (last_done - first) if n and last_done is not None else math.nan
    share = proportion_ci(int(good), int(n), confidence)
    return {"goodput_rps": good / span if span and span > 0 else math.nan, "good_requests": int(good),
            "requests": int(n), "span_s": span, "good_fraction": share.to_dict(), "bounds_ms": dict(bounds_ms)}


def previous_run(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The newest run started no later than ``run_id`` (itself excluded), or None."""
    started = get_run(con, run_id)["started_at"]
    row = con.execute("SELECT run_id FROM runs WHERE run_id <> ? AND (started_at <= ? OR ? IS NULL) "
                      "ORDER BY started_at DESC NULLS LAST LIMIT 1", [run_id, started, started]).fetchone()
    return None if row is None else str(row[0])


def select_runs(con: duckdb.DuckDBPyConnection, labels: Mapping[str, str]) -> list[str]:
    """Run ids whose labels hold every ``key=value`` of ``labels`` (a label selector), oldest first."""
    if not labels:
        raise ValueError("a label selector needs at least one key=value pair")
    conds = " AND ".join(["json_extract_string(labels, ?) = ?"] * len(labels))
    params: list[str] = []
    for key, value in labels.items():
        params += ['$."' + key.replace('"', '\\"') + '"', str(value)]
    rows = con.execute(f"SELECT run_id FROM runs WHERE {conds} ORDER BY started_at NULLS LAST, run_id",
                       params).fetchall()
    return [str(r[0]) for r in rows]


def request_sequence(con: duckdb.DuckDBPyConnection, run_id: str, metric: str = "latency_ms",
                     max_rows: int = 20_000, block_rows: int = 2_000) -> tuple[np.ndarray, np.ndarray, int]:
    """A run's requests in schedule order: (metric values, failed flags, the run's request count).

    Values are NaN where the request failed or has no such value. Above
    ``max_rows`` requests, evenly spaced contiguous blocks of ``block_rows``
    are kept (every k-th block), so that neighbours stay neighbours for a block
    bootstrap; the third element says how many there were in all.
    """
    expr = column_sql(metric)
    total = int(_row(con.execute(f"SELECT count(*) FROM requests WHERE run_id = ? AND {MEASURED}", [run_id]))[0])
    stride = max(1, math.ceil(total / max_rows)) if max_rows > 0 else 1
    got = con.execute(
        f"WITH r AS (SELECT row_number() OVER (ORDER BY seq) - 1 AS i, "
        f"CASE WHEN error_kind IS NULL THEN {expr} END AS v, error_kind IS NOT NULL AS failed "
        f"FROM requests WHERE run_id = ? AND {MEASURED}) "
        f"SELECT v, failed FROM r WHERE (i // ?) % ? = 0 ORDER BY i",
        [run_id, int(block_rows), int(stride)]).fetchnumpy()
    values: np.ndarray = np.ma.filled(np.ma.asarray(got["v"], dtype=float), np.nan)  # NULL -> NaN
    failed = np.asarray(got["failed"], dtype=bool)
    return values, failed, total


def count_over(con: duckdb.DuckDBPyConnection, run_id: str, limit_ms: float,
               metric: str = "latency_ms") -> int:
    """Successful requests whose ``metric`` exceeds ``limit_ms`` (for SLO verdicts from counts)."""
    row = con.execute(f"SELECT count(*) FROM requests WHERE run_id = ? AND error_kind IS NULL AND {MEASURED} "
                      f"AND {column_sql(metric)} > ?", [run_id, float(limit_ms)]).fetchone()
    return int(row[0]) if row else 0


def latency_by_step(con: duckdb.DuckDBPyConnection, run_id: str, step_s: float, t0: float) -> pd.DataFrame:
    """Per step of ``step_s`` from ``t0`` by intended send time: requests, errors, p50/p90/p99 latency (ms).

    Every request with a latency counts, failed ones too; percentiles are the
    inverted CDF (``quantile_disc``), :mod:`perfkit.quantiles`' definition.
    """
    return con.execute(
        """
        SELECT floor((intended_unix_s - ?) / ?) * ? AS t_s,
               count(*) AS requests,
               count(*) FILTER (WHERE error_kind IS NOT NULL) AS errors,
               quantile_disc(latency_ms, 0.5) AS latency_p50_ms,
               quantile_disc(latency_ms, 0.9) AS latency_p90_ms,
               quantile_disc(latency_ms, 0.99) AS latency_p99_ms
        FROM requests WHERE run_id = ? AND intended_unix_s IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """, [t0, step_s, step_s, run_id]).df()


def run_meta(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The runs row (JSON decoded)."""
    return get_run(con, run_id)


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def summary_json(meta: dict[str, Any]) -> dict[str, Any]:
    s = meta.get("summary")
    if isinstance(s, str):
        return json.loads(s)
    return s or {}
