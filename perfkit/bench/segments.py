"""One schedule split across load generators: segments, the shared start, the clock check.

``perfkit bench --segment I/N --start-at T`` sends the sends ``k`` of the one seeded
schedule with ``k % N == I`` (:func:`perfkit.bench.schedule.share`, the split ``--workers``
also uses), from the shared wall-clock t0 ``T``; rows keep their global ``seq``, so the
union of the N segments is exactly the schedule one instance would have sent, and
``perfkit merge`` (:mod:`perfkit.bench.merge`) folds them back into one run.

Each instance's clock must agree with the others': schedule lag is measured against the
shared t0 read on the instance's own clock, so a clock off by ``d`` shifts every send of
that segment by ``d``. ``--clock-ref URL`` measures the offset against a reference whose
answers carry the Unix time with sub-millisecond precision (the ``X-Server-Time`` header,
which ``perfkit serve-demo`` sets on ``/health``, or else a body that is one number), as
offset = reference time - (send + receive) / 2 over a few round trips (the one with the
shortest round trip wins: its midpoint is the tightest). The run is refused when the offset
exceeds half the late threshold (2.5 ms by default): then no request is counted late, or on
time, because of the clock alone; a round trip so long that its half exceeds that bound
cannot check it and is refused as well. See docs/architecture.md.
"""
from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from perfkit.errors import UsageError
from perfkit.redact import redact_url

#: The header read for the reference time (Unix seconds, decimal).
TIME_HEADER = "X-Server-Time"
#: A start further in the past than this is refused (a late instance would send in a burst).
PAST_START_S = 1.0
CLOCK_ROUNDS = 5
NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Segment:
    """Instance ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Segment:
        """``"1/3"`` -> Segment(1, 3); UsageError unless 0 <= I < N."""
        left, sep, right = str(text).partition("/")
        try:
            index, count = int(left), int(right)
        except ValueError:
            index, count = -1, 0
        if not sep or not 0 <= index < count:
            raise UsageError(f"--segment looks like I/N with 0 <= I < N (e.g. 0/3), got {text!r}")
        return cls(index, count)


def parse_start(text: str, now: float | None = None) -> float:
    """``--start-at``: a Unix time in seconds, or ``+S`` seconds from ``now``; refuses a start
    more than :data:`PAST_START_S` in the past. (``+S`` is read by each instance on its own
    clock when it starts: to share a start, give the same absolute time to every instance.)"""
    now = time.time() if now is None else now
    raw = str(text).strip()
    try:
        value = float(raw[1:]) if raw.startswith("+") else float(raw)
    except ValueError:
        raise UsageError(f"--start-at takes a Unix time in seconds or +SECONDS, got {text!r}") from None
    start = now + value if raw.startswith("+") else value
    if start != start or start < now - PAST_START_S:
        raise UsageError(f"--start-at {raw} is {now - start:.1f} s in the past (more than {PAST_START_S:g} s): "
                         "give a later time")
    return start


def schedule_id(stages: Sequence[Any], seed: int | None, scheduled: int) -> str:
    """The schedule's identity: a hash of its stages, seed and scheduled count. Segments of
    one run share it; :mod:`perfkit.bench.merge` refuses segments whose ids differ."""
    text = json.dumps({"stages": [asdict(s) for s in stages], "seed": seed, "scheduled": int(scheduled)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_time(headers: Any, body: bytes) -> float:
    """The reference's Unix time from one answer: the header, else a body that is one number."""
    text = headers.get(TIME_HEADER) or body.decode("utf-8", "replace")
    try:
        return float(text.strip())
    except ValueError:
        raise UsageError(f"--clock-ref: the answer carries no {TIME_HEADER} header and its body is not a "
                         "Unix time") from None


def _fetch(url: str) -> tuple[float, float, float]:
    """(send, reference time, receive) of one GET, both local times from ``time.time``."""
    sent = time.time()
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read(64)
        received = time.time()
        return sent, _read_time(response.headers, body), received


def clock_offset(url: str, bound_ms: float, rounds: int = CLOCK_ROUNDS,
                 fetch: Callable[[str], tuple[float, float, float]] = _fetch) -> dict[str, Any]:
    """The clock check's record (offset, round trip, bound, reference); UsageError when the
    offset, or half the shortest round trip, exceeds ``bound_ms``, or the reference fails."""
    samples = []
    for _ in range(rounds):
        try:
            samples.append(fetch(url))
        except OSError as exc:
            raise UsageError(f"--clock-ref {redact_url(url)}: {exc}") from None
    sent, ref, received = min(samples, key=lambda s: s[2] - s[0])
    offset_ms, rtt_ms = (ref - (sent + received) / 2) * 1e3, (received - sent) * 1e3
    record = {"reference": redact_url(url), "offset_ms": offset_ms, "rtt_ms": rtt_ms, "bound_ms": bound_ms,
              "rounds": rounds, "method": f"{TIME_HEADER} - (send + receive) / 2, shortest round trip"}
    if rtt_ms / 2 > bound_ms:
        raise UsageError(f"--clock-ref {redact_url(url)}: round trip {rtt_ms:.2f} ms is too long to check the "
                         f"clock within {bound_ms:g} ms; use a nearer reference")
    if abs(offset_ms) > bound_ms:
        raise UsageError(f"clock offset {offset_ms:+.2f} ms against {redact_url(url)} exceeds {bound_ms:g} ms "
                         "(half the late threshold): synchronise this host's clock (NTP/chrony) first")
    return record


def check_clock(url: str | None, late_threshold_ms: float) -> dict[str, Any] | str:
    """The run's ``clock`` record: :func:`clock_offset` against ``url`` with the bound half the
    late threshold, or :data:`NOT_CHECKED` when no reference is given."""
    return NOT_CHECKED if not url else clock_offset(url, late_threshold_ms / 2)
