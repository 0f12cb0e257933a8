"""The words a run is described with: arrival patterns, protocols, goodput SLO keys.

Standard library only, so that ``perfkit bench --help`` can offer them without
loading numpy; :mod:`perfkit.bench.schedule` and :mod:`perfkit.bench.config`
check values against the same tuples.
"""
from __future__ import annotations

from perfkit.names import SLO_SERIES

PATTERNS = ("constant", "poisson", "gamma", "burst", "step", "ramp", "replay", "closed")
PROTOCOLS = ("http-json", "kserve-v2", "openai")
#: Per-request bounds ``--slo`` accepts (goodput), each naming one series of one request
#: (:data:`perfkit.names.SLO_SERIES`).
SLO_KEYS = tuple(SLO_SERIES)
#: Keys ``--slo`` refuses because they name more than one convention, with what to write instead.
AMBIGUOUS_SLO_KEYS = {
    "itl_ms": "itl_ms could mean each request's largest gap (itl_max_ms) or its mean gap "
              "(itl_request_mean_ms); the summary's itl_ms pools every gap of every request, "
              "which no single request can be held to",
}
