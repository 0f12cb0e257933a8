"""Calibration of the A/B judge against the real demo server: its false-alarm rate and its detection rate.

    .venv/bin/python benchmarks/ab_calibration.py [--blocks 20 --duration 2.5 --rate 120 --slowdown 1.1]

Two ``perfkit serve-demo`` processes on loopback, identical but for
``--slowdown``: A (1.0) and B (``--slowdown``, default 1.1: each inference
request's handling takes 10 % longer, by real work on the server). Each *block*
runs nine short open-loop benchmarks, three rounds of {A as baseline, A again,
B} in a rotating order (so no arm always runs first), and yields:

* one A/A comparison (A against A: the same configuration in both arms) and one
  A/B comparison (A against B), each with 3 runs per arm, and
* the same two with 1 run per arm (the first round's runs).

Every comparison is ``perfkit.analyze.abtest.compare_runs`` with its default
thresholds (5 % margin, 90 % intervals). The false-alarm rate is the share of
A/A comparisons judged FAIL; the detection rate the share of A/B comparisons
judged FAIL; each is printed with its exact Clopper–Pearson 95 % interval
(:func:`perfkit.quantiles.proportion_ci`). Also printed: the measured shift of
B's P50 over A's (what ``--slowdown`` did end to end), the run-to-run spread of
A's P50, and the effective sample size per run next to its request count.

Runs go to a temporary store unless ``--db`` is given; the default (20 blocks,
180 runs of 2.5 s at 120 req/s) takes about nine minutes on two cores.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit import bench, store  # noqa: E402
from perfkit.analyze import abtest  # noqa: E402
from perfkit.bench import BenchConfig, Stage  # noqa: E402
from perfkit.demo.launch import DemoServer  # noqa: E402
from perfkit.quantiles import proportion_ci  # noqa: E402

ARMS = ("base", "same", "slow")   # A as baseline, A again (the A/A candidate), B (the A/B candidate)


def block_order(block: int, rounds: int = 3) -> list[tuple[str, int]]:
    """(arm, round) of one block: each round a rotation of the arms, shifted by the block."""
    out = []
    for r in range(rounds):
        k = (block + r) % len(ARMS)
        out += [(arm, r + 1) for arm in ARMS[k:] + ARMS[:k]]
    return out


def run_blocks(urls: dict[str, str], args: argparse.Namespace, db: str) -> dict[int, dict[str, list[str]]]:
    """Run every block; the run ids per block and arm, in round order."""
    base = BenchConfig(stages=[Stage("constant", duration_s=args.duration, rate_rps=args.rate)], quiet=True,
                       collect=False, db=db, min_duration_s=min(args.duration, 1.0), min_queries=50)
    for arm in ("base", "slow"):  # warm-up, not judged
        bench.run(dataclasses.replace(base, target=urls[arm], label="calibration=warmup"))
    runs: dict[int, dict[str, list[str]]] = {}
    started = time.monotonic()
    for block in range(args.blocks):
        runs[block] = {arm: [] for arm in ARMS}
        for arm, rnd in block_order(block):
            label = f"calibration=ab,block={block},arm={arm},repeat={rnd}"
            summary = bench.run(dataclasses.replace(base, target=urls[arm], label=label))
            runs[block][arm].append(str(summary["run_id"]))
        print(f"  block {block + 1}/{args.blocks} done ({time.monotonic() - started:,.0f} s)", flush=True)
    return runs


def judge(db: str, runs: dict[int, dict[str, list[str]]]) -> dict[tuple[str, int], list[abtest.Verdict]]:
    """Verdicts per (kind, runs per arm): kind aa (base vs same) or ab (base vs slow)."""
    out: dict[tuple[str, int], list[abtest.Verdict]] = {}
    with store.connect(db, read_only=True) as con:
        for ids in runs.values():
            for kind, cand in (("aa", "same"), ("ab", "slow")):
                for k in (1, 3):
                    v = abtest.compare_runs(con, ids["base"][:k], ids[cand][:k])
                    out.setdefault((kind, k), []).append(v)
    return out


def rate_line(name: str, verdicts: list[abtest.Verdict]) -> str:
    fails = sum(v.verdict == "fail" for v in verdicts)
    est = proportion_ci(fails, len(verdicts), 0.95)
    counts = {d: sum(v.verdict == d for v in verdicts) for d in ("fail", "inconclusive", "pass")}
    return (f"{name}: {fails}/{len(verdicts)} FAIL = {est.value:.0%} [95% CI {est.lo:.0%}, {est.hi:.0%}]"
            f"  (fail {counts['fail']}, inconclusive {counts['inconclusive']}, pass {counts['pass']})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--blocks", type=int, default=20, help="A/A and A/B comparisons of each kind (default 20)")
    p.add_argument("--duration", type=float, default=2.5, help="seconds per run (default 2.5)")
    p.add_argument("--rate", type=float, default=120.0, help="requests/s per run (default 120)")
    p.add_argument("--slowdown", type=float, default=1.1, help="B's serve-demo --slowdown (default 1.1)")
    p.add_argument("--db", help="store to write the runs to (default: a temporary one)")
    args = p.parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "calibration.duckdb")
        with DemoServer() as a, DemoServer(slowdown=args.slowdown) as b:
            print(f"servers up: A {a.url} (slowdown 1), B {b.url} (slowdown {args.slowdown:g}); "
                  f"{args.blocks} blocks of 9 runs, {args.duration:g} s at {args.rate:g} req/s", flush=True)
            runs = run_blocks({"base": a.url, "same": a.url, "slow": b.url}, args, db)
        verdicts = judge(db, runs)
    print()
    print("judge: perfkit.analyze.abtest defaults (5% margin, 0.1 ms floor, 90% intervals, 0.5 pp on errors)")
    for k in (1, 3):
        print(rate_line(f"A/A false alarms, {k} run(s) per arm", verdicts[("aa", k)]))
        print(rate_line(f"A/B (+{args.slowdown - 1:.0%}) detection, {k} run(s) per arm", verdicts[("ab", k)]))
    ab3 = verdicts[("ab", 3)]
    shift = np.array([v.metrics[0].relative for v in ab3])
    p50s = np.array([[r.point[0] for r in v.baseline.runs] for v in ab3])
    per_run = [(r.n, r.n_effective) for v in ab3 for r in v.baseline.runs]
    print(f"measured P50 shift of B over A (3 runs per arm): median {np.median(shift):+.1%}, "
          f"range {shift.min():+.1%} .. {shift.max():+.1%}")
    print(f"A's P50 run to run: median {np.median(p50s):.2f} ms, relative SD within a block "
          f"{np.mean(p50s.std(axis=1, ddof=1) / p50s.mean(axis=1)):.1%}")
    print(f"requests per run {np.mean([n for n, _ in per_run]):,.0f}, effective (autocorrelation) "
          f"{np.mean([e for _, e in per_run]):,.0f}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"took {time.monotonic() - began:,.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
