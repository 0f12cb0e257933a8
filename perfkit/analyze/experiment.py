"""``perfkit abtest``: both arms of an A/B experiment run here, interleaved, then judged.

The run is the unit of replication, so each arm runs ``repeats`` times. The
runs alternate between the arms, ABBA (``AB BA AB ...``) or in a seeded random
order per round, so that a drift of the machine (caches warming, other load)
falls on both arms alike instead of on whichever ran second. Every run is one
:func:`perfkit.bench.run` call and is stored with the labels
``abtest=<id>,arm=<baseline|candidate>,repeat=<i>`` next to its own
``--label``, so the experiment can be judged again later:
``perfkit compare --baseline 'abtest=<id>,arm=baseline' --candidate 'abtest=<id>,arm=candidate'``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from perfkit.errors import UsageError
from perfkit.names import LABEL_ABTEST, LABEL_ARM, LABEL_REPEAT

if TYPE_CHECKING:
    from perfkit.bench.config import BenchConfig
    from perfkit.summary import RunSummary

ARMS = ("baseline", "candidate")
ORDERS = ("abba", "random")


def run_order(repeats: int, order: str = "abba", seed: int = 0) -> list[tuple[str, int]]:
    """(arm, repeat) in the order they run: ABBA alternates each round's order, random flips a seeded coin."""
    if repeats < 1:
        raise UsageError(f"--repeats {repeats}: at least 1")
    if order not in ORDERS:
        raise UsageError(f"--order {order}: one of {', '.join(ORDERS)}")
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    for i in range(1, repeats + 1):
        first = (i % 2 == 1) if order == "abba" else rng.random() < 0.5
        out += [(arm, i) for arm in (ARMS if first else ARMS[::-1])]
    return out


def experiment_id(now: dt.datetime | None = None) -> str:
    """``20261125T020506Z-3fa2``: the start time (UTC) and a random suffix."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def arm_config(cfg: BenchConfig, arm: str, repeat: int, exp_id: str) -> BenchConfig:
    """``cfg`` for one run of the experiment: the experiment's labels added, no summary file."""
    tags = {LABEL_ABTEST: exp_id, LABEL_ARM: arm, LABEL_REPEAT: str(repeat)}
    label = ",".join(x for x in (cfg.label, ",".join(f"{k}={v}" for k, v in tags.items())) if x)
    return dataclasses.replace(cfg, label=label, tags={**cfg.tags, **tags}, summary_json=None)


@dataclass
class Experiment:
    """The runs of one experiment, in the order they ran."""

    id: str
    runs: list[tuple[str, int, str]] = field(default_factory=list)   # (arm, repeat, run_id)

    def run_ids(self, arm: str) -> list[str]:
        return [rid for a, _, rid in self.runs if a == arm]

    def selector(self, arm: str) -> str:
        """The label selector of an arm's runs, for ``perfkit compare``."""
        return f"{LABEL_ABTEST}={self.id},{LABEL_ARM}={arm}"


def run_experiment(configs: Mapping[str, BenchConfig], repeats: int, order: str = "abba", seed: int = 0,
                   on_run: Callable[[str, int, RunSummary], None] | None = None) -> Experiment:
    """Run ``configs["baseline"]`` and ``configs["candidate"]`` ``repeats`` times each, interleaved.

    A run that fails (the target down, ...) stops the experiment with a
    :class:`~perfkit.errors.UsageError`: nothing could be judged from it.
    """
    from perfkit import bench

    exp = Experiment(experiment_id())
    for arm, repeat in run_order(repeats, order, seed):
        summary = bench.run(arm_config(configs[arm], arm, repeat, exp.id))
        if summary["status"] != "completed":
            raise UsageError(f"{arm} run {repeat} ({summary['run_id']}) {summary['status']}: "
                             f"{summary['status_reason']}")
        exp.runs.append((arm, repeat, str(summary["run_id"])))
        if on_run is not None:
            on_run(arm, repeat, summary)
    return exp
