"""``perfkit serve-demo --slowdown FACTOR``: real work for (FACTOR - 1) x the request's time so far, never a sleep."""
from __future__ import annotations

import time

import pytest

from perfkit.demo import faults
from perfkit.demo.options import DemoOptions
from perfkit.errors import UsageError


def test_slowdown_works_for_factor_minus_one_times_the_requests_own_time(monkeypatch):
    asked: list[float] = []
    clock = iter([100.0, 101.0, 200.0, 200.5])
    monkeypatch.setattr(faults.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(faults, "work_until", lambda deadline: asked.append(deadline) or 0)
    slow = faults.Slowdown(1.25)
    slow.apply(arrived=96.0, worked_at_arrival=0.0)    # 4 s so far: 1 s more of work
    assert asked == [pytest.approx(101.0)] and slow.worked_s == pytest.approx(1.0)
    # 4 s since arrival, 2 of them spent on others' injected work: only its own 2 s count
    slow.worked_s = 3.0
    slow.apply(arrived=196.0, worked_at_arrival=1.0)
    assert asked[1] == pytest.approx(200.5) and slow.worked_s == pytest.approx(3.5)
    faults.Slowdown(1.0).apply(arrived=96.0, worked_at_arrival=0.0)   # no slowdown: nothing to do
    assert len(asked) == 2


def test_work_until_computes_rather_than_sleeps():
    assert faults.work_until(time.monotonic() - 1.0) == 0
    assert faults.work_until(time.monotonic() + 0.01) > 0


def test_slowdown_option_is_validated_and_published():
    assert DemoOptions(slowdown=1.1).validate().public()["slowdown"] == 1.1
    for bad in (0.5, 0.0, 1000.0):
        with pytest.raises(UsageError, match="--slowdown"):
            DemoOptions(slowdown=bad).validate()
