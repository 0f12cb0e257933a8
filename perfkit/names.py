"""Names shared between stages: normalized metric names, run label keys, source kinds.

The ingest stage writes series under these names (whatever the exporter called
them: NVML, nvidia-smi, DCGM, psutil); the analyze and report stages read them
by the same constants. A name used by more than one stage is spelled here once
and nowhere else. Each importer's own mapping from raw exporter fields to these
names stays in that importer.
"""
from __future__ import annotations

# --------------------------------------------------------------------------- GPU (normalized)
GPU_UTILIZATION = "gpu_utilization_percent"
GPU_MEMORY_UTILIZATION = "gpu_memory_utilization_percent"
GPU_ENCODER_UTILIZATION = "gpu_encoder_utilization_percent"
GPU_DECODER_UTILIZATION = "gpu_decoder_utilization_percent"
GPU_MEMORY_USED = "gpu_memory_used_bytes"
GPU_MEMORY_FREE = "gpu_memory_free_bytes"
GPU_MEMORY_TOTAL = "gpu_memory_total_bytes"
GPU_MEMORY_RESERVED = "gpu_memory_reserved_bytes"
GPU_MEMORY_USED_RATIO = "gpu_memory_used_ratio"
GPU_BAR1_USED = "gpu_bar1_used_bytes"
GPU_POWER = "gpu_power_w"
GPU_ENERGY = "gpu_energy_j"
GPU_SM_CLOCK = "gpu_sm_clock_mhz"
GPU_MEMORY_CLOCK = "gpu_memory_clock_mhz"
GPU_GRAPHICS_CLOCK = "gpu_graphics_clock_mhz"
GPU_TEMPERATURE = "gpu_temperature_c"
GPU_MEMORY_TEMPERATURE = "gpu_memory_temperature_c"
GPU_PCIE_TX = "gpu_pcie_tx_bytes_per_s"
GPU_PCIE_RX = "gpu_pcie_rx_bytes_per_s"
GPU_FAN_SPEED = "gpu_fan_speed_percent"
GPU_PSTATE = "gpu_pstate"
GPU_CLOCK_EVENT_REASONS = "gpu_clock_event_reasons"
GPU_PCIE_LINK_GEN = "gpu_pcie_link_gen"
GPU_PCIE_LINK_WIDTH = "gpu_pcie_link_width"
GPU_POWER_VIOLATION = "gpu_power_violation_percent"
GPU_THERMAL_VIOLATION = "gpu_thermal_violation"
GPU_ECC_SINGLE_BIT = "gpu_ecc_single_bit_errors"
GPU_ECC_DOUBLE_BIT = "gpu_ecc_double_bit_errors"
GPU_PCIE_REPLAYS = "gpu_pcie_replays"

# --------------------------------------------------------------------------- host and process
HOST_CPU_UTILIZATION = "host_cpu_utilization_percent"
HOST_MEMORY_USED = "host_memory_used_bytes"
HOST_MEMORY_AVAILABLE = "host_memory_available_bytes"
HOST_MEMORY_TOTAL = "host_memory_total_bytes"
PROCESS_CPU_UTILIZATION = "process_cpu_utilization_percent"
PROCESS_MEMORY_RSS = "process_memory_rss_bytes"

# --------------------------------------------------------------------------- the demo server's /metrics
DEMO_PREFIX = "perfkit_demo_"
DEMO_REQUESTS = DEMO_PREFIX + "requests"
DEMO_ERRORS = DEMO_PREFIX + "errors"
DEMO_REQUEST_DURATION = DEMO_PREFIX + "request_duration_seconds"
DEMO_IN_FLIGHT = DEMO_PREFIX + "in_flight_requests"
DEMO_QUEUE_DEPTH = DEMO_PREFIX + "queue_depth"
DEMO_QUEUE_WAIT = DEMO_PREFIX + "queue_wait_seconds"
DEMO_BATCH_SIZE = DEMO_PREFIX + "batch_size"
DEMO_BATCH_ROWS = DEMO_PREFIX + "batch_rows"
DEMO_BATCH_PADDING_ROWS = DEMO_PREFIX + "batch_padding_rows"
DEMO_INFERENCE_DURATION = DEMO_PREFIX + "inference_duration_seconds"
DEMO_STALLS = DEMO_PREFIX + "stalls"
DEMO_STALL_SECONDS = DEMO_PREFIX + "stall_seconds"
DEMO_LLM_PROMPT_TOKENS = DEMO_PREFIX + "llm_prompt_tokens"
DEMO_LLM_TOKENS_GENERATED = DEMO_PREFIX + "llm_tokens_generated"
DEMO_LLM_RUNNING = DEMO_PREFIX + "llm_running_sequences"
DEMO_LLM_WAITING = DEMO_PREFIX + "llm_waiting_sequences"
DEMO_LLM_TTFT = DEMO_PREFIX + "llm_time_to_first_token_seconds"

# --------------------------------------------------------------------------- run label keys
LABEL_HARDWARE = "hardware"   # the device a run measured: a catalog name or a match of its regex
LABEL_DEVICES = "devices"     # how many of them served the run (rates and power are divided by it)
LABEL_SUITE = "suite"         # the suite a run belongs to (UTC stamp of `perfkit report --suite`)
LABEL_CASE = "case"           # the suite case (steady, burst, fixed-batching...)
LABEL_VERSION = "version"     # the target's version or commit, when a pipeline gives it

