"""dcgm-exporter /metrics text -> Telemetry with perfkit's GPU names, units and labels.

Units follow NVIDIA's field definitions (see REFERENCE.md): FB_* are MiB and
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

from perfkit.ingest import promtext
from perfkit.ingest.frames import Telemetry, from_long

MIB = 1024.0 * 1024.0

# DCGM field -> (perfkit name, unit, factor to that unit, type or None to keep)
FIELDS: dict[str, tuple[str, str, float, str | None]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_utilization_percent", "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("gpu_memory_utilization_percent", "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_ENC_UTIL": ("gpu_encoder_utilization_percent", "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_DEC_UTIL": ("gpu_decoder_utilization_percent", "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_FB_USED": ("gpu_memory_used_bytes", "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_FREE": ("gpu_memory_free_bytes", "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_TOTAL": ("gpu_memory_total_bytes", "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_RESERVED": ("gpu_memory_reserved_bytes", "bytes", MIB, "gauge"),
    "DCGM_FI_DEV_FB_USED_PERCENT": ("gpu_memory_used_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_DEV_POWER_USAGE": ("gpu_power_w", "W", 1.0, "gauge"),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("gpu_energy_j", "J", 1e-3, "counter"),
    "DCGM_FI_DEV_SM_CLOCK": ("gpu_sm_clock_mhz", "MHz", 1.0, "gauge"),
    "DCGM_FI_DEV_MEM_CLOCK": ("gpu_memory_clock_mhz", "MHz", 1.0, "gauge"),
    "DCGM_FI_DEV_GPU_TEMP": ("gpu_temperature_c", "celsius", 1.0, "gauge"),
    "DCGM_FI_DEV_MEMORY_TEMP": ("gpu_memory_temperature_c", "celsius", 1.0, "gauge"),
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT": ("gpu_pcie_tx_bytes_per_s", "bytes/s", 1024.0, "gauge"),
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT": ("gpu_pcie_rx_bytes_per_s", "bytes/s", 1024.0, "gauge"),
    "DCGM_FI_PROF_PCIE_TX_BYTES": ("gpu_pcie_tx_bytes_per_s", "bytes/s", 1.0, "gauge"),
    "DCGM_FI_PROF_PCIE_RX_BYTES": ("gpu_pcie_rx_bytes_per_s", "bytes/s", 1.0, "gauge"),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gpu_graphics_engine_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_SM_ACTIVE": ("gpu_sm_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_SM_OCCUPANCY": ("gpu_sm_occupancy_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("gpu_tensor_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("gpu_dram_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": ("gpu_fp64_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": ("gpu_fp32_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": ("gpu_fp16_active_ratio", "ratio", 1.0, "gauge"),
    "DCGM_FI_DEV_XID_ERRORS": ("gpu_last_xid_error", "code", 1.0, "gauge"),
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": ("gpu_pcie_replays_total", "count", 1.0, "counter"),
    "DCGM_FI_DEV_FAN_SPEED": ("gpu_fan_speed_percent", "percent", 1.0, "gauge"),
    "DCGM_FI_DEV_PSTATE": ("gpu_pstate", "state", 1.0, "gauge"),
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": ("gpu_clock_event_reasons", "bitmask", 1.0, "gauge"),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": ("gpu_clock_event_reasons", "bitmask", 1.0, "gauge"),
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
    rows = []
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
