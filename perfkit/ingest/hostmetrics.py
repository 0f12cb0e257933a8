"""Host and target-process telemetry through psutil.

Machine: CPU utilization (percent of all cores, averaged since the previous
reading), memory used/available/total (bytes). Target process (when a pid is
given): CPU percent (100 = one core) and resident memory (bytes).
"""
from __future__ import annotations

import psutil

from perfkit import names as N

Row = tuple[str, dict[str, str], str, str, float, float]


class HostReader:
    """Keeps psutil's CPU counters primed so each reading covers the last interval."""

    def __init__(self, target_pid: int | None = None) -> None:
        psutil.cpu_percent(interval=None)
        self.process: psutil.Process | None = None
        self.process_error: str | None = None
        if target_pid is not None:
            try:
                self.process = psutil.Process(target_pid)
                self.process.cpu_percent(interval=None)
            except psutil.Error as exc:
                self.process_error = f"target process {target_pid}: {exc}"
                self.process = None

    def read(self, ts_unix_s: float) -> list[Row]:
        """One reading of the machine and, while it lives, the target process."""
        host: dict[str, str] = {}
        vm = psutil.virtual_memory()
        rows: list[Row] = [
            (N.HOST_CPU_UTILIZATION, host, "percent", "gauge", ts_unix_s,
             float(psutil.cpu_percent(interval=None))),
            (N.HOST_MEMORY_USED, host, "bytes", "gauge", ts_unix_s, float(vm.used)),
            (N.HOST_MEMORY_AVAILABLE, host, "bytes", "gauge", ts_unix_s, float(vm.available)),
            (N.HOST_MEMORY_TOTAL, host, "bytes", "gauge", ts_unix_s, float(vm.total)),
        ]
        if self.process is not None:
            try:
                with self.process.oneshot():
                    cpu = self.process.cpu_percent(interval=None)
                    rss = self.process.memory_info().rss
            except psutil.Error as exc:
                self.process_error = f"target process {self.process.pid} went away ({exc})"
                self.process = None
            else:
                labels = {"pid": str(self.process.pid)}
                rows.append((N.PROCESS_CPU_UTILIZATION, labels, "percent", "gauge",
                             ts_unix_s, float(cpu)))
                rows.append((N.PROCESS_MEMORY_RSS, labels, "bytes", "gauge",
                             ts_unix_s, float(rss)))
        return rows
