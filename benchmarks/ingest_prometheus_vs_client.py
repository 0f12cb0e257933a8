"""Benchmark: perfkit's exposition parser vs prometheus_client's, on the same text.

Generates a deterministic, histogram-heavy Prometheus 0.0.4 exposition (about
220,000 samples: request-latency histograms with 12 buckets, _sum and _count,
plus counters and gauges, a few escaped label values), parses it with
``prometheus_client.parser.text_string_to_metric_families`` and with
``perfkit.ingest.promtext.parse``, checks the samples are identical (name,
labels, value, timestamp), times a full ingest into a temporary DuckDB file
(checking that a second ingest of the file is a no-op), and prints both
ratios (parse alone, and end to end: file bytes -> rows committed in DuckDB)
as medians over interleaved rounds, with the load average.

    .venv/bin/python benchmarks/ingest_prometheus_vs_client.py [--samples 220000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import random
import statistics
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
    ap.add_argument("--repeat", type=int, default=5,
                    help="rounds; each times prometheus_client, the parse and a full ingest once")
    args = ap.parse_args()

    from perfkit import store
    from perfkit.ingest import importers, promtext

    text = generate(args.samples)
    client_s, parse_s, e2e_s = [], [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expo.prom"
        path.write_text(text)
        for i in range(args.repeat):
            # interleaved rounds: a burst of load on this shared machine hits all three.
            # Each timing starts with no garbage pending, so a full collection of the
            # previous step's objects (prometheus_client makes ~10^6) is not billed to it.
            gc.collect()
            t0 = time.perf_counter()
            theirs = client_records(text)
            client_s.append(time.perf_counter() - t0)
            n_theirs = len(theirs)
            if i == 0:
                theirs_keys = sorted(map(_key, theirs))
            del theirs
            gc.collect()
            t0 = time.perf_counter()
            expo = promtext.parse(text, "<generated>")
            parse_s.append(time.perf_counter() - t0)
            con = store.connect(Path(tmp) / f"bench{i}.duckdb", quiet=True)
            gc.collect()
            # end to end: file bytes -> sha256, parse, series + samples committed in one transaction
            t0 = time.perf_counter()
            importers.ingest_file(con, "prometheus", path, quiet=True)
            e2e_s.append(time.perf_counter() - t0)
            stored = con.execute("SELECT count(*) FROM samples").fetchone()[0]
            again = importers.ingest_file(con, "prometheus", path, quiet=True)
            if not again.skipped or con.execute("SELECT count(*) FROM samples").fetchone()[0] != stored:
                raise SystemExit("re-ingest was not a no-op")
            con.close()
    n = len(expo)
    mine = expo.as_records()
    # prometheus_client renames 0.0.4 counters: requests_total stays, so no munging needed here.
    same = sorted(map(_key, mine)) == theirs_keys
    med_client, med_parse, med_e2e = (statistics.median(x) for x in (client_s, parse_s, e2e_s))
    print(f"exposition: {n:,} samples, {len(text) / 1e6:.1f} MB; identical to prometheus_client: {same}; "
          f"stored {stored:,} samples")
    print(f"{args.repeat} interleaved rounds; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs); median (best)")
    print(f"prometheus_client text_string_to_metric_families: {med_client:.3f} s ({min(client_s):.3f}) "
          f"{n_theirs / med_client:,.0f} samples/s")
    print(f"perfkit promtext.parse:                           {med_parse:.3f} s ({min(parse_s):.3f}) "
          f"{n / med_parse:,.0f} samples/s")
    print(f"perfkit ingest end to end into DuckDB:            {med_e2e:.3f} s ({min(e2e_s):.3f}) "
          f"{stored / med_e2e:,.0f} samples/s")
    per_round_e2e = sorted(c / e for c, e in zip(client_s, e2e_s))
    print(f"parse ratio:      {med_client / med_parse:.1f}x  (medians)")
    print(f"END-TO-END ratio: {med_client / med_e2e:.1f}x  (medians; per round "
          f"{' '.join(f'{r:.1f}' for r in per_round_e2e)})")
    if not same:
        raise SystemExit("MISMATCH: perfkit and prometheus_client disagree")


if __name__ == "__main__":
    main()
