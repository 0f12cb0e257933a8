"""Arrival schedules: pure, seeded functions returning *intended* send offsets.

Every function returns a sorted ``numpy.float64`` array of offsets in seconds
from the run's t0, all in ``[0, duration_s)``. The engine sends request ``i`` at
``t0 + offsets[i]`` and measures its latency from that instant, never from when
it actually left, so a stalled server cannot slow the clock down (no
coordinated omission). Nothing here does I/O: the statistics of each pattern are
unit-tested on the arrays alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perfkit.bench.choices import PATTERNS
from perfkit.bench.inputs import read_text
from perfkit.errors import InputError, UsageError



def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise UsageError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def constant(rate_rps: float, duration_s: float) -> np.ndarray:
    """Evenly spaced sends: request i leaves at i / rate."""
    _check_positive("rate", rate_rps)
    _check_positive("duration", duration_s)
    n = int(np.ceil(rate_rps * duration_s - 1e-9))
    return np.arange(n, dtype=np.float64) / rate_rps


def gamma(rate_rps: float, duration_s: float, burstiness: float = 1.0, seed: int | None = 0) -> np.ndarray:
    """Gamma inter-arrivals with shape ``burstiness`` and mean 1/rate, as ``vllm bench serve``.

    burstiness = 1 is a Poisson process; < 1 is burstier (CV = 1/sqrt(b)); > 1 smoother.
    """
    _check_positive("rate", rate_rps)
    _check_positive("duration", duration_s)
    _check_positive("burstiness", burstiness)
    rng = _rng(seed)
    theta = 1.0 / (rate_rps * burstiness)
    out: list[np.ndarray] = []
    t = 0.0
    chunk = max(16, int(rate_rps * duration_s * 1.2) + 16)
    while True:
        gaps = rng.gamma(shape=burstiness, scale=theta, size=chunk)
        times = t + np.cumsum(gaps)
        # The first request goes at offset 0, like constant: the process starts at t0.
        out.append(times)
        t = float(times[-1])
        if t >= duration_s:
            break
    arr = np.concatenate(out)
    arr = np.concatenate(([0.0], arr[:-1]))  # shift: first arrival at 0, gaps preserved
    return arr[arr < duration_s]


def poisson(rate_rps: float, duration_s: float, seed: int | None = 0) -> np.ndarray:
    """A Poisson process: exponential inter-arrivals with mean 1/rate."""
    return gamma(rate_rps, duration_s, burstiness=1.0, seed=seed)


def burst(base_rps: float, duration_s: float, spike_rps: float, period_s: float,
          spike_s: float) -> np.ndarray:
    """Base rate plus spikes: every ``period_s`` the rate is ``base + spike`` for ``spike_s``.

    Each segment is spaced evenly at its own rate, so the counts per window are
    exact: a spike window of ``spike_s`` holds ``(base + spike) * spike_s`` sends.
    """
    _check_positive("rate", base_rps, allow_zero=True)
    _check_positive("spike height", spike_rps)
    _check_positive("spike period", period_s)
    _check_positive("spike length", spike_s)
    if spike_s > period_s:
        raise UsageError(f"spike length {spike_s} s is longer than its period {period_s} s")
    edges: list[tuple[float, float, float]] = []
    t = 0.0
    while t < duration_s:
        s_end = min(t + spike_s, duration_s)
        edges.append((t, s_end, base_rps + spike_rps))
        p_end = min(t + period_s, duration_s)
        if s_end < p_end:
            edges.append((s_end, p_end, base_rps))
        t += period_s
    return piecewise(edges)


def piecewise(segments: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """Evenly spaced sends inside each ``(start_s, end_s, rate_rps)`` segment."""
    parts = []
    for start, end, rate in segments:
        if rate <= 0 or end <= start:
            continue
        n = int(np.ceil((end - start) * rate - 1e-9))
        parts.append(start + np.arange(n, dtype=np.float64) / rate)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def step(start_rps: float, step_rps: float, step_s: float, steps: int) -> np.ndarray:
    """A staircase: ``steps`` levels of ``step_s`` seconds, ``start + k * step`` rps at level k."""
    _check_positive("start rate", start_rps)
    _check_positive("step length", step_s)
    if int(steps) < 1:
        raise UsageError(f"steps must be >= 1, got {steps!r}")
    if start_rps + step_rps * (int(steps) - 1) <= 0:
        raise UsageError("step: the last level's rate would be <= 0")
    return piecewise([(k * step_s, (k + 1) * step_s, start_rps + k * step_rps) for k in range(int(steps))])


def ramp(from_rps: float, to_rps: float, duration_s: float) -> np.ndarray:
    """A linear ramp of the rate from ``from_rps`` to ``to_rps``.

    The cumulative count is Λ(t) = a t + (b − a) t² / (2 D); request i is sent
    where Λ(t) = i, so the instantaneous rate follows the line exactly.
    """
    _check_positive("ramp start rate", from_rps, allow_zero=True)
    _check_positive("ramp end rate", to_rps, allow_zero=True)
    _check_positive("duration", duration_s)
    if from_rps == 0 and to_rps == 0:
        raise UsageError("ramp: both rates are 0")
    a, b, d = float(from_rps), float(to_rps), float(duration_s)
    total = (a + b) * d / 2.0
    i = np.arange(int(np.ceil(total - 1e-9)), dtype=np.float64)
    k = (b - a) / (2.0 * d)
    if abs(k) < 1e-15:
        return i / a
    # k t^2 + a t - i = 0  ->  t = (-a + sqrt(a^2 + 4 k i)) / (2 k)
    disc = np.maximum(a * a + 4.0 * k * i, 0.0)
    t = (2.0 * i) / (a + np.sqrt(disc))  # the numerically stable root
    return t[t < d]


def replay(path: str | Path, speed: float = 1.0) -> np.ndarray:
    """Offsets (seconds) read from a trace CSV: one number per line, or a header naming
    ``offset_s`` (other columns ignored); or a Mooncake trace ``.jsonl`` (its ``timestamp``
    in ms, :func:`perfkit.bench.datasets.trace_offsets`). Divided by ``speed``; sorted; must be >= 0."""
    if str(path).endswith(".jsonl"):
        from perfkit.bench.datasets import trace_offsets

        _check_positive("replay speed", speed)
        return trace_offsets(str(path)) / speed
    lines = read_text(path, "trace").splitlines()
    col = 0
    start = 0
    if lines and not _is_number(lines[0].split(",")[0]):
        header = [h.strip() for h in lines[0].split(",")]
        if "offset_s" not in header:
            raise InputError(str(path), 1, "header has no offset_s column")
        col, start = header.index("offset_s"), 1
    values = []
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split(",")
        try:
            v = float(cells[col])
        except (ValueError, IndexError):
            raise InputError(str(path), lineno, f"offset is not a number: {line.strip()[:40]!r}") from None
        if not np.isfinite(v) or v < 0:
            raise InputError(str(path), lineno, f"offset must be a finite number >= 0, got {v}")
        values.append(v)
    if not values:
        raise InputError(str(path), None, "trace holds no offsets")
    _check_positive("replay speed", speed)
    return np.sort(np.asarray(values, dtype=np.float64)) / speed


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its pattern and knobs (units in the names)."""

    pattern: str = "constant"     # one of PATTERNS
    duration_s: float = 10.0
    rate_rps: float = 10.0        # the (base, start) rate
    burstiness: float = 1.0       # gamma shape
    spike_rps: float = 0.0        # burst: rate added during a spike
    spike_period_s: float = 10.0  # burst
    spike_s: float = 1.0          # burst
    step_rps: float = 0.0         # step: rate added per step
    step_s: float = 10.0          # step
    steps: int = 1                # step
    from_rps: float = 0.0         # ramp
    to_rps: float = 0.0           # ramp
    trace: str | None = None      # replay: CSV of offsets
    speed: float = 1.0            # replay
    concurrency: int = 0          # closed loop only
    think_s: float = 0.0          # closed loop only

    def offsets(self, seed: int | None) -> np.ndarray:
        """The stage's intended offsets, from 0 (closed-loop stages have none)."""
        p = self.pattern
        if p == "constant":
            return constant(self.rate_rps, self.duration_s)
        if p == "poisson":
            return poisson(self.rate_rps, self.duration_s, seed)
        if p == "gamma":
            return gamma(self.rate_rps, self.duration_s, self.burstiness, seed)
        if p == "burst":
            return burst(self.rate_rps, self.duration_s, self.spike_rps, self.spike_period_s, self.spike_s)
        if p == "step":
            return step(self.rate_rps, self.step_rps, self.step_s, self.steps)
        if p == "ramp":
            return ramp(self.from_rps, self.to_rps, self.duration_s)
        if p == "replay":
            if not self.trace:
                raise UsageError("replay needs a trace CSV (--trace PATH)")
            return replay(self.trace, self.speed)
        if p == "closed":
            return np.empty(0, dtype=np.float64)
        raise UsageError(f"unknown pattern {p!r} (choose from {', '.join(PATTERNS)})")

    def length_s(self) -> float:
        """How long the stage lasts."""
        if self.pattern == "step":
            return self.step_s * self.steps
        if self.pattern == "replay" and self.trace:
            offs = replay(self.trace, self.speed)
            return float(offs[-1]) + 1e-6
        return self.duration_s

    def mean_rate_rps(self) -> float | None:
        """The intended mean rate over the stage (None for closed loop). For the random
        patterns it is the configured rate, not the count one random draw happened to give."""
        if self.pattern == "closed":
            return None
        if self.pattern in ("poisson", "gamma"):
            return self.rate_rps
        n = len(self.offsets(0))
        length = self.length_s()
        return n / length if length > 0 else None


