"""Where the suite runs the demo server and the load generator: on different CPUs when the machine allows.

On a small machine the two compete for the same cores, and the load generator
then falls behind its schedule (every run invalid, its latencies understated).
:func:`plan` splits the CPUs this process may use in two, the server on the first
half and ``perfkit bench`` on the rest; with one CPU (or no ``os.sched_setaffinity``)
it says it could not. The note goes into the report index.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Collection


@dataclass(frozen=True)
class Placement:
    """The CPUs of the demo server and of the load generator (None: not pinned) and a sentence saying so."""

    server: frozenset[int] | None
    generator: frozenset[int] | None
    note: str

    @property
    def pinned(self) -> bool:
        return self.server is not None and self.generator is not None


def _cpus(cpus: Collection[int]) -> str:
    shown = sorted(cpus)
    return f"CPU {shown[0]}" if len(shown) == 1 else "CPUs " + ", ".join(str(c) for c in shown)


def plan(cpus: Collection[int] | None) -> Placement:
    """Split ``cpus`` (those this process may use; None: unknown) between the server (first half) and the
    load generator (the rest), or say why they cannot be split."""
    if cpus is None:
        return Placement(None, None, "not pinned: this platform has no os.sched_setaffinity, so the demo server "
                                     "and the load generator share the CPUs")
    ordered = sorted(cpus)
    if len(ordered) < 2:
        return Placement(None, None, f"not pinned: only {_cpus(ordered)} is available, so the demo server and "
                                     "the load generator share it")
    half = len(ordered) // 2
    server, generator = frozenset(ordered[:half]), frozenset(ordered[half:])
    return Placement(server, generator, f"demo server on {_cpus(server)}, load generator on {_cpus(generator)}")


def here() -> Placement:
    """:func:`plan` for the CPUs this process may run on."""
    return plan(os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None)
