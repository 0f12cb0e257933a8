"""Sub-millisecond wake-ups for the event loop, without spinning (Linux timerfd).

uvloop's (libuv's) timers have millisecond resolution: ``asyncio.sleep(0.0003)``
returns at once and ``asyncio.sleep(0.0015)`` after ~2 ms. A load generator that
must leave on time either spins (burning a core that the target or other workers
need) or sends up to 1 ms late. A ``timerfd`` armed at an absolute
``CLOCK_MONOTONIC`` instant (the clock of ``time.monotonic_ns``) becomes readable
at that instant with microsecond precision; the loop watches it like any socket.
Where timerfd is unavailable (not Linux), :func:`create` returns None and the
engine falls back to yielding until the send time.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
import time

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = 0o4000
TFD_CLOEXEC = 0o2000000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class MonotonicTimer:
    """One re-armable absolute timer on the running loop; one waiter at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, libc: ctypes.CDLL, fd: int):
        self.loop, self.libc, self.fd = loop, libc, fd
        self.spec = _Itimerspec()
        self.waiter: asyncio.Future | None = None
        loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def sleep_until(self, t_ns: int) -> None:
        """Return at (or just after) monotonic instant ``t_ns``."""
        v = self.spec.it_value
        v.tv_sec, v.tv_nsec = divmod(t_ns, 1_000_000_000)
        if self.libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self.spec), None) != 0:
            await asyncio.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))
            return
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.fd)
        finally:
            os.close(self.fd)


def create(loop: asyncio.AbstractEventLoop | None = None) -> MonotonicTimer | None:
    """A timer on ``loop`` (the running one by default), or None where timerfd is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                         ctypes.c_void_p]
        fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    return MonotonicTimer(loop or asyncio.get_running_loop(), libc, fd)
