"""Does perfkit see a stall for what it is? perfkit vs Locust vs the closed-form truth.

    .venv/bin/python benchmarks/bench_accuracy_stall.py [--stall-s 1 --period-s 4 --rate 100 --duration 40]

The demo server (``perfkit serve-demo --stall PERIOD:STALL``) freezes for STALL s
every PERIOD s. Under open-loop load at a constant rate, a fraction f = STALL/PERIOD
of requests arrive inside a stall and wait uniform(0, STALL); the rest wait ~0. So
the q-quantile of latency is, in closed form,

    Q(q) = STALL * (1 - (1 - q) / f)   for q > 1 - f   (else ~ the base service time)

plus the base service time (we add perfkit's median latency). The closed form
ignores the time the server needs to drain the backlog a stall leaves (rate x
STALL requests), so keep the rate well under the server's capacity.
perfkit (open loop, timed from the intended send) should land within 5% of Q;
Locust (closed loop: its users wait during the stall instead of sending) reports
what its few in-flight requests saw, hiding most of the stall (coordinated omission).
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit.bench import BenchConfig, Stage, run  # noqa: E402
from perfkit.demo.launch import DemoServer  # noqa: E402

QS = {"p90": 0.90, "p95": 0.95, "p99": 0.99}


def truth_ms(q: float, stall_s: float, period_s: float, base_ms: float) -> float:
    f = stall_s / period_s
    if q <= 1 - f:
        return base_ms
    return base_ms + 1e3 * stall_s * (1 - (1 - q) / f)


def locust_percentiles(url: str, rate: float, duration: float, tmp: Path, users: int) -> dict[str, float]:
    lf = tmp / "locustfile.py"
    lf.write_text(textwrap.dedent(f"""
        from locust import FastHttpUser, constant_throughput, task
        BODY = b'{{"input_data": [0.5] * 64, "model_id": "demo"}}'.replace(b"[0.5] * 64", b"[" + b",".join([b"0.5"] * 64) + b"]")
        class U(FastHttpUser):
            wait_time = constant_throughput({rate / users!r})
            @task
            def infer(self):
                self.client.post("/api/v1/infer", data=BODY, headers={{"Content-Type": "application/json"}})
    """))
    exe = Path(sys.executable).with_name("locust")
    subprocess.run([str(exe), "-f", str(lf), "--headless", "-u", str(users), "-r", str(users), "-t",
                    f"{int(duration)}s", "--host", url, "--csv", str(tmp / "loc"), "--only-summary",
                    "--loglevel", "ERROR"], check=True, capture_output=True, timeout=duration + 60)
    with open(tmp / "loc_stats.csv") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return {"p90": float(row["90%"]), "p95": float(row["95%"]), "p99": float(row["99%"]),
                        "n": int(row["Request Count"])}
    raise SystemExit("no Aggregated row in Locust's CSV")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stall-s", type=float, default=1.0)
    ap.add_argument("--period-s", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=100.0,
                    help="keep it well under the server's capacity: the backlog a stall leaves must drain "
                    "in a few ms, which the closed form ignores")
    ap.add_argument("--duration", type=float, default=40.0, help="a multiple of the period keeps f exact")
    ap.add_argument("--users", type=int, default=20, help="Locust users (closed loop)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, DemoServer(stall=f"{args.period_s:g}:{args.stall_s:g}") as server:
        tmp = Path(d)
        s = run(BenchConfig(target=server.url, stages=[Stage("constant", args.duration, args.rate)],
                            db=str(tmp / "r.duckdb"), quiet=True, collect=False))
        base = s["latency_ms"]["p50"]
        loc = locust_percentiles(server.url, args.rate, args.duration, tmp, args.users)
    f = args.stall_s / args.period_s
    print(f"stall {args.stall_s:g} s every {args.period_s:g} s (f = {f:.3f}), {args.rate:g} req/s for "
          f"{args.duration:g} s; base latency (perfkit p50) {base:.2f} ms")
    print(f"perfkit: {s['latency_ms']['n']:,} requests, schedule lag p99 {s['schedule_lag_ms']['p99']:.2f} ms; "
          f"locust: {loc['n']:,} requests ({args.users} users, closed loop)")
    print(f"{'':6} {'truth ms':>10} {'perfkit ms':>11} {'error':>8} {'locust ms':>10} {'error':>8}")
    worst = 0.0
    for key, q in QS.items():
        t = truth_ms(q, args.stall_s, args.period_s, base)
        p = s["latency_ms"][key]
        l_ = loc[key]
        worst = max(worst, abs(p - t) / t)
        print(f"{key:6} {t:10.1f} {p:11.1f} {100 * (p - t) / t:+7.1f}% {l_:10.1f} {100 * (l_ - t) / t:+7.1f}%")
    print(f"perfkit worst relative error {100 * worst:.1f}% ({'within' if worst <= 0.05 else 'OUTSIDE'} 5%)")


if __name__ == "__main__":
    main()
