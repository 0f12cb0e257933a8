"""The edge profile: a capped one-thread SingleStream process per variant; a failed load is a result, not a crash."""
from __future__ import annotations

import math

import pytest

from perfkit.optimize import edge, variants


@pytest.mark.slow
def test_variant_runs_under_the_cap_and_reports_fps_and_p90():
    variants.build("student-kd")
    result = edge.run_one("student-kd", cap_mb=4096, duration_s=0.3)
    assert result.loaded and result.frames > 10 and result.fps > 0
    assert result.p90_lo_ms <= result.p90_ms <= result.p90_hi_ms


@pytest.mark.slow
def test_a_variant_that_cannot_load_under_the_cap_is_reported_as_such():
    variants.build("fp32")
    result = edge.run_one("fp32", cap_mb=64, duration_s=0.3)
    assert not result.loaded and result.frames == 0 and math.isnan(result.p90_ms)
    assert result.reason.startswith("cannot load or run under 64 MB")