def build(stages: Sequence[Stage], seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Concatenate stages back to back: (offsets_s, stage_index int32, total_s).

    Stage k's seed is ``seed + k`` so stages are independent but reproducible.
    """
    offs, idx = [], []
    t = 0.0
    for k, st in enumerate(stages):
        o = st.offsets(None if seed is None else seed + k)
        offs.append(o + t)
        idx.append(np.full(len(o), k, dtype=np.int32))
        t += st.length_s()
    if not offs:
        return np.empty(0), np.empty(0, dtype=np.int32), 0.0
    return np.concatenate(offs), np.concatenate(idx), t


def share(values: np.ndarray, index: int, parts: int) -> np.ndarray:
    """Part ``index`` of ``parts`` of a schedule's per-send array: every ``parts``-th send from
    ``index`` (sends k with k % parts == index). How ``--workers`` split one run's sends among
    processes and ``--segment I/N`` splits one schedule among machines."""
    return values[index::parts]


#: The phases of a run's schedule, in time order. Warm-up and cool-down load is sent and
#: stored (``requests.phase``) but left out of every statistic; NULL (rows written before
#: migration 0011, imported runs) reads as ``measure``.
PHASES = ("warmup", "measure", "cooldown")
PHASE_DEFINITION = ("the first warmup_s and the last cooldown_s seconds of the schedule are taken out of it "
                    "(the run is not lengthened): requests whose intended send falls there are stored with "
                    "their phase but left out of every statistic (latency, errors, goodput, validity); "
                    "duration_s, the rates and the minimum-duration check count the measured window only")


@dataclass(frozen=True)
class Phases:
    """The phase windows of a schedule ``schedule_s`` seconds long, in seconds from t0:
    warm-up ``[0, warmup_s)``, measured ``[warmup_s, schedule_s - cooldown_s)``, cool-down
    from there to the end (closed loop: every later send too)."""

    warmup_s: float = 0.0
    cooldown_s: float = 0.0
    schedule_s: float = 0.0

    def check(self) -> None:
        """UsageError unless both windows are >= 0 and leave a measured window between them."""
        _check_positive("--warmup-s", self.warmup_s, allow_zero=True)
        _check_positive("--cooldown-s", self.cooldown_s, allow_zero=True)
        if (self.warmup_s or self.cooldown_s) and not self.measure_end_s > self.warmup_s:
            raise UsageError(f"--warmup-s {self.warmup_s:g} + --cooldown-s {self.cooldown_s:g} leave nothing "
                             f"to measure in a {self.schedule_s:g} s schedule (they are taken out of it)")

    @property
    def measure_end_s(self) -> float:
        return self.schedule_s - self.cooldown_s

    def codes(self, offsets_ns: np.ndarray) -> np.ndarray:
        """Each intended offset's phase as an index into :data:`PHASES` (int64). Edges: an
        offset equal to ``warmup_s`` is measured, one equal to ``schedule_s - cooldown_s`` is
        cool-down; compared in integer nanoseconds, as the engine schedules."""
        off = np.asarray(offsets_ns, dtype=np.int64)
        codes = np.ones(len(off), dtype=np.int64)
        if self.warmup_s > 0:
            codes[off < round(self.warmup_s * 1e9)] = 0
        if self.cooldown_s > 0:
            codes[off >= round(self.measure_end_s * 1e9)] = 2
        return codes

    def summary(self, counts: Mapping[str, int]) -> dict[str, Any] | None:
        """The run summary's ``phases`` block (windows, requests stored per phase), or None
        when the run has neither a warm-up nor a cool-down."""
        if not (self.warmup_s or self.cooldown_s):
            return None
        return {"warmup_s": self.warmup_s, "cooldown_s": self.cooldown_s, "schedule_s": self.schedule_s,
                "measure_start_s": self.warmup_s, "measure_end_s": self.measure_end_s,
                "requests": {p: int(counts.get(p, 0)) for p in PHASES}, "definition": PHASE_DEFINITION}

    @classmethod
    def of(cls, scenario: Mapping[str, Any]) -> Phases:
        """The windows a run was planned with, from its stored scenario (``runs.scenario``)."""
        return cls(float(scenario.get("warmup_s") or 0.0), float(scenario.get("cooldown_s") or 0.0),
                   float(scenario.get("schedule_s") or 0.0))
