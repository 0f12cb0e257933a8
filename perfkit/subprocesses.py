"""Helper processes that perfkit starts on loopback (demo server, nginx, Prometheus)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Collection, Mapping


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (bind to 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def option_flags(options: Mapping[str, Any]) -> list[str]:
    """``{"max_batch": 8, "allow_remote": True}`` -> ``["--max-batch", "8", "--allow-remote"]``."""
    flags: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if key == "stall" and isinstance(value, (list, tuple)):
            flags += [flag, f"{value[0]:g}:{value[1]:g}"]
        elif value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(str(v) for v in value)]
        else:
            flags += [flag, str(value)]
    return flags


def pin_process(pid: int, cpus: Collection[int]) -> None:
    """Restrict a started process, every thread it has so far, to ``cpus`` (``os.sched_setaffinity``).

    Called right after the process starts: threads and children it starts later inherit
    the mask. A thread that ended meanwhile is skipped.
    """
    tasks = Path(f"/proc/{pid}/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, set(cpus))
        except ProcessLookupError:
            pass


def stop_process_group(process: subprocess.Popen, grace_s: float = 5.0) -> int | None:
    """SIGTERM the process group led by ``process``, SIGKILL after ``grace_s``; its exit code.

    The process must have been started with ``start_new_session=True`` so that its
    children (workers, kernels) go with it.
    """
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(5)
    return process.returncode
