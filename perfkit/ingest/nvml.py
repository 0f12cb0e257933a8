"""GPU telemetry through NVML (nvidia-ml-py, imported as ``pynvml``).

:func:`read_raw` asks NVML for one reading per GPU in NVML's own units;
:func:`convert` (pure, unit-tested on recorded readings) turns a reading into
rows in perfkit's names and units: power mW -> W, total energy mJ -> J, PCIe
throughput KB/s -> bytes/s; utilization stays in percent, memory in bytes,
clocks in MHz, temperature in Celsius. A field the GPU does not support is
simply absent from the reading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfkit import names as N

# raw key -> (perfkit name, unit, type, factor)
CONVERSIONS: dict[str, tuple[str, str, str, float]] = {
    "utilization_gpu_percent": (N.GPU_UTILIZATION, "percent", "gauge", 1.0),
    "utilization_memory_percent": (N.GPU_MEMORY_UTILIZATION, "percent", "gauge", 1.0),
    "memory_used_bytes": (N.GPU_MEMORY_USED, "bytes", "gauge", 1.0),
    "memory_total_bytes": (N.GPU_MEMORY_TOTAL, "bytes", "gauge", 1.0),
    "power_mw": (N.GPU_POWER, "W", "gauge", 1e-3),
    "total_energy_mj": (N.GPU_ENERGY, "J", "counter", 1e-3),
    "clock_sm_mhz": (N.GPU_SM_CLOCK, "MHz", "gauge", 1.0),
    "clock_mem_mhz": (N.GPU_MEMORY_CLOCK, "MHz", "gauge", 1.0),
    "pcie_tx_kbps": (N.GPU_PCIE_TX, "bytes/s", "gauge", 1024.0),
    "pcie_rx_kbps": (N.GPU_PCIE_RX, "bytes/s", "gauge", 1024.0),
    "temperature_c": (N.GPU_TEMPERATURE, "celsius", "gauge", 1.0),
}


@dataclass(frozen=True)
class GpuIdentity:
    index: int
    uuid: str
    model: str

    def labels(self) -> dict[str, str]:
        return {"gpu": str(self.index), "uuid": self.uuid, "model": self.model}


def convert(identity: GpuIdentity, raw: dict[str, float], ts_unix_s: float
            ) -> list[tuple[str, dict[str, str], str, str, float, float]]:
    """One GPU's raw NVML reading -> rows (name, labels, unit, type, ts_unix_s, value)."""
    labels = identity.labels()
    rows = []
    for key, value in raw.items():
        spec = CONVERSIONS.get(key)
        if spec is None or value is None:
            continue
        name, unit, typ, factor = spec
        rows.append((name, labels, unit, typ, ts_unix_s, float(value) * factor))
    return rows


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlUnavailable(Exception):
    """NVML cannot be used here (no driver, no GPU)."""


class NvmlReader:
    """Opens NVML once; :meth:`read` returns (identity, raw reading) per GPU."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # nvidia-ml-py is a dependency, but be clear if absent
            raise NvmlUnavailable(f"nvidia-ml-py not installed ({exc})") from None
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(str(exc)) from None
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            pynvml.nvmlShutdown()
            raise NvmlUnavailable("NVML found no GPU")
        self.gpus = []
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            ident = GpuIdentity(i, _text(pynvml.nvmlDeviceGetUUID(h)), _text(pynvml.nvmlDeviceGetName(h)))
            self.gpus.append((ident, h))

    def _try(self, fn, *args):
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return None

    def read(self) -> list[tuple[GpuIdentity, dict[str, float]]]:
        """One reading per GPU in NVML's units; unsupported fields left out."""
        n = self._nvml
        out = []
        for ident, h in self.gpus:
            raw: dict[str, float] = {}
            util = self._try(n.nvmlDeviceGetUtilizationRates, h)
            if util is not None:
                raw["utilization_gpu_percent"] = util.gpu
                raw["utilization_memory_percent"] = util.memory
            mem = self._try(n.nvmlDeviceGetMemoryInfo, h)
            if mem is not None:
                raw["memory_used_bytes"] = mem.used
                raw["memory_total_bytes"] = mem.total
            for key, fn, args in (
                ("power_mw", n.nvmlDeviceGetPowerUsage, ()),
                ("total_energy_mj", n.nvmlDeviceGetTotalEnergyConsumption, ()),
                ("clock_sm_mhz", n.nvmlDeviceGetClockInfo, (n.NVML_CLOCK_SM,)),
                ("clock_mem_mhz", n.nvmlDeviceGetClockInfo, (n.NVML_CLOCK_MEM,)),
                ("pcie_tx_kbps", n.nvmlDeviceGetPcieThroughput, (n.NVML_PCIE_UTIL_TX_BYTES,)),
                ("pcie_rx_kbps", n.nvmlDeviceGetPcieThroughput, (n.NVML_PCIE_UTIL_RX_BYTES,)),
                ("temperature_c", n.nvmlDeviceGetTemperature, (n.NVML_TEMPERATURE_GPU,)),
            ):
                value = self._try(fn, h, *args)
                if value is not None:
                    raw[key] = value
            out.append((ident, raw))
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass
