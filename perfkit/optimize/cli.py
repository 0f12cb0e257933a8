"""``perfkit optimize``: build the model variants, score them on held-out digits, serve and benchmark each.

Exit codes: 0 done, 2 bad flags (an unknown variant name). The work is in
:mod:`perfkit.optimize.measure`; the tables in :mod:`perfkit.optimize.results`;
notebook 08 shows the stored record.
"""
from __future__ import annotations

import argparse
import sys
import time

from perfkit.cliutil import add_command, add_db_argument
from perfkit.errors import UsageError

_DESCRIPTION = (
    "Build variants of the demo's digits classifier (dynamic and static QDQ INT8 with MinMax, Entropy or "
    "Percentile calibration, per-channel or per-tensor; magnitude pruning at 50/80/90 %; structured pruning "
    "that removes hidden units; a distilled 32x32 student against the same student on hard labels; ONNX Runtime "
    "graph levels and 2 threads), measure each one's accuracy on the held-out test split (Clopper-Pearson "
    "interval), then serve it with 'perfkit serve-demo --model-variant NAME' and benchmark it with 'perfkit "
    "bench' (open-loop Poisson, interleaved repeats), recording P50/P99, peak RSS, model size and CPU per "
    "request; then the edge profile: each variant on one thread under an RLIMIT_AS cap in a SingleStream "
    "closed loop (frames/s, P90). Runs are labelled optimize=ID,variant=NAME,repeat=I; the record is written to optimize/ID.json "
    "next to the database. Notebook 08 draws the frontier.")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``perfkit optimize``."""
    p = add_command(sub, "optimize", _cmd_optimize, description=_DESCRIPTION,
                    help="build, score, serve and benchmark quantized, pruned and distilled model variants")
    p.add_argument("--variants", default="", metavar="NAME,NAME",
                   help="variants to measure (default: a subset of 8, about 2-3 minutes; fp32 is always added)")
    p.add_argument("--all", action="store_true", help="measure every variant (see --list)")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--rate", type=float, default=100.0, metavar="RPS", help="open-loop rate (default 100)")
    p.add_argument("--duration", type=float, default=3.0, metavar="S", help="seconds per run (default 3)")
    p.add_argument("--repeats", type=int, default=2, metavar="N",
                   help="interleaved runs per variant (default 2; the A/B verdict wants 3 or more)")
    p.add_argument("--price-per-hour", type=float, default=0.085, metavar="USD",
                   help="this machine's hourly price, for the cost per 1,000 queries "
                        "(default 0.085: a 2-vCPU on-demand VM, AWS c6i.large list price)")
    p.add_argument("--edge-cap-mb", type=int, default=4096, metavar="MB",
                   help="edge profile: address-space cap (RLIMIT_AS) of each variant's one-thread SingleStream "
                        "process (default 4096; 0 skips the edge profile)")
    p.add_argument("--edge-seconds", type=float, default=1.0, metavar="S",
                   help="edge profile: seconds of SingleStream per variant (default 1)")
    p.add_argument("--model", default=None, metavar="FILE.onnx",
                   help="bring your own classifier: build its INT8 and graph-level variants, score them on "
                        "--test-set and run the edge profile (no serving, no pruning or distillation)")
    p.add_argument("--test-set", default=None, metavar="FILE.npz",
                   help="with --model: arrays inputs and labels (and optionally calibration; else the first "
                        "quarter of inputs calibrates and is not scored)")
    add_db_argument(p)


def _names(args: argparse.Namespace) -> list[str]:
    from perfkit.optimize.variants import DEFAULT_VARIANTS, SPECS

    if args.all:
        return list(SPECS)
    if not args.variants:
        return list(DEFAULT_VARIANTS)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise UsageError(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(SPECS)}")
    return ["fp32", *[n for n in names if n != "fp32"]]


def _cmd_optimize(args: argparse.Namespace) -> int:
    from perfkit.optimize.variants import SPECS

    if args.list:
        for spec in SPECS.values():
            print(f"{spec.name:28} {spec.technique:22} {spec.about}")
        return 0
    if args.model or args.test_set:
        return _byo(args)
    names = _names(args)
    if args.repeats < 1 or args.duration <= 0 or args.rate <= 0:
        raise UsageError("--repeats, --duration and --rate must be positive")
    from perfkit import store
    from perfkit.optimize import measure, results

    started = time.perf_counter()
    path = measure.optimize(names, rate_rps=args.rate, duration_s=args.duration, repeats=args.repeats,
                            db=args.db, edge_cap_mb=args.edge_cap_mb or None, edge_s=args.edge_seconds,
                            progress=lambda msg: print(msg, file=sys.stderr))
    record = measure.load(args.db, path.stem)
    assert record is not None, "just written"
    with store.connect(args.db, read_only=True) as con:
        table = results.variant_table(con, record, args.price_per_hour)
        verdicts = results.verdicts(con, record)
    table = table.merge(verdicts[["variant", "p99"]], on="variant", how="left").fillna({"p99": "-"})
    print(f"{'variant':26} {'accuracy [95% CI]':22} {'kept':>6} {'P50 ms':>7} {'P99 ms [95% CI]':22} "
          f"{'xP99':>5} {'xthru':>5} {'xkern':>5} {'size KB':>8} {'RSS MB':>7} P99 vs FP32")
    for r in table.itertuples():
        print(f"{r.variant:26} {100 * r.accuracy:5.1f} [{100 * r.acc_lo:4.1f}, {100 * r.acc_hi:5.1f}]  "
              f"{r.kept_pct:5.1f}% {r.p50_ms:7.2f} {r.p99_ms:6.2f} [{r.p99_lo:6.2f}, {r.p99_hi:6.2f}] "
              f"{r.p99_ratio:5.2f} {r.throughput_ratio:5.2f} {r.kernel_ratio:5.2f} {r.size_kb:8.0f} {r.peak_rss_mb:7.0f} "
              f"{r.p99}")
    edge = results.edge_table(record)
    for e in edge.itertuples():
        print(f"edge {e.variant:26} " + (f"{e.fps:9,.0f} frames/s  P90 {1000 * e.p90_ms:7.1f} us  (1 thread, "
                                         f"{e.cap_mb} MB cap, SingleStream)" if e.loaded else e.reason))
    print(results.conclusion(table, verdicts))
    print(f"record {path}; built+scored {record['build_s']:.0f} s, served+benchmarked {record['bench_s']:.0f} s, "
          f"edge {record.get('edge_s', 0):.0f} s, total {time.perf_counter() - started:.0f} s")
    return 0


def _byo(args: argparse.Namespace) -> int:
    if not (args.model and args.test_set):
        raise UsageError("--model and --test-set go together")
    from perfkit.optimize import byo

    table = byo.evaluate(args.model, byo.load_test_set(args.test_set), edge_cap_mb=args.edge_cap_mb or None,
                         edge_s=args.edge_seconds)
    print(f"{'variant':22} {'accuracy [95% CI]':22} {'kept':>6} {'size KB':>8} {'xsize':>5} {'call ms':>8} "
          f"{'xcall':>5} edge (1 thread, SingleStream)")
    for r in table.itertuples():
        if str(r.note).startswith("not built"):
            print(f"{r.variant:22} {r.note}")
            continue
        edge = r.note or (f"{r.edge_fps:,.0f} frames/s, P90 {r.edge_p90_ms:.3f} ms" if "edge_fps" in table else "-")
        print(f"{r.variant:22} {100 * r.accuracy:5.1f} [{100 * r.acc_lo:4.1f}, {100 * r.acc_hi:5.1f}]  "
              f"{r.kept_pct:5.1f}% {r.size_kb:8.0f} {r.size_ratio:5.2f} {r.kernel_ms:8.3f} {r.kernel_ratio:5.2f} {edge}")
    print(f"scored on {int(table['tested'].iloc[0])} samples of {args.test_set}")
    return 0
