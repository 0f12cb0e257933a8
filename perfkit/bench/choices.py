"""The words a run is described with: arrival patterns, protocols, goodput SLO keys.

Standard library only, so that ``perfkit bench --help`` can offer them without
loading numpy; :mod:`perfkit.bench.schedule` and :mod:`perfkit.bench.config`
check values against the same tuples.
"""
from __future__ import annotations

PATTERNS = ("constant", "poisson", "gamma", "burst", "step", "ramp", "replay", "closed")
PROTOCOLS = ("http-json", "kserve-v2", "openai")
#: Per-request bounds ``--slo`` accepts (goodput), each naming one series of one request:
#: the ``requests`` column (or store series, :data:`perfkit.store.runs.LATENCY_COLUMNS`) it bounds.
#: The summary's ``definitions`` give each series' formula.
SLO_SERIES = {
    "latency_ms": "latency_ms",                    # response complete - intended send
    "ttft_ms": "ttft_intended_ms",                 # first token - intended send
    "tpot_ms": "tpot_ms",                          # (done - first token) / (output tokens - 1)
    "tpot_incl_ttft_ms": "tpot_incl_ttft_ms",      # (done - intended send) / output tokens
    "itl_max_ms": "itl_ms_max",                    # the request's largest inter-token gap
    "itl_request_mean_ms": "itl_request_mean_ms",  # the mean of the request's inter-token gaps
}
SLO_KEYS = tuple(SLO_SERIES)
#: Keys ``--slo`` refuses because they name more than one convention, with what to write instead.
AMBIGUOUS_SLO_KEYS = {
    "itl_ms": "itl_ms could mean each request's largest gap (itl_max_ms) or its mean gap "
              "(itl_request_mean_ms); the summary's itl_ms pools every gap of every request, "
              "which no single request can be held to",
}
