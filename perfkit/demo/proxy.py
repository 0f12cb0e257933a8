"""A real reverse proxy (nginx from Debian) in front of a local service, for overhead runs.

``NginxProxy(upstream_url)`` writes its own config into a temporary prefix
(config, pid, logs, temp dirs), picks a free loopback port, runs nginx in the
foreground (``daemon off``) as the current user, and stops it on exit::

    with DemoServer(...) as server, NginxProxy(server.url) as proxy:
        bench against proxy.url and against server.url

Upstream connections are kept alive (HTTP/1.1, ``keepalive``) as a sidecar
would; responses are not buffered, so streamed tokens pass through as they come.
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from perfkit.errors import UsageError
from perfkit.subprocesses import free_port

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def nginx_binary() -> str:
    """Path of the nginx executable (Debian installs it in /usr/sbin)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if not found:
        raise UsageError("nginx not found: install it (`apt-get install -y nginx`)")
    return found


def render_config(prefix: Path, listen_port: int, upstream_host: str, upstream_port: int,
                  user: str | None = None, keepalive: int = 64, worker_processes: int = 1) -> str:
    """The nginx.conf text: everything under ``prefix``, loopback only."""
    user_line = f"user {user};\n" if user else ""
    tmp = prefix / "tmp"
    return f"""{user_line}daemon off;
worker_processes {worker_processes};
pid {prefix / 'nginx.pid'};
error_log {prefix / 'logs' / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp / 'client_body'};
    proxy_temp_path {tmp / 'proxy'};
    fastcgi_temp_path {tmp / 'fastcgi'};
    uwsgi_temp_path {tmp / 'uwsgi'};
    scgi_temp_path {tmp / 'scgi'};
    upstream perfkit_upstream {{
        server {upstream_host}:{upstream_port};
        keepalive {keepalive};
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        location / {{
            proxy_pass http://perfkit_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


class NginxProxy:
    """Context manager running nginx as a reverse proxy to ``upstream_url`` on loopback."""

    def __init__(self, upstream_url: str, port: int | None = None, start_timeout_s: float = 10.0,
                 keepalive: int = 64) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise UsageError(f"{upstream_url}: expected http://HOST:PORT for the proxy's upstream")
        if parts.hostname not in LOOPBACK:
            raise UsageError(f"{upstream_url}: the proxy only fronts loopback services")
        self.upstream_host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        if ":" in self.upstream_host:
            self.upstream_host = f"[{self.upstream_host}]"
        self.upstream_port = parts.port
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.keepalive = keepalive
        self.prefix: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NginxProxy":
        binary = nginx_binary()
        self.prefix = Path(tempfile.mkdtemp(prefix="perfkit-nginx-"))
        (self.prefix / "logs").mkdir()
        (self.prefix / "tmp").mkdir()
        if self.port is None:
            self.port = free_port()
        # As root, nginx would hand its workers to `nobody`; keep them as the current user.
        user = getpass.getuser() if os.geteuid() == 0 else None
        conf = self.prefix / "nginx.conf"
        conf.write_text(render_config(self.prefix, self.port, self.upstream_host, self.upstream_port,
                                      user, self.keepalive), encoding="utf-8")
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "logs" / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                self._cleanup()
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {err.strip()[:400]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on 127.0.0.1:{self.port} within {self.start_timeout_s} s")

    def error_log(self) -> str:
        """nginx's error log so far (for diagnosing a failed run)."""
        if self.prefix is None:
            return ""
        path = self.prefix / "logs" / "error.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGTERM), then kill after 5 s; remove the temp prefix."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr:
            proc.stderr.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None

    def __enter__(self) -> "NginxProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
