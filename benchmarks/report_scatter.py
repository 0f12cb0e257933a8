"""Drawing the latency-over-time figure of a long run: every dot vs the tail plus a sample.

An hour at 1,000 req/s is 3.6 M requests. Notebook 01 draws at most
``SCATTER_MAX_POINTS`` dots (all requests above P99 plus a seeded sample of the
rest, chosen in SQL by :func:`perfkit.store.runs.sample_requests`); this measures
what that saves against drawing every dot: the run read from a DuckDB store
(:func:`perfkit.report.benchmark.load_run`), the same figure, the same PNG
rendering, in the same process. Run: ``.venv/bin/python benchmarks/report_scatter.py [N]``.
"""
from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from perfkit import store  # noqa: E402
from perfkit.store import write  # noqa: E402
from perfkit.plots import benchmark as figures  # noqa: E402
from perfkit.report import benchmark  # noqa: E402


def synthetic_store(db: Path, n: int, rate_rps: float = 1000.0, seed: int = 0) -> None:
    """One run of ``n`` requests at ``rate_rps`` with lognormal latencies."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_rps
    lat = rng.lognormal(np.log(6.0), 0.4, n)
    rows = pd.DataFrame({"run_id": "synthetic", "seq": np.arange(n), "intended_unix_s": t,  # noqa: F841
                         "sent_unix_s": t + rng.exponential(0.05, n) / 1000.0, "done_unix_s": t + lat / 1000.0,
                         "latency_ms": lat})
    con = store.connect(db)
    with store.transaction(con):
        write.insert_run(con, {"run_id": "synthetic", "t0_unix_s": 0.0, "status": "completed"})
        con.execute("INSERT INTO requests BY NAME SELECT * FROM rows")
    con.close()


def render_s(db: Path, max_points: int, repeat: int = 3) -> float:
    """Best time of reading the run and drawing the figure to PNG."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fig = figures.latency_over_time(benchmark.load_run(str(db), "synthetic", max_points=max_points))
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scatter.duckdb"
        synthetic_store(db, n)
        every = render_s(db, max_points=n)
        sampled = render_s(db, max_points=benchmark.SCATTER_MAX_POINTS)
    print(f"latency-over-time figure, {n:,} requests (best of 3, read from DuckDB, PNG rendered):")
    print(f"  every dot          {every * 1000:9.1f} ms")
    print(f"  tail + sample      {sampled * 1000:9.1f} ms  ({benchmark.SCATTER_MAX_POINTS:,} dots at most)")
    print(f"  ratio              {every / sampled:9.1f}x faster")


if __name__ == "__main__":
    main()
