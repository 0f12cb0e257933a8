"""Benchmark: streaming a big /api/v1/query_range answer into DuckDB.

Writes a deterministic matrix answer (default 10,000,000 points: 1,000 series x
10,000 points, values as strings with some "NaN"/"+Inf"), then ingests it with
``perfkit ingest prom-range`` in a child process and reports wall time and the
child's peak RSS. For comparison, the obvious alternative (``json.load`` and a
Python loop building the same columns) runs on a 1,000,000-point answer, and
perfkit on that same file, so the ratio is measured in the same run.

    .venv/bin/python benchmarks/ingest_query_range.py [--points 10000000]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_answer(path: Path, points: int, series: int = 1000) -> None:
    """A matrix answer with ``points`` points over ``series`` series, streamed to disk."""
    per = max(1, points // series)
    t0 = 1_732_400_000
    with open(path, "w") as fh:
        fh.write('{"status":"success","data":{"resultType":"matrix","result":[')
        for s in range(series):
            if s:
                fh.write(",")
            fh.write('{"metric":{"__name__":"http_requests_total","instance":"10.0.0.%d:9100",'
                     '"job":"inference","pod":"model-%d"},"values":[' % (s % 256, s))
            vals = []
            for i in range(per):
                k = (s * 7919 + i * 104729) % 1000
                v = "NaN" if k == 0 else "+Inf" if k == 1 else f"{k * 0.137:.3f}"
                vals.append(f'[{t0 + i * 15}.{i % 1000:03d},"{v}"]')
            fh.write(",".join(vals))
            fh.write("]}")
        fh.write("]}}")


def child_ingest(path: Path, db: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of `perfkit ingest prom-range` in a fresh process."""
    code = (
        "import sys, time, resource\n"
        "from perfkit import store\n"
        "from perfkit.ingest import importers\n"
        "con = store.connect(sys.argv[2], quiet=True)\n"
        "t = time.perf_counter()\n"
        "r = importers.ingest_prom_range(con, sys.argv[1])\n"
        "dt = time.perf_counter() - t\n"
        "n = con.execute('SELECT count(*) FROM samples').fetchone()[0]\n"
        "assert n == r.samples, (n, r.samples)\n"
        "print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(db)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def child_parse(path: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of perfkit's streaming reader alone (no database)."""
    code = (
        "import sys, time, resource\n"
        "from perfkit.ingest import promrange\n"
        "t = time.perf_counter()\n"
        "n = 0\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    for b in promrange.iter_batches(fh, sys.argv[1]):\n"
        "        n += len(b.values)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def child_naive(path: Path) -> tuple[float, float]:
    code = (
        "import sys, time, json, resource\n"
        "import numpy as np\n"
        "t = time.perf_counter()\n"
        "doc = json.load(open(sys.argv[1]))\n"
        "keys, ts, vals = [], [], []\n"
        "for k, r in enumerate(doc['data']['result']):\n"
        "    for t_, v in r['values']:\n"
        "        keys.append(k); ts.append(float(t_)); vals.append(float(v))\n"
        "arr = np.array(ts), np.array(vals)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--compare-points", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small, big = tmp / "small.json", tmp / "big.json"
        write_answer(small, args.compare_points)
        naive_s, naive_mb = child_naive(small)
        parse_s, parse_mb = child_parse(small)
        mine_s, mine_mb = child_ingest(small, tmp / "small.duckdb")
        print(f"{args.compare_points:,} points ({small.stat().st_size / 1e6:.0f} MB JSON): "
              f"json.load + loop (parse only) {naive_s:.2f} s, peak {naive_mb:.0f} MiB; "
              f"perfkit reader (parse only) {parse_s:.2f} s, peak {parse_mb:.0f} MiB, "
              f"ratio {naive_s / parse_s:.1f}x; perfkit ingest (parse + store) {mine_s:.2f} s, "
              f"peak {mine_mb:.0f} MiB, ratio {naive_s / mine_s:.1f}x")
        t = time.perf_counter()
        write_answer(big, args.points)
        gen_s = time.perf_counter() - t
        size = big.stat().st_size
        bparse_s, bparse_mb = child_parse(big)
        big_s, big_mb = child_ingest(big, tmp / "big.duckdb")
        print(f"{args.points:,} points ({size / 1e6:.0f} MB JSON, written in {gen_s:.0f} s): "
              f"perfkit reader alone {bparse_s:.2f} s, peak RSS {bparse_mb:.0f} MiB; "
              f"perfkit ingest {big_s:.2f} s ({args.points / big_s:,.0f} points/s), "
              f"peak RSS {big_mb:.0f} MiB (includes DuckDB's uncommitted rows: one transaction)")


if __name__ == "__main__":
    main()
