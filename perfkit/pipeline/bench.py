"""One ``perfkit bench`` run as a subprocess, the way a pipeline starts it.

The command line is built from explicit option data (``{"rate": 200}`` ->
``--rate 200``, :func:`perfkit.subprocesses.option_flags`); the run's result is
its summary JSON, read back from a temporary file through the summary contract.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Collection, Mapping

from perfkit.names import LABEL_VERSION
from perfkit.redact import redact_text
from perfkit.subprocesses import option_flags, pin_process
from perfkit.summary import RunSummary, load


class BenchFailed(RuntimeError):
    """``perfkit bench`` wrote no summary (it failed, or ran past its time limit)."""


#: Set by a scheduler to the target's version or commit: the ``version`` label of a pipeline run.
VERSION_ENV = "PERFKIT_VERSION_LABEL"


def with_version(label: str) -> str:
    """``label`` plus ``version=$PERFKIT_VERSION_LABEL`` when that is set and the label names no version."""
    version = os.environ.get(VERSION_ENV, "").strip()
    if not version or f"{LABEL_VERSION}=" in label:
        return label
    return ",".join(x for x in (label, f"{LABEL_VERSION}={version}") if x)


def bench_command(target: str, options: Mapping[str, Any], summary_json: Path, *, label: str = "",
                  db: str | None = None, target_pid: int | None = None, command: str = "bench") -> list[str]:
    """The ``perfkit bench`` (or ``command``: ``sweep``) argv for one run against ``target`` with ``options``
    as flags."""
    cmd = [sys.executable, "-m", "perfkit", command, "--target", target, "--summary-json", str(summary_json),
           *option_flags(options)]
    label = with_version(label)
    if label:
        cmd += ["--label", label]
    if db:
        cmd += ["--db", str(db)]
    if target_pid is not None:
        cmd += ["--target-pid", str(target_pid)]
    return cmd


def run_bench(target: str, options: Mapping[str, Any], *, label: str = "", db: str | None = None,
              target_pid: int | None = None, log: Path | None = None,
              timeout_s: float | None = None, cpus: Collection[int] | None = None) -> RunSummary:
    """Run ``perfkit bench`` once and return its summary (the typed contract of
    :mod:`perfkit.summary`); :class:`BenchFailed` when it wrote none.

    With ``log`` the (redacted) command line, bench's output and its stderr are
    appended there; otherwise the output is captured and only the reason of a
    failure is kept. ``cpus``: the load generator runs on these CPUs only.
    """
    return load(_run(target, options, label=label, db=db, target_pid=target_pid, log=log, timeout_s=timeout_s,
                     cpus=cpus))


def run_sweep(target: str, options: Mapping[str, Any], *, label: str = "", db: str | None = None,
              target_pid: int | None = None, log: Path | None = None,
              timeout_s: float | None = None, cpus: Collection[int] | None = None) -> dict[str, Any]:
    """Run ``perfkit sweep`` once (``options``: its flags, ``rates``, ``find_knee``... with the per-step
    bench flags) and return its result JSON: the points, the knee, where it over-saturated."""
    text = _run(target, options, label=label, db=db, target_pid=target_pid, log=log, timeout_s=timeout_s,
                command="sweep", cpus=cpus)
    return dict(json.loads(text))


def _call(cmd: list[str], stdout: IO[str] | int, timeout_s: float | None,
          cpus: Collection[int] | None) -> tuple[int, str]:
    """Run ``cmd``, on ``cpus`` only from its start when given; its exit code and stderr. On a timeout
    the process is killed and :class:`subprocess.TimeoutExpired` raised (as :func:`subprocess.run` does)."""
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    if cpus:
        pin_process(proc.pid, cpus)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return int(proc.returncode), err


def _run(target: str, options: Mapping[str, Any], *, label: str, db: str | None, target_pid: int | None,
         log: Path | None, timeout_s: float | None, command: str = "bench",
         cpus: Collection[int] | None = None) -> str:
    """Run ``perfkit COMMAND`` once and return the text of the JSON it wrote; :class:`BenchFailed` when none."""
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        cmd = bench_command(target, options, summary_path, label=label, db=db, target_pid=target_pid,
                            command=command)
        try:
            if log is None:
                code, err = _call(cmd, subprocess.PIPE, timeout_s, cpus)
            else:
                with log.open("a", encoding="utf-8") as fh:
                    fh.write(f"\n$ {redact_text(' '.join(cmd))}\n")
                    fh.flush()
                    code, err = _call(cmd, fh, timeout_s, cpus)
                    fh.write(err)
        except subprocess.TimeoutExpired:
            raise BenchFailed(f"perfkit {command} did not finish within {timeout_s:.0f} s") from None
        if not summary_path.exists():
            last = (err.strip().splitlines() or [f"exit {code}"])[-1]
            raise BenchFailed(f"perfkit {command} exited {code}: {last}")
        return summary_path.read_text(encoding="utf-8")


def choose_run(db: str | None, run_id: str, target: str, rate_rps: float, duration_s: float,
               pattern: str = "constant", protocol: str = "http-json") -> str:
    """The run a notebook shows: a fresh benchmark of ``target`` when it is set, else ``run_id``."""
    if not target:
        return run_id
    options = {"rate": rate_rps, "duration": duration_s, "pattern": pattern, "protocol": protocol}
    return str(run_bench(target, options, label="notebook=01", db=db or None)["run_id"])
