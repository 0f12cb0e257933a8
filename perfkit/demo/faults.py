"""Fault knobs of the demo server: periodic whole-service stalls, injected errors, a slowdown.

Stall schedule (``--stall EVERY_S:FOR_S``): with ``t0`` the server's start, the
service is frozen during ``[t0 + k*EVERY_S, t0 + k*EVERY_S + FOR_S)`` for k = 1, 2, ...
Every request awaits the gate when it arrives and again before its response is
written (and every batch and decode step awaits it before computing), so a request
arriving at time t inside a stall is answered no earlier than the stall's end: a
request arriving at a uniformly random instant of a stall waits uniform(0, FOR_S).
``t0`` is published as ``stall_epoch_unix_s`` in ``GET /demo/config`` so a client can
compute the windows in wall-clock time.
"""
from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

from perfkit.errors import UsageError


def parse_stall(text: str) -> tuple[float, float]:
    """Parse ``EVERY_S:FOR_S`` (e.g. ``10:0.5``); UsageError on anything else."""
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"--stall {text!r}: expected EVERY_S:FOR_S, e.g. 10:0.5")
    try:
        every_s, for_s = float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"--stall {text!r}: EVERY_S and FOR_S must be numbers") from None
    if not (math.isfinite(every_s) and math.isfinite(for_s)) or every_s <= 0 or for_s <= 0:
        raise UsageError(f"--stall {text!r}: EVERY_S and FOR_S must be positive")
    if for_s >= every_s:
        raise UsageError(f"--stall {text!r}: FOR_S must be shorter than EVERY_S")
    return every_s, for_s


def stall_remaining_s(elapsed_s: float, every_s: float, for_s: float) -> float:
    """Seconds until the current stall ends, 0.0 when not stalled.

    ``elapsed_s`` is time since the server started; stalls begin at every positive
    multiple of ``every_s`` and last ``for_s``.
    """
    if elapsed_s < every_s:
        return 0.0
    into_period = elapsed_s % every_s
    return for_s - into_period if into_period < for_s else 0.0


@dataclass
class StallGate:
    """An awaitable gate that is shut during the stall windows (or never, if disabled)."""

    every_s: float | None = None
    for_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    on_stall: Callable[[float], None] | None = None

    def __post_init__(self) -> None:
        self.t0 = self.clock()
        self.epoch_unix_s = time.time()
        self._last_stall_index = 0

    @property
    def enabled(self) -> bool:
        return self.every_s is not None and self.for_s is not None

    def remaining_s(self) -> float:
        """Seconds left in the current stall (0.0 outside stalls)."""
        if not self.enabled:
            return 0.0
        elapsed = self.clock() - self.t0
        remaining = stall_remaining_s(elapsed, self.every_s, self.for_s)  # type: ignore[arg-type]
        if remaining > 0 and self.on_stall is not None:
            index = int(elapsed // self.every_s)  # type: ignore[operator]
            if index != self._last_stall_index:
                self._last_stall_index = index
                self.on_stall(self.for_s)  # type: ignore[arg-type]
        return remaining

    async def wait(self) -> None:
        """Return at once outside a stall; otherwise sleep until the stall is over."""
        remaining = self.remaining_s()
        while remaining > 0:
            await asyncio.sleep(remaining)
            remaining = self.remaining_s()


class ErrorInjector:
    """Decides, with a seeded RNG, which requests are answered 500 (``--error-rate``)."""

    def __init__(self, rate: float, seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise UsageError(f"--error-rate {rate}: must be within 0..1")
        self.rate = rate
        self._rng = random.Random(seed)

    def should_fail(self) -> bool:
        return self.rate > 0 and self._rng.random() < self.rate


class Slowdown:
    """``--slowdown FACTOR``: each inference request's handling takes FACTOR times as long, by real work.

    Once the handler has its answer (not yet sent), the server computes for
    (FACTOR - 1) x the request's own handling time so far: a chain of
    floating-point operations on the event loop, no sleep. The work shows in the
    server's own request-duration histogram and CPU use, and, like slow code in
    a real handler, it holds up the requests that arrive meanwhile. Their own
    extra work leaves out the time they waited on this injected work
    (:attr:`worked_s`), so the slowdown cannot feed on itself.
    """

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor
        self.worked_s = 0.0           # injected work so far, all requests

    def apply(self, arrived: float, worked_at_arrival: float) -> None:
        """Work (FACTOR - 1) x the time since ``arrived`` (``time.monotonic()``), less the injected work
        done since then (``worked_s`` was ``worked_at_arrival`` when the request arrived)."""
        if self.factor <= 1.0:
            return
        now = time.monotonic()
        own = max(0.0, now - arrived - (self.worked_s - worked_at_arrival))
        work_until(now + (self.factor - 1.0) * own)
        self.worked_s += time.monotonic() - now


def work_until(deadline: float) -> int:
    """Compute (the logistic map, 64 steps at a time) until ``time.monotonic()`` reaches ``deadline``;
    the number of 64-step rounds done."""
    x, rounds = 0.5, 0
    while time.monotonic() < deadline:
        for _ in range(64):
            x = 3.9 * x * (1.0 - x)
        rounds += 1
    return rounds