# --------------------------------------------------------------------------- more GPU and demo names
# (written by one importer today; spelled here so every reader finds them by constant)
GPU_POWER_AVERAGE = "gpu_power_average_w"
GPU_POWER_LIMIT = "gpu_power_limit_w"
GPU_POWER_LIMIT_ENFORCED = "gpu_power_limit_enforced_w"
GPU_GRAPHICS_ENGINE_ACTIVE = "gpu_graphics_engine_active_ratio"
GPU_SM_ACTIVE = "gpu_sm_active_ratio"
GPU_SM_OCCUPANCY = "gpu_sm_occupancy_ratio"
GPU_TENSOR_ACTIVE = "gpu_tensor_active_ratio"
GPU_DRAM_ACTIVE = "gpu_dram_active_ratio"
GPU_FP64_ACTIVE = "gpu_fp64_active_ratio"
GPU_FP32_ACTIVE = "gpu_fp32_active_ratio"
GPU_FP16_ACTIVE = "gpu_fp16_active_ratio"
GPU_LAST_XID_ERROR = "gpu_last_xid_error"
GPU_PCIE_REPLAYS_TOTAL = "gpu_pcie_replays_total"  # DCGM's counter (dmon's per-interval count: GPU_PCIE_REPLAYS)
DEMO_LLM_TPOT = DEMO_PREFIX + "llm_time_per_output_token_seconds"
DEMO_LLM_STEP_DURATION = DEMO_PREFIX + "llm_step_duration_seconds"
DEMO_LLM_STEP_BATCH_SIZE = DEMO_PREFIX + "llm_step_batch_size"

# --------------------------------------------------------------------------- A/B experiment label keys
LABEL_ARM = "arm"             # which side of an A/B experiment a run belongs to: baseline | candidate
LABEL_REPEAT = "repeat"       # the repeat index (1-based) of a run within its arm or suite case
LABEL_ABTEST = "abtest"       # the id of the `perfkit abtest` experiment a run belongs to
LABEL_SWEEP = "sweep"         # the id of the `perfkit sweep` a run is a step of (with rate=<intended req/s>)

# --------------------------------------------------------------------------- canonical server signals
# What the root-cause rules read from any inference server's metrics; each server's own names and
# units are mapped onto these by perfkit.analyze.vocabulary (times in seconds, usage as a ratio).
SIGNAL_QUEUE_DEPTH = "queue_depth"        # requests waiting for the model (level)
SIGNAL_QUEUE_TIME = "queue_time"          # seconds a request waits before it is computed
SIGNAL_COMPUTE_TIME = "compute_time"      # seconds of model computation per request
SIGNAL_SERVER_TIME = "server_time"        # seconds from a request's arrival to its answer, in the server
SIGNAL_IN_FLIGHT = "in_flight"            # requests inside the server, queued or computing (level)
SIGNAL_EXECUTIONS = "executions"          # model executions (batches run)
SIGNAL_INFERENCES = "inferences"          # requests (or items) computed; per execution: the batch size
SIGNAL_BATCH_ROWS = "batch_rows"          # real rows computed (servers that pad batches to a shape)
SIGNAL_PADDING_ROWS = "padding_rows"      # padding rows computed for nothing
SIGNAL_KV_CACHE_USAGE = "kv_cache_usage"  # share of the KV cache in use (ratio 0..1)
SIGNAL_PREEMPTIONS = "preemptions"        # sequences preempted (evicted from the KV cache)
SIGNAL_MODEL_LOADS = "model_loads"        # model or worker loads (cold starts)
SIGNAL_MODEL_LOAD_TIME = "model_load_time"  # seconds the latest model or worker load took (level)
SIGNAL_REQUESTS = "requests"              # requests answered
SIGNAL_ERRORS = "errors"                  # requests failed
SIGNAL_TTFT = "ttft"                      # seconds to the first token (LLM servers)
SIGNAL_TPOT = "tpot"                      # seconds per output token after the first, one value per request
SIGNAL_ITL = "itl"                        # seconds between consecutive tokens, one value per gap (pooled)
# ``perfkit bench --slo`` keys -> the one per-request series (a ``requests`` metric of the store's
# reader, perfkit.store.runs.LATENCY_COLUMNS) each bounds; the bench summary's ``definitions``
# give each series' formula. Bench parses the keys, the store counts goodput, analyze gives verdicts.
SLO_SERIES = {
    "latency_ms": "latency_ms",                    # response complete - intended send
    "ttft_ms": "ttft_intended_ms",                 # first token - intended send
    "tpot_ms": "tpot_ms",                          # (done - first token) / (output tokens - 1)
    "tpot_incl_ttft_ms": "tpot_incl_ttft_ms",      # (done - intended send) / output tokens
    "itl_max_ms": "itl_ms_max",                    # the request's largest inter-token gap
    "itl_request_mean_ms": "itl_request_mean_ms",  # the mean of the request's inter-token gaps
}
# The headline figure under which a report lists its open regressions (notebook 07; the index's report sets).
HEADLINE_OPEN_REGRESSIONS = "open regressions"
