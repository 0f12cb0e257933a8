"""The report suites behind ``make report``: what to benchmark against the demo server and what to render.

A suite is declarative: a list of :class:`Case` (demo-server options, ``perfkit
bench`` flags, or ``perfkit sweep`` flags for a sweep case, optionally an nginx proxy
in front, and the per-run notebooks)
and a list of :class:`Comparison` (a notebook over several cases' runs, its
parameters naming runs as ``{run:CASE}``, all of them as ``{runs}``, and every
repeat of a case as the label selector ``{case:CASE}``). To add a case or a
report, append one entry to ``DEFAULT_CASES`` / ``DEFAULT_REPORTS``.

A/B cases run more than once (``repeats``): the run is the unit of replication
of an A/B verdict. Cases that share an ``interleave`` group alternate, ABBA
(``A B B A A B``), so that a drift of the machine falls on both arms alike;
:func:`schedule` gives the order.

This module only describes suites (and holds the pure helpers over them);
:mod:`perfkit.pipeline.run` executes one. Runs are labelled
``suite=<UTC stamp>,case=<name>`` (and ``repeat=<i>`` for repeated cases) so
notebooks and ``perfkit runs`` can find them.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from perfkit.errors import UsageError
from perfkit.names import LABEL_CASE, LABEL_REPEAT, LABEL_SUITE


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
    repeats: int = 1                               # runs of this case (an A/B arm wants >= 3)
    interleave: str = ""                           # cases of one group run alternately (ABBA)
    sweep: Mapping[str, Any] = field(default_factory=dict)  # given: `perfkit sweep` flags ({"rates": "10,20"});
    #                                                the case is a sweep, ``bench`` holds each step's flags

    @property
    def load_s(self) -> float:
        """Seconds of load one run of the case sends (a sweep: each rate's, at most; it may stop earlier)."""
        steps = len(str(self.sweep.get("rates", "")).split(",")) if self.sweep else 1
        return float(self.bench.get("duration", 0)) * steps


@dataclass(frozen=True)
class Comparison:
    """One report over the suite's runs: ``{run:CASE}``, ``{case:CASE}``, ``{runs}`` and ``{suite}`` are filled in."""

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
# Rates sized for a 2-core machine with the demo server pinned to one core and the load generator to
# the other (pipeline.placement): the dynamic-batching classifier on its one core holds P99 near 15 ms
# up to the step case's 700 req/s when the load rises gradually, but a sudden 1 s jump to 700 req/s
# queued requests for ~180 ms and the generator, opening a connection per waiting request, fell
# behind its schedule (lag P99 48 ms); a jump to 400 req/s keeps P99 near 20 ms. Fixed batching at
# 100 req/s waits to fill batches of 16. The index says when the generator still fell behind.

# The steady case runs first, on a cold server: its first 2 s (taken out of the 20, so the suite
# is no longer) are a warm-up, sent and stored but left out of the statistics.
STEADY = {"pattern": "constant", "rate": 200, "duration": 20, "warmup_s": 2}
# A/B arms run 3 times each (interleaved), so each run is short: the batching steps 4 s apiece (03_root_cause
# still sees 50, 100 and 150 req/s in 2 s scrapes), the proxy trio 4 s of the steady load (800 requests).
AB_REPEATS = 3
BATCHING_STEPS = {"pattern": "step", "rate": 50, "duration": 12, "step_rps": 50, "step_s": 4, "steps": 3}
STEADY_AB = {"pattern": "constant", "rate": 200, "duration": 4, "min_duration_s": 3}
# The demo server on this machine, as a "hardware" for notebooks 05/06 (label key hardware).
THIS_MACHINE = "hardware=cpu-demo"
# Its hourly price, a visible assumption: a 2-vCPU on-demand VM (AWS c6i.large, us-east-1 list price).
THIS_MACHINE_PRICE = "cpu-demo:0.085"

# The sweep case: the demo's LLM decoding one sequence at a time, 16 tokens each, saturates within reach
# (about 8 req/s on the 2-core machine; the classifier keeps up past 400 req/s); 4 s a step, doubling
# rates, stopping at the first over-saturated one (about 25 s in all there).
SWEEP_STEP = {"pattern": "constant", "duration": 4, "min_duration_s": 3, "timeout_s": 10, "protocol": "openai",
              "max_tokens": 16}
SWEEP = {"rates": "2,4,8,16,32,64", "find_knee": True}

DEFAULT_CASES: tuple[Case, ...] = (
    Case("steady", STEADY, labels=THIS_MACHINE, notebooks=("01_benchmark", "02_telemetry"),
         about="constant 200 req/s, dynamic batching: the baseline (first 2 s a warm-up, excluded)"),
    Case("burst", {"pattern": "burst", "rate": 100, "duration": 20, "spike_rps": 300,
                   "spike_period_s": 5, "spike_s": 1}, requires=("bench:pattern:burst",), labels=THIS_MACHINE,
         about="100 req/s with a 1 s spike to 400 req/s every 5 s"),
    Case("step", {"pattern": "step", "rate": 100, "duration": 20, "step_rps": 150, "step_s": 4,
                  "steps": 5}, requires=("bench:pattern:step",), labels=THIS_MACHINE,
         about="100 to 700 req/s in five 4 s steps"),
    # batching cases step the load (50, 100, 150 req/s) so that 03_root_cause can see whether the
    # batch follows it (analyze: rootcause.fixed_batching needs >= 1.5x load variation)
    Case("batching-dynamic", BATCHING_STEPS, server={"batching": "dynamic", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=dynamic,max_batch=16",
         about="dynamic batching (up to 16 or 5 ms) at 50, 100, 150 req/s, 3 runs",
         repeats=AB_REPEATS, interleave="batching"),
    Case("batching-fixed", BATCHING_STEPS, server={"batching": "fixed", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=fixed,max_batch=16",
         about="fixed batching (wait to fill 16, padded) at 50, 100, 150 req/s, server otherwise the same, 3 runs",
         repeats=AB_REPEATS, interleave="batching"),
    # direct, proxy and direct-again alternate on the same warm server, so the nginx hop is the only
    # difference (steady runs first, on a cold server, and is no fair baseline for it); direct against
    # direct-again is an A/A check: one configuration twice must not come out FAIL
    Case("direct", STEADY_AB, requires=("nginx",), labels="proxy=none",
         about="the steady load straight to the server, 4 s, 3 runs: the baseline for the proxy case",
         repeats=AB_REPEATS, interleave="proxy"),
    Case("proxy", STEADY_AB, proxy=True, requires=("nginx",), labels="proxy=nginx",
         about="the steady load through an nginx reverse proxy, 4 s, 3 runs (compare with direct)",
         repeats=AB_REPEATS, interleave="proxy"),
    Case("direct-again", STEADY_AB, requires=("nginx",), labels="proxy=none", notebooks=(),
         about="the direct case once more, 3 runs: an A/A check against direct",
         repeats=AB_REPEATS, interleave="proxy"),
    Case("llm-stream", {"pattern": "poisson", "rate": 5, "duration": 20, "protocol": "openai",
                        "max_tokens": 24}, requires=("bench:protocol:openai",),
         about="OpenAI chat completions, streamed, Poisson 5 req/s, up to 24 tokens each"),
    Case("sweep", SWEEP_STEP, server={"llm_max_batch": 1}, notebooks=(), sweep=SWEEP,
         requires=("bench:protocol:openai",),
         about="perfkit sweep --find-knee over 2 to 64 req/s of 16-token completions, one sequence at a time, "
               "4 s each: the knee, and the over-saturation stop"),
)

DEFAULT_REPORTS: tuple[Comparison, ...] = (
    Comparison("03_root_cause", "03_root_cause", {"run_ids": "{runs}"},
               about="ranked findings over the suite: fixed vs dynamic batching, the nginx hop, GPU export"),
    Comparison("04_ab_compare", "04_ab_compare",
               {"baseline": "{case:batching-dynamic}", "candidate": "{case:batching-fixed}"},
               about="A/B verdict over 3 + 3 runs: fixed batching (candidate) against dynamic batching (baseline)"),
    Comparison("04_ab_compare-proxy", "04_ab_compare", {"baseline": "{case:direct}", "candidate": "{case:proxy}"},
               about="A/B verdict over 3 + 3 runs: through nginx (candidate) against direct (baseline), same load"),
    Comparison("04_ab_compare-aa", "04_ab_compare", {"baseline": "{case:direct}", "candidate": "{case:direct-again}"},
               about="A/A check over 3 + 3 runs: the direct case against itself must not FAIL"),
    Comparison("05_hardware_comparison", "05_hardware_comparison",
               {"price_overrides": THIS_MACHINE_PRICE},
               about="datasheets, MLPerf and this machine's measured runs (label hardware=cpu-demo)"),
    Comparison("06_tco", "06_tco", {"price_overrides": THIS_MACHINE_PRICE},
               about="cost per 1M requests and fleet sizing from the catalog and the measured runs"),
    Comparison("07_trends", "07_trends", about="each case's runs over time, change points and open regressions"),
    Comparison("08_model_optimization", "08_model_optimization", {"price_per_hour_usd": 0.085},
               about="quantized, pruned and distilled variants served and measured: accuracy against P99, cost"),
    Comparison("09_sweep", "09_sweep", {"sweep": "{case:sweep}"},
               about="the sweep case's latency-throughput curve, its knee and where it over-saturated"),
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


def run_label(stamp: str, case: Case, repeat: int) -> str:
    """:func:`case_label`, plus ``repeat=<i>`` when the case runs more than once."""
    return case_label(stamp, case) + (f",{LABEL_REPEAT}={repeat}" if case.repeats > 1 else "")


def schedule(cases: Sequence[Case]) -> list[tuple[Case, int]]:
    """(case, repeat) in the order they run: the cases' order, each case's repeats back to back,
    except that the cases of one ``interleave`` group alternate, ABBA, from where the group's
    first case stands (``A1 B1 B2 A2 A3 B3``)."""
    out: list[tuple[Case, int]] = []
    done: set[str] = set()
    for case in cases:
        if not case.interleave:
            out += [(case, i) for i in range(1, case.repeats + 1)]
            continue
        if case.interleave in done:
            continue
        done.add(case.interleave)
        group = [c for c in cases if c.interleave == case.interleave]
        for i in range(1, max(c.repeats for c in group) + 1):
            out += [(c, i) for c in (group if i % 2 else group[::-1]) if i <= c.repeats]
    return out


_RUN_REF = re.compile(r"\{run:([^{}]+)\}")
_CASE_REF = re.compile(r"\{case:([^{}]+)\}")


def fill_parameters(params: Mapping[str, Any], run_ids: Mapping[str, str], suite_label: str) -> dict[str, Any]:
    """Replace ``{run:CASE}``, ``{case:CASE}``, ``{runs}`` and ``{suite}`` inside string parameters.

    ``"{run:steady},{run:proxy}"`` becomes ``"RUN1,RUN2"`` (a case's first run);
    ``{case:proxy}`` the label selector of all its runs, ``suite=<stamp>,case=proxy``;
    a case without a run raises KeyError.
    """
    def case_ref(m: re.Match[str]) -> str:
        if m.group(1) not in run_ids:
            raise KeyError(m.group(1))
        return f"{suite_label},{LABEL_CASE}={m.group(1)}"

    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            value = _RUN_REF.sub(lambda m: run_ids[m.group(1)], value)
            value = _CASE_REF.sub(case_ref, value)
            value = value.replace("{runs}", ",".join(run_ids.values())).replace("{suite}", suite_label)
        out[key] = value
    return out


def suite_stamp(now: dt.datetime | None = None) -> str:
    """The suite's id: the start time, UTC, ``20261125T020506Z``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
