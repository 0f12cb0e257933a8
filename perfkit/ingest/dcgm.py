"""dcgm-exporter /metrics text -> Telemetry with perfkit's GPU names, units and labels.

Units follow NVIDIA's DCGM field definitions (dcgm_fields.h): FB_* are MiB and
become bytes; POWER_USAGE is W; TOTAL_ENERGY_CONSUMPTION is a counter in mJ and
becomes J; DCGM_FI_PROF_* are ratios 0-1 even where HELP says "(in %)";
PROF_PCIE_*_BYTES are bytes/s; the deprecated DEV_PCIE_TX/RX_THROUGHPUT are KB/s
and become bytes/s. Fields not in the table keep their DCGM name, unit unknown.
Labels are normalized: gpu, uuid, model, hostname, pci_bus_id, device,
driver_version, mig_profile, mig_instance, pod, namespace, container.
"""
from __future__ import annotations

import json

import polars as pl

from perfkit import names as N
from perfkit.ingest import promtext
from perfkit.ingest.frames import Telemetry, from_long

MIB = 1024.0 * 1024.0

# DCGM field -> (perfkit name, unit, factor to that unit, type or None to keep)
FIELDS: dict[str, tuple[str, str, float, str | None]] = {
    "DCGM_FI_DEV_GPU_UTIL": (N.GPU_UTILIZATION, "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_MEM_COPY_UTIL": (N.GPU_MEMORY_UTILIZATION, "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_ENC_UTIL": (N.GPU_ENCODER_UTILIZATION, "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_DEC_UTIL": (N.GPU_DECODER_UTILIZATION, "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_FB_USED": (N.GPU_MEMORY_USED, "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_FREE": (N.GPU_MEMORY_FREE, "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_TOTAL": (N.GPU_MEMORY_TOTAL, "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_RESERVED": (N.GPU_MEMORY_RESERVED, "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_USED_PERCENT": (N.GPU_MEMORY_USED_RATIO, "ratio", 1.0, "gauge"),
    "DCGM_FI_DEV_POWER_USAGE": (N.GPU_POWER, "W", 1.0, "gauge"),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": (N.GPU_ENERGY, "J", 1e-3, "counter"),
    "DCGM_FI_DEV_SM_CLOCK": (N.GPU_SM_CLOCK, "MHz", 1.0, "gauge"),
    "DCGM_FI_DEV_MEM_CLOCK": (N.GPU_MEMORY_CLOCK, "MHz", 1.0, "gauge"),
    "DCGM_FI_DEV_GPU_TEMP": (N.GPU_TEMPERATURE, "celsius", 1.0, "gauge"),
    "DCGM_FI_DEV_MEMORY_TEMP": (N.GPU_MEMORY_TEMPERATURE, "celsius", 1.0, "gauge"),
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT": (N.GPU_PCIE_TX, "bytes/s", 1024.0, "gauge"),
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT": (N.GPU_PCIE_RX, "bytes/s", 1024.0, "gauge"),
    "DCGM_FI_PROF_PCIE_TX_BYTES": (N.GPU_PCIE_TX, "bytes/s", 1.0, "gauge"),
    "DCGM_FI_PROF_PCIE_RX_BYTES": (N.GPU_PCIE_RX, "bytes/s", 1.0, "gauge"),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": (N.GPU_GRAPHICS_ENGINE_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_SM_ACTIVE": (N.GPU_SM_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_SM_OCCUPANCY": (N.GPU_SM_OCCUPANCY, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": (N.GPU_TENSOR_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_DRAM_ACTIVE": (N.GPU_DRAM_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": (N.GPU_FP64_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": (N.GPU_FP32_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": (N.GPU_FP16_ACTIVE, "ratio", 1.0, "gauge"),
    "DCGM_FI_DEV_XID_ERRORS": (N.GPU_LAST_XID_ERROR, "code", 1.0, "gauge"),
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": (N.GPU_PCIE_REPLAYS_TOTAL, "count", 1.0, "counter"),
    "DCGM_FI_DEV_FAN_SPEED": (N.GPU_FAN_SPEED, "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_PSTATE": (N.GPU_PSTATE, "state", 1.0, "gauge"),
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": (N.GPU_CLOCK_EVENT_REASONS, "bitmask", 1.0, "gauge"),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": (N.GPU_CLOCK_EVENT_REASONS, "bitmask", 1.0, "gauge"),
}

LABELS = {
    "gpu": "gpu", "UUID": "uuid", "uuid": "uuid", "modelName": "model", "Hostname": "hostname",
    "hostname": "hostname", "pci_bus_id": "pci_bus_id", "device": "device",
    "DCGM_FI_DRIVER_VERSION": "driver_version", "GPU_I_PROFILE": "mig_profile",
    "GPU_I_ID": "mig_instance", "pod": "pod", "namespace": "namespace", "container": "container",
}


def normalize_labels(labels: dict[str, str]) -> dict[str, str]:
    """dcgm-exporter label names -> perfkit's (unknown names kept as they are)."""
    return {LABELS.get(k, k): v for k, v in labels.items()}


def read(text: str, path: str, at_unix_s: float) -> Telemetry:
    """Parse a dcgm-exporter scrape; convert units and names per :data:`FIELDS`."""
    expo = promtext.parse(text, path)
    samples = expo.samples
    if samples.height == 0:
        return from_long(pl.DataFrame())
    meta = expo.series_meta()
    labels_map = {lab: json.dumps(normalize_labels(json.loads(lab)), separators=(",", ":"),
                                  ensure_ascii=False)
                  for lab in samples.get_column("labels").unique().to_list()}
    names = samples.get_column("name").unique().to_list()
    rows: list[tuple[str, str, str | None, float, str]] = []
    for name in names:
        spec = FIELDS.get(name)
        fam_type = meta.filter(pl.col("name") == name).get_column("type")[0]
        if spec:
            rows.append((name, spec[0], spec[1], spec[2], spec[3] or fam_type))
        else:
            rows.append((name, name, None, 1.0, fam_type))
    mapping = pl.DataFrame(rows, schema={"name": pl.String, "new_name": pl.String,
                                         "unit": pl.String, "factor": pl.Float64,
                                         "type": pl.String}, orient="row")
    long = (
        samples.join(mapping, on="name", how="left", maintain_order="left")
        .with_columns(
            labels=pl.col("labels").replace_strict(labels_map, return_dtype=pl.String),
            value=pl.col("value") * pl.col("factor"),
            ts_unix_s=pl.col("ts_unix_s").fill_null(at_unix_s),
        )
        .select(pl.col("new_name").alias("name"), "labels", "unit", "type", "ts_unix_s", "value")
    )
    return from_long(long)
