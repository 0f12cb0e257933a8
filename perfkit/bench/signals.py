"""SIGINT/SIGTERM during a run: never a traceback, never a run left ``running``.

:class:`StopSignals` is installed first thing (``perfkit bench`` installs it before it
imports the engine). Until the run's row is about to be written it is *armed*: a
signal raises :class:`Interrupted` wherever the coordinator is (planning, waiting
for the database lock, starting workers), the caller cleans up and nothing is
recorded. From :meth:`StopSignals.hold` on, a signal only records itself and sets
the workers' stop events, so that the run is finalized (status ``interrupted``,
rows kept, summary written); later signals during finalizing are ignored.
Handlers act in the process that installed them only (forked workers ignore them
until they set their own).
"""
from __future__ import annotations

import os
import signal
from types import FrameType, TracebackType
from typing import Any, Protocol

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Settable(Protocol):
    def set(self) -> None: ...


class Interrupted(KeyboardInterrupt):
    """A signal arrived before the run was recorded: nothing was sent or stored."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} before the first request; "
                         "no run was recorded")


class StopSignals:
    """The run's signal handling (a context manager; restores the previous handlers)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._armed = True
        self._events: list[_Settable] = []
        self._pid = os.getpid()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked worker before it set its own handlers
            return
        if self.signum is None:
            self.signum = signum
        for event in self._events:
            event.set()
        if self._armed:
            raise Interrupted(signum)

    def on_stop(self, event: _Settable) -> None:
        """Set ``event`` when a signal arrives (at once if one already has)."""
        self._events.append(event)
        if self.signum is not None:
            event.set()

    def hold(self) -> None:
        """From now on record signals instead of raising (the run will be finalized).
        A signal that arrived while armed raises here, before anything is recorded."""
        if self.signum is not None:
            raise Interrupted(self.signum)
        self._armed = False

    @property
    def armed(self) -> bool:
        """True until :meth:`hold`: a signal now means "interrupted before the run was recorded"."""
        return self._armed

    @property
    def name(self) -> str | None:
        """``SIGINT`` | ``SIGTERM`` once one arrived."""
        return None if self.signum is None else signal.Signals(self.signum).name
