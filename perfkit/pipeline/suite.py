"""The report suites behind ``make report``: what to benchmark against the demo server and what to render.

A suite is declarative: a list of :class:`Case` (demo-server options, ``perfkit
bench`` flags, optionally an nginx proxy in front, and the per-run notebooks)
and a list of :class:`Comparison` (a notebook over several cases' runs, its
parameters naming runs as ``{run:CASE}``, all of them as ``{runs}``). To add a
case or a report, append one entry to ``DEFAULT_CASES`` / ``DEFAULT_REPORTS``.

This module only describes suites (and holds the pure helpers over them);
:mod:`perfkit.pipeline.run` executes one. Runs are labelled
``suite=<UTC stamp>,case=<name>`` so notebooks and ``perfkit runs`` can find them.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from perfkit.errors import UsageError
from perfkit.names import LABEL_CASE, LABEL_SUITE


@dataclass(frozen=True)
class Case:
    """One benchmark run of the suite."""

    name: str
    bench: Mapping[str, Any]                       # perfkit bench flags: {"rate": 200, "duration": 20}
    server: Mapping[str, Any] = field(default_factory=dict)   # DemoServer(**server) options
    proxy: bool = False                            # send the load through NginxProxy(server.url)
    notebooks: tuple[str, ...] = ("01_benchmark",)  # per-run notebooks (run_id injected)
    requires: tuple[str, ...] = ()                 # capabilities, see capabilities.capability_missing()
    labels: str = ""                               # extra k=v label pairs, e.g. "hardware=cpu-demo"
    about: str = ""


@dataclass(frozen=True)
class Comparison:
    """One report over the suite's runs: ``{run:CASE}``, ``{runs}`` and ``{suite}`` are filled in."""

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    about: str = ""


@dataclass(frozen=True)
class Suite:
    """A named list of cases and the comparison reports over their runs."""

    name: str
    cases: tuple[Case, ...]
    reports: tuple[Comparison, ...] = ()


# ---- the default suite ----------------------------------------------------------------------
# Rates measured on a 2-core machine where the load generator and the demo server share the
# cores: the dynamic-batching classifier holds P99 near 10 ms up to ~1,000 req/s, so 200 req/s
# leaves head-room for other work; fixed batching at 100 req/s waits to fill batches of 16.

STEADY = {"pattern": "constant", "rate": 200, "duration": 20}
BATCHING_STEPS = {"pattern": "step", "rate": 50, "duration": 15, "step_rps": 50, "step_s": 5, "steps": 3}
# The demo server on this machine, as a "hardware" for notebooks 05/06 (label key hardware).
THIS_MACHINE = "hardware=cpu-demo"
# Its hourly price, a visible assumption: a 2-vCPU on-demand VM (AWS c6i.large, us-east-1 list price).
THIS_MACHINE_PRICE = "cpu-demo:0.085"

