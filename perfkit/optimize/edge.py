"""The edge profile: each variant alone on one thread under a memory cap, MLPerf SingleStream style.

An edge device has one model, a few GB at most and a camera feeding one frame
at a time. So each variant runs in its own process whose address space is
capped with ``RLIMIT_AS`` (a process that asks for more gets an allocation
failure, which is how a small device fails), onnxruntime and BLAS on one thread,
and a closed loop sends one image, waits for the answer, sends the next
(SingleStream) for a fixed time. Reported: frames per second and the P90
latency with its order-statistic interval, or, when the variant cannot even
load under the cap, that it could not (not a crash).

The child is ``python -m perfkit.optimize.edge MODEL.onnx GRAPH_LEVEL FRAMES.npy OUT.npy SECONDS``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

#: 4 GB: the article's "edge devices with under 4 GB of memory".
DEFAULT_CAP_MB = 4096


@dataclass(frozen=True)
class EdgeResult:
    """One variant's SingleStream run under the cap; ``loaded`` False with the reason when it could not load."""

    variant: str
    cap_mb: int
    loaded: bool
    frames: int = 0
    fps: float = 0.0
    p90_ms: float = float("nan")
    p90_lo_ms: float = float("nan")
    p90_hi_ms: float = float("nan")
    reason: str = ""


def _cap(cap_mb: int) -> None:
    import resource

    limit = cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_one(name: str, cap_mb: int = DEFAULT_CAP_MB, duration_s: float = 2.0) -> EdgeResult:
    """Run the built variant ``name`` on the digits test frames (see :func:`run_file`)."""
    from perfkit.demo.model import variant_manifest
    from perfkit.optimize.data import digits_rows, digits_split

    manifest = variant_manifest(name)
    spec: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return run_file(name, manifest.with_name(spec["file"]), digits_rows(digits_split().test)[0],
                    str(spec.get("graph_level", "all")), cap_mb, duration_s)


def run_file(name: str, model: Path, frames: Any, graph_level: str = "all", cap_mb: int = DEFAULT_CAP_MB,
             duration_s: float = 2.0) -> EdgeResult:
    """Run ONNX file ``model`` on ``frames`` (one row per frame) in a capped single-threaded child process;
    never raises for a failed load.

    The child gets the frames as a ``.npy`` file and hands back its latencies the same way, so it
    imports only NumPy and onnxruntime: the cap measures the model and its runtime, not the tooling."""
    import tempfile

    import numpy as np

    from perfkit.quantiles import quantile_ci

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        frames_path, latencies = Path(tmp) / "frames.npy", Path(tmp) / "latencies.npy"
        np.save(frames_path, np.asarray(frames))
        res = subprocess.run([sys.executable, "-m", "perfkit.optimize.edge", str(model), graph_level,
                              str(frames_path), str(latencies), str(duration_s)], capture_output=True, text=True,
                             env=env, preexec_fn=lambda: _cap(cap_mb), timeout=duration_s + 120,
                             stdin=subprocess.DEVNULL, check=False)
        if res.returncode != 0 or not latencies.exists():
            why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
            return EdgeResult(name, cap_mb, False, reason=f"cannot load or run under {cap_mb} MB: {why[:200]}")
        values = np.load(latencies)
    elapsed_s = float(res.stdout.strip().splitlines()[-1])
    p90 = quantile_ci(values, 0.9)
    return EdgeResult(name, cap_mb, True, len(values), len(values) / elapsed_s, p90.value, p90.lo, p90.hi)


def profile(names: Sequence[str], cap_mb: int = DEFAULT_CAP_MB, duration_s: float = 2.0) -> list[EdgeResult]:
    """The edge profile of every variant, one after another."""
    return [run_one(name, cap_mb, duration_s) for name in names]


def _single_stream(model: str, graph_level: str, frames_path: str, out_path: str, duration_s: float) -> float:
    """In the capped child: load on one thread, then one frame at a time for ``duration_s``; the seconds taken."""
    import time

    import numpy as np

    from perfkit.demo.model import open_session

    session = open_session(model, threads=1, graph_level=graph_level)
    input_name = session.get_inputs()[0].name
    frames = np.load(frames_path)
    latencies: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        frame = frames[len(latencies) % len(frames)][None, ...]
        t0 = time.perf_counter()
        session.run(None, {input_name: frame})
        latencies.append(1000 * (time.perf_counter() - t0))
    elapsed = time.perf_counter() - started
    np.save(out_path, np.asarray(latencies))
    return elapsed


if __name__ == "__main__":
    print(_single_stream(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
