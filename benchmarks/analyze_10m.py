"""Analysis of a 10-million-request run: perfkit (work pushed into DuckDB) against naive pandas.

Generates one run of N requests (default 10,000,000) directly in DuckDB SQL into a
temporary store (a 1,000 s run at 10,000 req/s with log-normal latencies, 0.2%
errors, a 5 s outage and a late-schedule stretch), then times, each in a fresh
child process so that peak memory (ru_maxrss) belongs to that approach alone:

* perfkit: ``perfkit.analyze.rootcause.analyze_run`` -- percentiles with exact
  order-statistic intervals, 1-s windows, availability, MTTR, schedule lag,
  time breakdown and the root-cause rules;
* pandas: the obvious alternative -- load every row into a DataFrame, then the same
  figures with numpy sort / groupby-quantile.

Module imports (about 2-3 s here) happen before each clock starts.

Prints both wall times and peak memories and their ratios. Usage:

    .venv/bin/python benchmarks/analyze_10m.py [--rows N] [--keep DB]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN_ID = "bench-10m"


def generate(db: Path, rows: int) -> float:
    """Write the run with DuckDB SQL only (no Python loop); returns seconds taken."""
    from perfkit import store
    from perfkit.store.write import insert_run

    rate = 10_000.0
    t0 = 1.8e9
    start = time.perf_counter()
    with store.connect(db) as con:
        insert_run(con, {"run_id": RUN_ID, "label": "benchmark=analyze_10m", "protocol": "http-json",
                         "pattern": "constant", "t0_unix_s": t0, "status": "completed",
                         "intended_rate_rps": rate, "duration_s": rows / rate, "tool": "synthetic"})
        con.execute(
            """
            INSERT INTO requests (run_id, seq, worker, stage, intended_unix_s, sent_unix_s, first_byte_unix_s,
                                  done_unix_s, latency_ms, service_ms, status_code, error_kind)
            WITH base AS (
                SELECT range AS seq, ? + range / ? AS intended,
                       -- log-normal latency (median ~20 ms, sigma 0.5) by Box-Muller
                       exp(ln(20) + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS lat_ms,
                       random() AS u
                FROM range(?)
            ), shaped AS (
                SELECT seq, intended,
                       -- the generator falls behind between 600 s and 610 s
                       CASE WHEN intended - ? BETWEEN 600 AND 610 THEN 25.0 ELSE 0.2 * u END AS lag_ms,
                       -- a 5 s outage at 300 s, 0.2% random errors elsewhere
                       (intended - ? BETWEEN 300 AND 305) OR u < 0.002 AS failed,
                       lat_ms
                FROM base
            )
            SELECT ?, seq, (seq % 4)::INTEGER, 0, intended, intended + lag_ms / 1000,
                   intended + (lag_ms + lat_ms * 0.9) / 1000, intended + (lag_ms + lat_ms) / 1000,
                   lag_ms + lat_ms, lat_ms,
                   CASE WHEN failed THEN 503 ELSE 200 END,
                   CASE WHEN failed THEN 'http_5xx' ELSE NULL END
            FROM shaped
            """, [t0, rate, rows, t0, t0, RUN_ID])
    return time.perf_counter() - start


def _perfkit(db: str) -> dict:
    from perfkit import store
    from perfkit.analyze import rootcause

    with store.connect(db, read_only=True) as con:
        out = rootcause.analyze_run(con, RUN_ID, slo_p99_ms=100.0)
    return {"p50_ms": out["percentiles_ms"][0.5]["value"], "p99_ms": out["percentiles_ms"][0.99]["value"],
            "p99_ci": [out["percentiles_ms"][0.99]["lo"], out["percentiles_ms"][0.99]["hi"]],
            "n": out["percentiles_ms"][0.99]["n"], "availability": out["availability"]["window"]["value"],
            "mttr_s": out["mttr"]["value"], "lag_p99_ms": out["schedule_lag_ms"]["p99_ms"],
            "findings": [f.rule for f in out["findings"]]}


def _pandas(db: str) -> dict:
    """The obvious alternative: every row into pandas, then sort / groupby / quantile."""
    import duckdb
    import numpy as np

    from perfkit import quantiles
    from perfkit.analyze import stats

    con = duckdb.connect(db, read_only=True)
    df = con.execute("SELECT * FROM requests WHERE run_id = ?", [RUN_ID]).df()
    ok = df[df["error_kind"].isna()]
    lat = np.sort(ok["latency_ms"].to_numpy())
    n = lat.size
    pct = {}
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        lo, hi, _ = quantiles.order_stat_ranks(n, q)
        pct[q] = (lat[quantiles.rank_index(n, q) - 1], lat[max(lo, 1) - 1], lat[min(hi, n) - 1])
    df["window_s"] = np.floor(df["intended_unix_s"] - df["intended_unix_s"].min())
    df["ok"] = df["error_kind"].isna()
    df["lag_ms"] = (df["sent_unix_s"] - df["intended_unix_s"]) * 1000
    g = df.groupby("window_s")
    windows = g.agg(requests=("seq", "size"), ok=("ok", "sum"), mean_latency_ms=("latency_ms", "mean"))
    windows["p99_ms"] = df[df["ok"]].groupby("window_s")["latency_ms"].quantile(0.99)
    windows = windows.reset_index()
    av = stats.availability(windows)
    m = stats.mttr(stats.fault_episodes(windows))
    return {"p50_ms": float(pct[0.5][0]), "p99_ms": float(pct[0.99][0]),
            "p99_ci": [float(pct[0.99][1]), float(pct[0.99][2])], "n": int(n),
            "availability": av["window"].value, "mttr_s": m.value,
            "lag_p99_ms": float(df["lag_ms"].quantile(0.99))}


def child(kind: str, db: str) -> None:
    # imports are paid once per process whatever the run size: load them before the clock starts
    import duckdb  # noqa: F401
    import pandas  # noqa: F401

    from perfkit.analyze import rootcause, stats  # noqa: F401
    start = time.perf_counter()
    result = _perfkit(db) if kind == "perfkit" else _pandas(db)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"kind": kind, "wall_s": wall, "peak_rss_mib": peak_kib / 1024, "result": result}))


def run_child(kind: str, db: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(db)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--keep", metavar="DB", help="keep the generated store here")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="perfkit-analyze-10m-") as tmp:
        db = Path(args.keep) if args.keep else Path(tmp) / "bench.duckdb"
        gen_s = generate(db, args.rows)
        size_mib = os.path.getsize(db) / 2 ** 20
        print(f"generated {args.rows:,} requests in DuckDB SQL in {gen_s:.1f} s ({size_mib:.0f} MiB store)")
        pk = run_child("perfkit", db)
        pd_ = run_child("pandas", db)
    def f(v: object, spec: str = ".2f") -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    for r in (pk, pd_):
        res = r["result"]
        print(f"{r['kind']:>8}: {r['wall_s']:6.2f} s, peak RSS {r['peak_rss_mib']:7.0f} MiB | "
              f"P50 {f(res['p50_ms'])} ms, P99 {f(res['p99_ms'])} ms [{f(res['p99_ci'][0])}, "
              f"{f(res['p99_ci'][1])}] (n={res['n']:,}), availability {f(res['availability'], '.4f')}, "
              f"MTTR {f(res['mttr_s'], '.1f')} s, lag P99 {f(res['lag_p99_ms'])} ms")
    print(f"findings (perfkit): {', '.join(pk['result']['findings'])}")
    same = all(math.isclose(pk["result"][k], pd_["result"][k], rel_tol=1e-9) for k in ("p50_ms", "p99_ms"))
    print(f"same P50/P99 in both: {same}")
    print(f"ratio pandas/perfkit: time {pd_['wall_s'] / pk['wall_s']:.1f}x, "
          f"peak memory {pd_['peak_rss_mib'] / pk['peak_rss_mib']:.1f}x")


if __name__ == "__main__":
    main()
