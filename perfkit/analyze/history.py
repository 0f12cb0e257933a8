"""Change points in a case's history of runs, and what they mean against the practical margin (pure).

A *history* is one metric of one suite case (run label ``case=NAME``) over its
runs, oldest first, one point per run (:mod:`perfkit.analyze.trend_store` reads
it). :func:`perfkit.analyze.changepoints.tested_change_points` finds where its
level shifts (E-Divisive style, permutation-tested; see that module for the
method and why it is not Apache Otava), calibrated by
``benchmarks/trend_calibration.py`` (false positives on flat noisy series,
detection rate and delay on 5 % and 10 % steps).

Each change gets a magnitude with an interval (relative change of the level,
Welch interval on the logarithm) and a class against the practical margin:
``regression`` or ``improvement`` when the shift is significant and at least
the margin, ``within margin`` otherwise. Every metric here is lower-is-better.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from perfkit.analyze.changepoints import (DEFAULT_ALPHA, DEFAULT_MIN_SIZE,  # noqa: F401 (re-exported)
                                           DEFAULT_PERMUTATIONS, tested_change_points)
from perfkit.names import HEADLINE_OPEN_REGRESSIONS
from perfkit.quantiles import Estimate

REGRESSION = "regression"
IMPROVEMENT = "improvement"
WITHIN_MARGIN = "within margin"
#: The practical margin: a shift smaller than this (relative) is not worth a page.
DEFAULT_MARGIN = 0.05
OPEN_REGRESSIONS = HEADLINE_OPEN_REGRESSIONS
#: Columns of a history frame (one row per run, oldest first).
HISTORY_COLUMNS = ("run_id", "started_at", "case", "version", "tool_version", "machine",
                   "value", "lo", "hi", "n")


@dataclass(frozen=True)
class ChangePoint:
    """A shift in a case's metric: where, from which version to which, by how much, and what it means."""

    change_id: str
    case: str
    metric: str
    index: int                 # position in the history of the first run after the change
    run_id: str                # that run
    started_at: str
    version_before: str
    version_after: str
    level_before: float        # geometric mean of the segment before / after
    level_after: float
    change: Estimate           # relative change after/before - 1, with its interval
    p_value: float
    kind: str                  # regression | improvement | within margin
    runs_since: int            # runs at or after the change, up to the newest
    acknowledged: bool = False

    @property
    def open(self) -> bool:
        """A regression nobody has acknowledged yet."""
        return self.kind == REGRESSION and not self.acknowledged

    def sentence(self) -> str:
        """``"p99_ms of case steady rose 9.1 % [6.0, 12.3] at version 1.4.2 (run R), open since 3 runs"``."""
        verb = "rose" if self.change.value > 0 else "fell"
        c = self.change
        version = f" at version {self.version_after}" if self.version_after else ""
        state = {REGRESSION: "acknowledged" if self.acknowledged else f"open since {self.runs_since} runs",
                 IMPROVEMENT: "an improvement", WITHIN_MARGIN: "within the margin"}[self.kind]
        return (f"{self.metric} of case {self.case} {verb} {abs(c.value) * 100:.1f} % "
                f"[{c.lo * 100:+.1f}, {c.hi * 100:+.1f}]{version} (run {self.run_id}), {state}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe fields (the change as a dict of its own)."""
        out = asdict(self)
        out["change"] = self.change.to_dict()
        out["open"] = self.open
        return out


def change_id(case: str, metric: str, run_id: str) -> str:
    """A short, stable id for the change that starts at ``run_id`` (what ``--ack`` takes)."""
    return hashlib.sha1(f"{case}\x00{metric}\x00{run_id}".encode()).hexdigest()[:10]


def relative_change(before: Sequence[float], after: Sequence[float], confidence: float = 0.95) -> Estimate:
    """after/before - 1 of the geometric means, with a Welch t interval on the logarithm."""
    a, b = np.log(np.asarray(before, dtype=float)), np.log(np.asarray(after, dtype=float))
    diff = float(b.mean() - a.mean())
    va, vb = (a.var(ddof=1) / a.size if a.size > 1 else 0.0), (b.var(ddof=1) / b.size if b.size > 1 else 0.0)
    se = math.sqrt(va + vb)
    if se == 0:
        lo = hi = diff
    else:
        dof = (va + vb) ** 2 / sum(v ** 2 / (s.size - 1) for v, s in ((va, a), (vb, b)) if s.size > 1 and v > 0)
        half = float(sps.t.ppf(0.5 + confidence / 2, dof)) * se
        lo, hi = diff - half, diff + half
    return Estimate(math.expm1(diff), math.expm1(lo), math.expm1(hi), int(a.size + b.size), confidence,
                    "welch-log", "ratio")


def classify(change: Estimate, margin: float = DEFAULT_MARGIN) -> str:
    """Regression (worse by at least ``margin``, interval above 0), improvement (the mirror), or within margin."""
    if change.value >= margin and change.lo > 0:
        return REGRESSION
    if change.value <= -margin and change.hi < 0:
        return IMPROVEMENT
    return WITHIN_MARGIN


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _usable(history: pd.DataFrame) -> pd.DataFrame:
    """The runs that carry a positive value (a change's index counts these)."""
    return history[history["value"] > 0].reset_index(drop=True)


def find_changes(history: pd.DataFrame, case: str, metric: str, *, margin: float = DEFAULT_MARGIN,
                 acknowledged: Sequence[str] = (), alpha: float = DEFAULT_ALPHA,
                 min_size: int = DEFAULT_MIN_SIZE, permutations: int = DEFAULT_PERMUTATIONS,
                 seed: int = 0) -> list[ChangePoint]:
    """The change points of one history frame (columns :data:`HISTORY_COLUMNS`, oldest first)."""
    frame = _usable(history)
    values = frame["value"].to_numpy(dtype=float)
    found = tested_change_points(values, alpha=alpha, min_size=min_size, permutations=permutations, seed=seed)
    bounds = [0, *[i for i, _ in found], values.size]
    out = []
    for k, (idx, p) in enumerate(found):
        before, after = values[bounds[k]:idx], values[idx:bounds[k + 2]]
        est = relative_change(before, after)
        row, prev = frame.iloc[idx], frame.iloc[idx - 1]
        cid = change_id(case, metric, str(row["run_id"]))
        out.append(ChangePoint(
            change_id=cid, case=case, metric=metric, index=idx, run_id=str(row["run_id"]),
            started_at=_text(row["started_at"]), version_before=_text(prev["version"]),
            version_after=_text(row["version"]), level_before=float(np.exp(np.log(before).mean())),
            level_after=float(np.exp(np.log(after).mean())), change=est, p_value=p,
            kind=classify(est, margin), runs_since=int(values.size - idx), acknowledged=cid in set(acknowledged)))
    return out


def open_regressions(changes: Sequence[ChangePoint], history: pd.DataFrame | None = None,
                     margin: float = DEFAULT_MARGIN) -> list[ChangePoint]:
    """Unacknowledged regressions of one series whose level has not come back within the margin.

    The newest run sits after each of them; a later improvement that brings the level
    back closes the earlier regression (the newest segment is compared with the level
    before the regression)."""
    out = []
    for c in changes:
        if not c.open:
            continue
        later = [d.index for d in changes if d.index > c.index]
        if later and history is not None:
            values = _usable(history)["value"].to_numpy(dtype=float)
            newest = float(np.exp(np.log(values[max(later):]).mean()))
            if newest < c.level_before * (1 + margin):
                continue
        out.append(c)
    return out


def changes_frame(changes: Sequence[ChangePoint]) -> pd.DataFrame:
    """One row per change: id, case, metric, run, versions, change with interval, class, state."""
    rows = [{"change_id": c.change_id, "case": c.case, "metric": c.metric, "run_id": c.run_id,
             "started_at": c.started_at, "version_before": c.version_before, "version_after": c.version_after,
             "before": round(c.level_before, 3), "after": round(c.level_after, 3),
             "change_pct": round(c.change.value * 100, 1),
             "interval_pct": f"[{c.change.lo * 100:+.1f}, {c.change.hi * 100:+.1f}]",
             "p_value": round(c.p_value, 3), "kind": c.kind, "runs_since": c.runs_since,
             "state": ("open" if c.open else "acknowledged" if c.acknowledged else "")}
            for c in changes]
    return pd.DataFrame(rows, columns=["change_id", "case", "metric", "run_id", "started_at", "version_before",
                                       "version_after", "before", "after", "change_pct", "interval_pct",
                                       "p_value", "kind", "runs_since", "state"])


@dataclass
class Trend:
    """Every followed series (case, metric) with its change points: what ``perfkit trend`` and notebook 07 show."""

    histories: dict[tuple[str, str], pd.DataFrame]
    changes: list[ChangePoint]
    open: list[ChangePoint]
    margin: float = DEFAULT_MARGIN

    @property
    def cases(self) -> list[str]:
        """The cases followed, in order."""
        return list(dict.fromkeys(case for case, _ in self.histories))

    def for_case(self, case: str) -> tuple[dict[str, pd.DataFrame], list[ChangePoint]]:
        """``({metric: history}, change points)`` of one case (what the case's figure takes)."""
        return ({m: h for (c, m), h in self.histories.items() if c == case},
                [ch for ch in self.changes if ch.case == case])

    @property
    def enough(self) -> bool:
        """Whether any series is long enough to hold a change (2 x min_size runs)."""
        return any(len(h) >= 2 * DEFAULT_MIN_SIZE for h in self.histories.values())

    def summary(self) -> str:
        """The paragraph at the top of the trends report."""
        if not self.enough:
            return (f"Not enough history yet: a change needs at least {2 * DEFAULT_MIN_SIZE} runs of a case "
                    "(label case=NAME); run `make nightly` or `make report` a few more times.")
        if not self.open:
            return (f"No open regression in {len(self.histories)} series "
                    f"({len(self.changes)} change points, margin {self.margin:.0%}).")
        return " ".join(c.sentence() + "." for c in self.open)

    def figures(self) -> dict[str, str]:
        """The headline figures (the report index shows them)."""
        return {"series": str(len(self.histories)), "change points": str(len(self.changes)),
                OPEN_REGRESSIONS: "; ".join(c.sentence() for c in self.open) or "none"}


def trend(histories: Mapping[tuple[str, str], pd.DataFrame], *, margin: float = DEFAULT_MARGIN,
          acknowledged: Sequence[str] = (), alpha: float = DEFAULT_ALPHA,
          permutations: int = DEFAULT_PERMUTATIONS) -> Trend:
    """Change points and open regressions of every ``(case, metric)`` history."""
    changes: list[ChangePoint] = []
    still_open: list[ChangePoint] = []
    for (case, metric), hist in histories.items():
        found = find_changes(hist, case, metric, margin=margin, acknowledged=acknowledged, alpha=alpha,
                             permutations=permutations)
        changes += found
        still_open += open_regressions(found, hist, margin)
    return Trend(dict(histories), changes, still_open, margin)
