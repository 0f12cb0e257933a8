"""Start and stop a real ``perfkit serve-demo`` process, for tests, notebooks and tools.

    from perfkit.demo.launch import DemoServer

    with DemoServer(batching="fixed", max_batch=8, stall="5:0.5") as server:
        requests.post(server.url + "/api/v1/infer", json={...})

Keyword options become command-line flags (``max_batch=8`` -> ``--max-batch 8``;
``True`` -> a bare flag; ``None``/``False`` -> omitted; ``stall=(10, 0.5)`` or
``stall="10:0.5"``). The server runs as
``sys.executable -m perfkit serve-demo`` on a free loopback port in its own process
group; start() waits for ``GET /health`` and on failure raises
:class:`DemoServerError` carrying the tail of the server's stderr; stop() sends
SIGTERM, then SIGKILL to the group after a grace period. ``cpus={0}`` runs the
server on those CPUs only (``os.sched_setaffinity`` from its start), so that a load
generator on the others does not compete with it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Collection

from perfkit.subprocesses import free_port, option_flags, pin_process, stop_process_group


class DemoServerError(RuntimeError):
    """The demo server did not come up (the message holds its stderr tail)."""


class DemoServer:
    """A ``perfkit serve-demo`` subprocess on a free loopback port (context manager)."""

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 120.0,
                 env: dict[str, str] | None = None, cpus: Collection[int] | None = None, **options: Any) -> None:
        self.host = "127.0.0.1"
        self._pick_port = port is None  # a free port may be taken before we bind: retry
        self.port = port or free_port(self.host)
        self.startup_timeout_s = startup_timeout_s
        self.options = options
        self.env = env
        self.cpus = frozenset(cpus) if cpus else None
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise DemoServerError("the demo server is not started")
        return self.process.pid

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "perfkit", "serve-demo", "--host", self.host,
                "--port", str(self.port), *option_flags(self.options)]

    @property
    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` a server started with ``require_token_env`` wants (else none)."""
        var = self.options.get("require_token_env")
        if not var:
            return {}
        env = os.environ if self.env is None else self.env
        return {"Authorization": f"Bearer {env[var]}"}

    def config(self) -> dict[str, Any]:
        """The running server's ``GET /demo/config``: options, ``stall_epoch_unix_s``, models."""
        import json

        request = urllib.request.Request(self.url + "/demo/config", headers=self.auth_headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stderr_tail(self, max_chars: int = 4000) -> str:
        """The last ``max_chars`` of what the server wrote on stderr."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-max_chars:]

    def start(self) -> "DemoServer":
        """Start the process and wait until ``/health`` answers 200.

        When the port was picked here and another process took it before the server
        could bind (a race between free_port() and bind), try again on a new port.
        """
        for attempt in range(3):
            try:
                return self._start_once()
            except DemoServerError as exc:
                if not (self._pick_port and "address already in use" in str(exc)) or attempt == 2:
                    raise
                self.port = free_port(self.host)
                self._stderr.seek(0)
                self._stderr.truncate()
        raise AssertionError("unreachable")

    def _start_once(self) -> "DemoServer":
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # onnxruntime is told 1 thread; keep numpy's BLAS to one as well.
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr,
                                        env=env, start_new_session=True)
        if self.cpus:
            pin_process(self.process.pid, self.cpus)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                raise DemoServerError(f"perfkit serve-demo exited with code {code} before "
                                      f"answering /health; stderr:\n{self.stderr_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise DemoServerError(
                    f"perfkit serve-demo did not answer {self.url}/health within "
                    f"{self.startup_timeout_s:.0f} s; stderr:\n{self.stderr_tail()}")
            time.sleep(0.1)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the server's process group, SIGKILL after ``grace_s``; the exit code."""
        process = self.process
        if process is None:
            return None
        return stop_process_group(process, grace_s)

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
        self._stderr.close()
