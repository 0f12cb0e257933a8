"""The words a run is described with: arrival patterns, protocols, goodput SLO keys.

Standard library only, so that ``perfkit bench --help`` can offer them without
loading numpy; :mod:`perfkit.bench.schedule` and :mod:`perfkit.bench.config`
check values against the same tuples.
"""
from __future__ import annotations

PATTERNS = ("constant", "poisson", "gamma", "burst", "step", "ramp", "replay", "closed")
PROTOCOLS = ("http-json", "kserve-v2", "openai")
#: Per-request bounds ``--slo`` accepts (goodput).
SLO_KEYS = ("latency_ms", "ttft_ms", "tpot_ms", "itl_ms")
