"""The GPU rule: under-use, and memory pressure only where allocator evidence shows it.

Input: one row per GPU (what :func:`perfkit.analyze.rootcause.evidence.gpu_frame`
reads) with ``util_percent`` and, where recorded, framebuffer figures
(``fb_used_bytes``, ``fb_free_bytes``, ``fb_total_bytes``), PyTorch allocator
figures (``torch_reserved_bytes``, ``torch_allocated_bytes``,
``torch_inactive_split_bytes``, ``torch_peak_allocated_bytes``) and the
increase over the run of the out-of-memory and eviction counters (``ooms``,
``alloc_retries``, ``preemptions``).

A GPU with mean utilization under 50% gets one finding:

* **high** ``gpu_memory`` ("memory, not compute, limits the batch") when the
  allocator shows pressure: fragmentation ``1 - allocated/reserved`` >= 30%, or
  inactive split blocks >= 30% of reserved, or any out-of-memory error,
  allocator retry (cudaMalloc failed, cache flushed) or KV-cache preemption
  during the run, or free memory — free framebuffer plus reserved-but-unallocated —
  below what a batch needs (peak allocated minus allocated);
* else **low** ``gpu_underuse``. Framebuffer use is only context there: servers
  that pre-allocate (vLLM, TensorRT) hold 80-95% of it whatever the load, so a
  full framebuffer with low utilization is not evidence of pressure.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from perfkit.analyze.rootcause.finding import Finding, chart

GPU_UTIL_PERCENT, GPU_FRAG = 50.0, 0.30
GIB = 1024.0 ** 3


def _share(part: float, whole: float) -> float:
    return float(part / whole) if math.isfinite(part) and math.isfinite(whole) and whole > 0 else math.nan


def _get(g: pd.Series, key: str) -> float:
    v = g.get(key, math.nan)
    return math.nan if v is None or pd.isna(v) else float(v)


def pressure_evidence(g: pd.Series) -> tuple[dict[str, Any], list[str]]:
    """The memory figures of one GPU and the allocator evidence of pressure they show (text per sign)."""
    reserved, allocated = _get(g, "torch_reserved_bytes"), _get(g, "torch_allocated_bytes")
    frag = 1 - _share(allocated, reserved)
    split = _share(_get(g, "torch_inactive_split_bytes"), reserved)
    free = _get(g, "fb_free_bytes")
    headroom = free + (reserved - allocated if math.isfinite(reserved - allocated) else 0.0)
    need = _get(g, "torch_peak_allocated_bytes") - allocated
    events = {key: _get(g, key) for key in ("ooms", "alloc_retries", "preemptions")}
    numbers: dict[str, Any] = {"fb_used_share": _share(_get(g, "fb_used_bytes"), _get(g, "fb_total_bytes")),
                               "fragmentation_1_minus_alloc_over_reserved": frag,
                               "inactive_split_share": split, "headroom_bytes": headroom,
                               "batch_need_bytes": need, **events}
    signs = []
    if math.isfinite(frag) and frag >= GPU_FRAG:
        signs.append(f"fragmentation {frag:.0%} (1 - allocated/reserved)")
    if math.isfinite(split) and split >= GPU_FRAG:
        signs.append(f"{split:.0%} of reserved memory in inactive split blocks")
    for key, what in (("ooms", "out-of-memory error(s)"), ("alloc_retries", "allocator retries"),
                      ("preemptions", "KV-cache preemption(s)")):
        if events[key] > 0:
            signs.append(f"{events[key]:.0f} {what}")
    if math.isfinite(headroom) and math.isfinite(need) and need > 0 and headroom < need:
        signs.append(f"{headroom / GIB:.2f} GiB free, below the {need / GIB:.2f} GiB a batch needs")
    return numbers, signs


def gpu_memory(gpus: pd.DataFrame, where: str, run_ids: Sequence[str] = ()) -> list[Finding]:
    """GPU under-use, and memory pressure where the allocator shows it (definitions in module doc)."""
    if gpus.empty or "util_percent" not in gpus:
        return []
    out = []
    for _, g in gpus.iterrows():
        util = _get(g, "util_percent")
        if not math.isfinite(util) or util >= GPU_UTIL_PERCENT:
            continue
        n = _get(g, "samples")
        samples = int(n) if math.isfinite(n) else 0
        figures, signs = pressure_evidence(g)
        numbers = {"gpu": g.get("gpu"), "model": g.get("model", ""), "util_percent": util, **figures,
                   "samples": samples, "data": where}
        label = f"GPU {g.get('gpu')} ({g.get('model') or 'unknown model'})"
        fb_share, frag = figures["fb_used_share"], figures["fragmentation_1_minus_alloc_over_reserved"]
        values = {"utilization": util / 100, "FB used": fb_share if math.isfinite(fb_share) else 0.0}
        if math.isfinite(frag):
            values["fragmentation"] = frag
        drawing = chart("bars", values=values, ylabel="share (0-1)", title=label)
        if signs:
            out.append(Finding("gpu_memory", f"{label}: utilization {util:.0f}% with memory pressure: "
                               + "; ".join(signs), "high", numbers,
                               "Memory, not compute, limits the batch: release cached blocks, set "
                               "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, cap KV-cache share, "
                               "or batch larger within memory.", list(run_ids), 1 - util / 100, drawing))
            continue
        notes = []
        if math.isfinite(fb_share):
            notes.append(f"framebuffer {fb_share:.0%} used (servers that pre-allocate hold most of it "
                         "whatever the load)")
        has_allocator = math.isfinite(frag) or any(math.isfinite(figures[k]) for k in ("ooms", "alloc_retries",
                                                                                        "preemptions"))
        notes.append("no sign of memory pressure in the allocator figures" if has_allocator else
                     "no allocator figures, so memory pressure is not assessed (framebuffer use cannot show it)")
        out.append(Finding("gpu_underuse", f"{label}: utilization {util:.0f}% (n={samples} samples, {where}); "
                           + "; ".join(notes), "low", numbers,
                           "The GPU waits on something else (CPU pre-processing, batching, I/O): "
                           "raise the batch or the load, or share the GPU (MIG, MPS).",
                           list(run_ids), 1 - util / 100, drawing))
    return out
