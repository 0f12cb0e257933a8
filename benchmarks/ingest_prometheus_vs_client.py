"""Benchmark: perfkit's exposition parser vs prometheus_client's, on the same text.

Generates a deterministic, histogram-heavy Prometheus 0.0.4 exposition (about
220,000 samples: request-latency histograms with 12 buckets, _sum and _count,
plus counters and gauges, a few escaped label values), parses it with
``prometheus_client.parser.text_string_to_metric_families`` and with
``perfkit.ingest.promtext.parse``, checks the samples are identical (name,
labels, value, timestamp), times a full ingest into a temporary DuckDB file, and
prints the ratio.

    .venv/bin/python benchmarks/ingest_prometheus_vs_client.py [--samples 220000]
"""
from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]


def generate(samples: int, seed: int = 0) -> str:
    """A histogram-heavy exposition with about ``samples`` samples (deterministic)."""
    rng = random.Random(seed)
    out = [
        "# HELP http_request_duration_seconds Request latency.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    per_hist = len(BUCKETS) + 2
    n_hist = int(samples * 0.9) // per_hist
    methods = ["GET", "POST", "PUT", "DELETE"]
    for i in range(n_hist):
        path = f"/api/v{i % 3}/model/{i % 97}/infer" if i % 500 else 'C:\\\\models\\\\m \\"quoted\\"'
        lab = f'method="{methods[i % 4]}",path="{path}",code="{200 + (i % 5)}",instance="10.0.{i % 256}.{i // 256 % 256}:9100"'
        counts = sorted(rng.randrange(0, 10_000) for _ in range(len(BUCKETS) - 1))
        counts.append(counts[-1] + rng.randrange(0, 50))
        for le, c in zip(BUCKETS, counts):
            out.append(f'http_request_duration_seconds_bucket{{{lab},le="{le}"}} {c}')
        out.append(f"http_request_duration_seconds_sum{{{lab}}} {rng.random() * counts[-1]:.6f}")
        out.append(f"http_request_duration_seconds_count{{{lab}}} {counts[-1]}")
    out += ["# HELP requests_total Requests.", "# TYPE requests_total counter"]
    rest = samples - n_hist * per_hist
    for i in range(rest // 2):
        out.append(f'requests_total{{worker="{i}",pool="p{i % 7}"}} {rng.randrange(10**9)}')
    out += ["# HELP queue_depth Queue depth.", "# TYPE queue_depth gauge"]
    for i in range(rest - rest // 2):
        v = rng.choice(["NaN", "+Inf", f"{rng.random() * 100:.3f}", f"{rng.random():.3e}"])
        out.append(f'queue_depth{{queue="q{i}"}} {v} {1732400000000 + i}')
    return "\n".join(out) + "\n"


def client_records(text: str):
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, s.labels, float(s.value), s.timestamp))
    return out


def _key(rec):
    name, labels, value, ts = rec
    return (name, tuple(sorted(labels.items())), "nan" if math.isnan(value) else value,
            ts if ts is not None else -1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=220_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each timing")
    args = ap.parse_args()

    from perfkit import store
    from perfkit.ingest import importers, promtext

    text = generate(args.samples)
    best_client = best_mine = best_e2e = math.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        theirs = client_records(text)
        best_client = min(best_client, time.perf_counter() - t0)
        t0 = time.perf_counter()
        expo = promtext.parse(text, "<generated>")
        best_mine = min(best_mine, time.perf_counter() - t0)
    n = len(expo)
    mine = expo.as_records()
    # prometheus_client renames 0.0.4 counters: requests_total stays, so no munging needed here.
    same = sorted(map(_key, mine)) == sorted(map(_key, theirs))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expo.prom"
        path.write_text(text)
        for i in range(args.repeat):
            db = Path(tmp) / f"bench{i}.duckdb"
            con = store.connect(db, quiet=True)
            t0 = time.perf_counter()
            importers.ingest_file(con, "prometheus", path, quiet=True)
            best_e2e = min(best_e2e, time.perf_counter() - t0)
            stored = con.execute("SELECT count(*) FROM samples").fetchone()[0]
            con.close()
    print(f"exposition: {n:,} samples, {len(text) / 1e6:.1f} MB; identical to prometheus_client: {same}")
    print(f"prometheus_client text_string_to_metric_families: {best_client:.3f} s "
          f"({len(theirs) / best_client:,.0f} samples/s)")
    print(f"perfkit promtext.parse:                           {best_mine:.3f} s "
          f"({n / best_mine:,.0f} samples/s)  ratio {best_client / best_mine:.1f}x")
    print(f"perfkit ingest end to end into DuckDB:            {best_e2e:.3f} s "
          f"({stored / best_e2e:,.0f} samples/s)  ratio {best_client / best_e2e:.1f}x")
    if not same:
        raise SystemExit("MISMATCH: perfkit and prometheus_client disagree")


if __name__ == "__main__":
    main()
