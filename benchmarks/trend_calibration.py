"""How often `perfkit trend` flags noise, and how soon it finds a real step.

Synthetic nightly histories of one metric: each run is ``level * lognormal(0, noise)``.
False positives: flat histories of --runs runs where any regression or improvement (against
the 5 % margin) is reported. Detection: --before flat runs, then a 5 % and a 10 % step; after
each new run the history is searched again (as a nightly pipeline does); found = a regression
within one run of the step within --after runs; delay = runs since the step when first found.
Rates with 95 % Clopper-Pearson intervals (perfkit.quantiles.proportion_ci).

    .venv/bin/python benchmarks/trend_calibration.py            # 1,000 flat, 300 per step
"""
from __future__ import annotations

import argparse
import time

from perfkit.analyze import trend_calibration as cal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flat-trials", type=int, default=1000)
    ap.add_argument("--step-trials", type=int, default=300)
    ap.add_argument("--runs", type=int, default=30, help="runs in a flat history")
    ap.add_argument("--before", type=int, default=20, help="flat runs before the step")
    ap.add_argument("--after", type=int, default=10, help="runs after the step to find it in")
    ap.add_argument("--noise", type=float, default=0.03, help="run-to-run lognormal sigma (0.03 = ~3 %%)")
    ap.add_argument("--margin", type=float, default=0.05)
    args = ap.parse_args()
    started = time.monotonic()
    print(cal.false_positives(args.flat_trials, args.runs, args.noise, args.margin).line())
    for step in (0.05, 0.10):
        print(cal.detection(args.step_trials, step, args.before, args.after, args.noise, args.margin).line())
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
