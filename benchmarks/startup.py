"""How long perfkit takes to start: the commands a user types, against `python -c pass` as the floor.

    .venv/bin/python benchmarks/startup.py [--repeat 5]

Each line is the median wall time of ``--repeat`` runs (after one unmeasured run that
warms the file cache), from spawning the process to:

* ``python -c pass``: its exit (the floor: no command can start faster);
* ``perfkit --help``, ``perfkit bench --help``: their exit (the command line registers
  every stage without loading numpy, pandas or DuckDB);
* ``perfkit ingest prometheus FILE --db DB``: its exit, FILE a one-line exposition (a new
  value each time, so that every run writes);
* ``perfkit bench`` (with and without live telemetry): its first request leaving, as the
  run's "started" line on stderr says, against ``perfkit serve-demo`` on a free loopback
  port started by this script; the run is then stopped with SIGINT (not timed).

Figures only, no verdict: the machine's load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit.demo.launch import DemoServer  # noqa: E402

PERFKIT = [sys.executable, "-m", "perfkit"]


def to_exit(cmd: list[str]) -> float:
    """Seconds from spawn to exit (the command must succeed)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def to_first_send(cmd: list[str]) -> float:
    """Seconds from spawn to the run's "started: first request sent" line; then SIGINT."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = None
    for line in proc.stderr:
        if "started: first request sent" in line:
            seen = time.perf_counter() - t
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    if seen is None:
        raise RuntimeError(f"{' '.join(cmd[2:])} never sent a request (exit {proc.returncode})")
    return seen


def measure(fn: Callable[[int], float], repeat: int) -> list[float]:
    fn(-1)  # warm the file cache; not counted
    return [fn(i) for i in range(repeat)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (median reported)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="perfkit-startup-"))

    def ingest(i: int) -> float:
        expo = tmp / f"probe{i}.prom"
        expo.write_text(f"perfkit_startup_probe {i}\n")
        return to_exit([*PERFKIT, "ingest", "prometheus", str(expo), "--db", str(tmp / "ingest.duckdb")])

    with DemoServer() as demo:
        bench = [*PERFKIT, "bench", "--target", demo.url, "--rate", "50", "--duration", "60",
                 "--db", str(tmp / "bench.duckdb")]
        cases: list[tuple[str, Callable[[int], float]]] = [
            ("python -c pass (floor)", lambda i: to_exit([sys.executable, "-c", "pass"])),
            ("perfkit --help", lambda i: to_exit([*PERFKIT, "--help"])),
            ("perfkit bench --help", lambda i: to_exit([*PERFKIT, "bench", "--help"])),
            ("perfkit ingest prometheus (1 line)", ingest),
            ("perfkit bench -> first request", lambda i: to_first_send(bench)),
            ("perfkit bench --no-collect -> first request", lambda i: to_first_send([*bench, "--no-collect"])),
        ]
        print(f"startup wall time, median of {args.repeat} (min..max); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
        floor = None
        for name, fn in cases:
            times = measure(fn, args.repeat)
            med = statistics.median(times)
            floor = floor or med
            print(f"  {name:<46} {med:6.3f} s  ({min(times):.3f}..{max(times):.3f})  "
                  f"{med / floor:5.1f}x the floor", flush=True)


if __name__ == "__main__":
    main()