DEFAULT_CASES: tuple[Case, ...] = (
    Case("steady", STEADY, labels=THIS_MACHINE, notebooks=("01_benchmark", "02_telemetry"),
         about="constant 200 req/s, dynamic batching: the baseline"),
    Case("burst", {"pattern": "burst", "rate": 100, "duration": 20, "spike_rps": 600,
                   "spike_period_s": 5, "spike_s": 1}, requires=("bench:pattern:burst",), labels=THIS_MACHINE,
         about="100 req/s with a 1 s spike to 700 req/s every 5 s"),
    Case("step", {"pattern": "step", "rate": 100, "duration": 20, "step_rps": 150, "step_s": 4,
                  "steps": 5}, requires=("bench:pattern:step",), labels=THIS_MACHINE,
         about="100 to 700 req/s in five 4 s steps"),
    # batching cases step the load (50, 100, 150 req/s) so that 03_root_cause can see whether the
    # batch follows it (analyze: rootcause.fixed_batching needs >= 1.5x load variation)
    Case("batching-dynamic", BATCHING_STEPS, server={"batching": "dynamic", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=dynamic,max_batch=16",
         about="dynamic batching (up to 16 or 5 ms) at 50, 100, 150 req/s"),
    Case("batching-fixed", BATCHING_STEPS, server={"batching": "fixed", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=fixed,max_batch=16",
         about="fixed batching (wait to fill 16, padded) at 50, 100, 150 req/s, server otherwise the same"),
    # direct and proxy run back to back on the same warm server, so the nginx hop is the only
    # difference (steady runs first, on a cold server, and is no fair baseline for it)
    Case("direct", STEADY, requires=("nginx",), labels="proxy=none",
         about="the steady load straight to the server: the baseline for the proxy case"),
    Case("proxy", STEADY, proxy=True, requires=("nginx",), labels="proxy=nginx",
         about="the steady load through an nginx reverse proxy (compare with direct)"),
    Case("llm-stream", {"pattern": "poisson", "rate": 5, "duration": 20, "protocol": "openai",
                        "max_tokens": 24}, requires=("bench:protocol:openai",),
         about="OpenAI chat completions, streamed, Poisson 5 req/s, up to 24 tokens each"),
)

DEFAULT_REPORTS: tuple[Comparison, ...] = (
    Comparison("03_root_cause", "03_root_cause", {"run_ids": "{runs}"},
               about="ranked findings over the suite: fixed vs dynamic batching, the nginx hop, GPU export"),
    Comparison("04_ab_compare", "04_ab_compare",
               {"baseline": "{run:batching-dynamic}", "candidate": "{run:batching-fixed}"},
               about="A/B verdict: fixed batching (candidate) against dynamic batching (baseline)"),
    Comparison("04_ab_compare-proxy", "04_ab_compare", {"baseline": "{run:direct}", "candidate": "{run:proxy}"},
               about="A/B verdict: through nginx (candidate) against direct (baseline), same load"),
    Comparison("05_hardware_comparison", "05_hardware_comparison",
               {"price_overrides": THIS_MACHINE_PRICE},
               about="datasheets, MLPerf and this machine's measured runs (label hardware=cpu-demo)"),
    Comparison("06_tco", "06_tco", {"price_overrides": THIS_MACHINE_PRICE},
               about="cost per 1M requests and fleet sizing from the catalog and the measured runs"),
)

SUITES: dict[str, Suite] = {"default": Suite("default", DEFAULT_CASES, DEFAULT_REPORTS)}


def get_suite(name: str) -> Suite:
    """The suite registered as ``name``; a :class:`UsageError` naming the known ones otherwise."""
    try:
        return SUITES[name]
    except KeyError:
        raise UsageError(f"unknown suite {name!r} (known: {', '.join(sorted(SUITES))})") from None


# ---- pure helpers -------------------------------------------------------------------------------

def server_key(options: Mapping[str, Any]) -> str:
    """Cases with equal server options share one demo server: this is the grouping key."""
    return json.dumps(dict(options), sort_keys=True, default=str)


def case_label(stamp: str, case: Case) -> str:
    """``suite=<stamp>,case=<name>`` plus the case's own label pairs: what ``perfkit bench --label`` gets."""
    return ",".join(x for x in (f"{LABEL_SUITE}={stamp},{LABEL_CASE}={case.name}", case.labels) if x)


_RUN_REF = re.compile(r"\{run:([^{}]+)\}")


def fill_parameters(params: Mapping[str, Any], run_ids: Mapping[str, str], suite_label: str) -> dict[str, Any]:
    """Replace ``{run:CASE}``, ``{runs}`` and ``{suite}`` inside string parameters.

    ``"{run:steady},{run:proxy}"`` becomes ``"RUN1,RUN2"``; a case without a run raises KeyError.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            value = _RUN_REF.sub(lambda m: run_ids[m.group(1)], value)
            value = value.replace("{runs}", ",".join(run_ids.values())).replace("{suite}", suite_label)
        out[key] = value
    return out


def suite_stamp(now: dt.datetime | None = None) -> str:
    """The suite's id: the start time, UTC, ``20261125T020506Z``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
