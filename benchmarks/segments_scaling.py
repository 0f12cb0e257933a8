"""Do 2 segments keep a higher total rate on schedule than 1 instance?

    .venv/bin/python benchmarks/segments_scaling.py [--duration 3] [--start-rate 5000] [--factor 1.4] [--tries 2]

Against nginx on loopback (one worker process, a fixed JSON answer; ``apt-get install nginx``),
for N = 1 and N = 2: run ``perfkit bench --segment I/N`` as N processes (one worker each) from a
shared ``--start-at``, merge them with ``perfkit merge``, and call the rate kept when the merged
run's generator kept up (schedule-lag p99 <= 10 ms and <= 1 % of requests late: the summary's
``validity.generator_kept_up``) and every scheduled request succeeded. The rate grows by
``--factor`` until it is not kept; prints each trial, the highest rate kept for each N and the
ratio. A rate is tried up to ``--tries`` times. N = 1 goes through the same path (``--segment 0/1``), so start-up and merge cost the same.
The processes share the machine's cores with nginx (and with anything else running): on a
machine of 2 cores the 2 generators and the target compete for them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine_vs_locust_wrk import free_port, start_nginx  # noqa: E402

import duckdb  # noqa: E402

PERFKIT = [sys.executable, "-m", "perfkit"]
TRIALS = itertools.count()
LEAD_S = 8.0  # the shared start: far enough ahead for N processes to start on a busy machine


def trial(url: str, rate: float, n: int, duration: float, tmp: Path) -> dict:
    """One run of ``rate`` req/s split into ``n`` segments; the merged summary's verdict."""
    start = time.time() + LEAD_S
    name = f"r{rate:.0f}-n{n}-{next(TRIALS)}"  # new files each trial: merge wants one segment run per file
    dbs = [tmp / f"{name}-s{i}.duckdb" for i in range(n)]
    procs = [subprocess.Popen(PERFKIT + [
        "bench", "--target", url + "/infer", "--rate", str(rate), "--duration", str(duration),
        "--segment", f"{i}/{n}", "--start-at", repr(start), "--db", str(db), "--no-collect", "--quiet",
        "--min-duration-s", "0", "--min-queries", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True) for i, db in enumerate(dbs)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode not in (0, 1):
            raise SystemExit(f"perfkit bench failed: {err.strip()[-400:]}")
    merged = tmp / f"{name}-merged.duckdb"
    res = subprocess.run(PERFKIT + ["merge", "--db", str(merged), *map(str, dbs)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if res.returncode not in (0, 1):
        raise SystemExit(f"perfkit merge failed: {res.stderr.strip()[-400:]}")
    with duckdb.connect(str(merged), read_only=True) as con:
        s = json.loads(con.execute("SELECT summary::VARCHAR FROM runs").fetchone()[0])
    lag = s["schedule_lag_ms"]
    kept = bool(s["validity"]["generator_kept_up"]) and s["ok"] == s["scheduled"]
    return {"n": n, "rate": rate, "kept": kept, "achieved": s["achieved_rate_rps"], "lag_p99_ms": lag["p99"],
            "late": lag["late_fraction"], "ok": s["ok"], "scheduled": s["scheduled"]}


def highest_kept(url: str, n: int, args: argparse.Namespace, tmp: Path) -> float:
    """Grow the rate by ``--factor`` from ``--start-rate`` until a rate is not kept in any of
    ``--tries`` trials (a busy shared machine only ever makes a trial worse); the last kept."""
    best, rate = 0.0, args.start_rate
    while rate <= args.max_rate:
        for _ in range(args.tries):
            r = trial(url, rate, n, args.duration, tmp)
            print(f"  N={n} rate {rate:>9,.0f}  achieved {r['achieved'] or 0:>9,.0f}  lag p99 "
                  f"{r['lag_p99_ms']:7.2f} ms  late {100 * (r['late'] or 0):5.1f} %  "
                  f"ok {r['ok']:,}/{r['scheduled']:,}  {'kept' if r['kept'] else 'NOT kept'}", flush=True)
            if r["kept"]:
                break
        if not r["kept"]:
            break
        best, rate = rate, rate * args.factor
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--start-rate", type=float, default=5000.0)
    ap.add_argument("--factor", type=float, default=1.4)
    ap.add_argument("--max-rate", type=float, default=400000.0)
    ap.add_argument("--tries", type=int, default=2, help="trials per rate; kept if any is (default 2)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        port = free_port()
        nginx = start_nginx(tmp, port)
        try:
            url = f"http://127.0.0.1:{port}"
            kept = {n: highest_kept(url, n, args, tmp) for n in (1, 2)}
        finally:
            nginx.terminate()
            nginx.wait(10)
    ratio = kept[2] / kept[1] if kept[1] else float("nan")
    print(f"highest rate kept on schedule: 1 instance {kept[1]:,.0f} req/s, 2 segments {kept[2]:,.0f} req/s; "
          f"ratio {ratio:.2f} (step factor {args.factor}: each is within a factor {args.factor} of its limit)")


if __name__ == "__main__":
    main()
