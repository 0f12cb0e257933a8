"""A short demo history for the trends report: one case benchmarked several times while the server slows.

On a fresh clone there is no history to follow, so ``make report`` builds one
once per database when ``PERFKIT_DEMO_HISTORY=1``: :data:`DEMO_RUNS` short runs of the case ``demo-history``
against the demo server, the first ones as ``version=demo-1.0``, then, from run
:data:`STEP_AT` on, against a server started with ``--slowdown`` as
``version=demo-1.1-slow``. ``perfkit trend`` must find one regression there,
at run :data:`STEP_AT`, and nothing else; ``perfkit trend --gate`` then fails
until it is acknowledged (``perfkit trend --ack CHANGE_ID --reason TEXT``).
About 8 x 2 s of load plus two server starts (~30 s in all).

Every other pipeline run gets its ``version`` label from ``$PERFKIT_VERSION_LABEL``
when the scheduler sets it (:func:`perfkit.pipeline.bench.with_version`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from perfkit.names import LABEL_CASE, LABEL_REPEAT, LABEL_SUITE, LABEL_VERSION
from perfkit.pipeline.placement import Placement, here

DEMO_CASE = "demo-history"
DEMO_RUNS = 8
STEP_AT = 5                 # first slowed run (1-based)
DEMO_SLOWDOWN = 1.5         # serve-demo --slowdown from STEP_AT on (2.0 overloads a busy 2-core host at 200 req/s)
DEMO_HISTORY_ENV = "PERFKIT_DEMO_HISTORY"  # "1": build it (opt-in until the slowed demo answers under load)
DEMO_LOAD = {"pattern": "constant", "rate": 100, "duration": 2, "quiet": True}


def has_history(db: str) -> bool:
    """Whether the database already holds the demo history (it is built once)."""
    from perfkit import store
    from perfkit.store import runs

    if not Path(db).exists():
        return False
    with store.connect(db, read_only=True, quiet=True) as con:
        return bool(runs.select_runs(con, {LABEL_CASE: DEMO_CASE}))


def build_demo_history(db: str, stamp: str, log: Path, say: Callable[[str], None] = print,
                       placement: Placement | None = None) -> list[str]:
    """Run the demo history (unless the database has it), server and load generator on the CPUs of
    ``placement`` (default: :func:`perfkit.pipeline.placement.here`); the run ids, oldest first."""
    from perfkit.demo.launch import DemoServer
    from perfkit.pipeline.bench import BenchFailed, run_bench

    if os.environ.get(DEMO_HISTORY_ENV) != "1" or has_history(db):
        return []
    placement = placement or here()
    say(f"demo history: {DEMO_RUNS} runs of case {DEMO_CASE}, --slowdown {DEMO_SLOWDOWN} from run {STEP_AT}")
    run_ids: list[str] = []
    for slowdown, version, repeats in ((1.0, "demo-1.0", range(1, STEP_AT)),
                                       (DEMO_SLOWDOWN, "demo-1.1-slow", range(STEP_AT, DEMO_RUNS + 1))):
        with DemoServer(slowdown=slowdown, cpus=placement.server) as server:
            for i in repeats:
                label = (f"{LABEL_SUITE}={stamp},{LABEL_CASE}={DEMO_CASE},{LABEL_VERSION}={version},"
                         f"{LABEL_REPEAT}={i}")
                try:
                    summary = run_bench(server.url, DEMO_LOAD, label=label, db=db, target_pid=server.pid,
                                        log=log, timeout_s=120, cpus=placement.generator)
                except BenchFailed as exc:
                    say(f"  demo history run {i}: {exc}")
                    continue
                run_ids.append(str(summary["run_id"]))
    return run_ids
