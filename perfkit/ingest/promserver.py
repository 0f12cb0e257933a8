"""Run a real Prometheus server (Debian's ``/usr/bin/prometheus``) that scrapes given targets.

    with PrometheusServer(scrape_targets=["http://127.0.0.1:8000"], scrape_interval_s=1) as prom:
        ...  # prom.url -> "http://127.0.0.1:PORT"

The server is our own process: a config and a TSDB in a fresh temporary
directory, listening on a free loopback port, so a Debian service (or another
test's server) never matters. ``start()`` waits for ``/-/ready``; ``stop()``
sends SIGTERM, then SIGKILL after a grace period, and removes the directory.

A target URL's user-info (``http://user:pw@host:port``, or a bare token
``http://TOKEN@host:port``) becomes the job's ``basic_auth``: Prometheus needs
it in clear, so it is written only into the config file (mode 0600, in the
private temporary directory) and never printed; every URL shown is redacted.

For ``make prometheus``::

    python -m perfkit.ingest.promserver --target http://127.0.0.1:8000 [--port 9090]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from perfkit.redact import redact_text, redact_url
from perfkit.subprocesses import free_port, stop_process_group

DEFAULT_BINARY = "/usr/bin/prometheus"


class PrometheusError(RuntimeError):
    """The Prometheus server could not be started (message carries its log tail)."""


def _target(url: str) -> tuple[str, str, str, tuple[str, str] | None]:
    """``http://u:p@h:p/path`` -> (scheme, "h:p", metrics path, (user, password) or None);
    a bare ``h:p`` means http and /metrics."""
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = None
    if not port or not parts.hostname:
        raise ValueError(f"scrape target {redact_url(url)!r}: expected host:port or "
                         "http://host:port[/path]")
    path = parts.path if parts.path not in ("", "/") else "/metrics"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    return parts.scheme, f"{host}:{port}", path, auth


def render_config(scrape_targets: list[str], scrape_interval_s: float) -> str:
    """prometheus.yml text: one job per (scheme, metrics path, credentials), static targets.

    Holds the targets' credentials in clear (``basic_auth``) when their URLs
    carry any: write it to a private file, never print it.
    """
    interval = f"{max(1, int(round(scrape_interval_s * 1000)))}ms"
    jobs: dict[tuple[str, str, tuple[str, str] | None], list[str]] = {}
    for url in scrape_targets:
        scheme, hostport, path, auth = _target(url)
        jobs.setdefault((scheme, path, auth), []).append(hostport)
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}",
             "scrape_configs:"]
    for i, ((scheme, path, auth), hosts) in enumerate(jobs.items()):
        lines += [
            f"  - job_name: perfkit{i if i else ''}",
            f"    scheme: {scheme}",
            f"    metrics_path: {path}",
            f"    scrape_interval: {interval}",
            f"    scrape_timeout: {interval}",
        ]
        if auth is not None:  # JSON strings are YAML strings: any character is safe
            lines += ["    basic_auth:", f"      username: {json.dumps(auth[0])}",
                      f"      password: {json.dumps(auth[1])}"]
        lines += ["    static_configs:",
                  "      - targets: [" + ", ".join(f"'{h}'" for h in hosts) + "]"]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (it may hold credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


class PrometheusServer:
    """A private Prometheus process scraping ``scrape_targets`` (context manager)."""

    def __init__(self, scrape_targets: list[str], scrape_interval_s: float = 1.0, *,
                 port: int | None = None, binary: str = DEFAULT_BINARY,
                 startup_timeout_s: float = 60.0) -> None:
        self.scrape_targets = list(scrape_targets)
        self.scrape_interval_s = scrape_interval_s
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.binary = binary
        self.startup_timeout_s = startup_timeout_s
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @staticmethod
    def available(binary: str = DEFAULT_BINARY) -> bool:
        return Path(binary).is_file() and os.access(binary, os.X_OK)

    @property
    def config_path(self) -> Path | None:
        """The running server's prometheus.yml (mode 0600: it may hold credentials)."""
        return None if self._dir is None else self._dir / "prometheus.yml"

    @property
    def shown_targets(self) -> list[str]:
        """The scrape targets as they may be printed (credentials redacted)."""
        return [redact_url(t) for t in self.scrape_targets]

    def log_tail(self, max_chars: int = 3000) -> str:
        """The end of Prometheus' log, redacted."""
        if self._dir is None or not (self._dir / "prometheus.log").exists():
            return ""
        return redact_text((self._dir / "prometheus.log").read_text(errors="replace")[-max_chars:])

    def start(self) -> "PrometheusServer":
        if not self.available(self.binary):
            raise PrometheusError(f"{self.binary} not found: apt-get install -y prometheus")
        text = render_config(self.scrape_targets, self.scrape_interval_s)
        self._dir = Path(tempfile.mkdtemp(prefix="perfkit-prometheus-"))  # mode 0700
        config = self._dir / "prometheus.yml"
        _write_private(config, text)
        self._log = open(self._dir / "prometheus.log", "wb")
        argv = [self.binary, f"--config.file={config}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--storage.tsdb.retention.time=1d", "--log.level=warn"]
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                raise PrometheusError(f"prometheus exited with code {code}: {tail}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise PrometheusError(f"prometheus not ready after {self.startup_timeout_s:.0f} s: {tail}")

    def wait_for_targets(self, timeout_s: float = 30.0) -> list[dict]:
        """Wait until every scrape target has been scraped successfully once (health "up").

        Prometheus applies discovered targets in batches (about every 5 s), so the
        first scrape comes a few seconds after ``/-/ready``.
        """
        deadline = time.monotonic() + timeout_s
        last: list[dict] = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/api/v1/targets?state=active", timeout=5) as r:
                    last = json.load(r)["data"]["activeTargets"]
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                last = []
            if len(last) >= len(self.scrape_targets) and all(t.get("health") == "up" for t in last):
                return last
            time.sleep(0.25)
        states = redact_text(", ".join(
            f"{t.get('scrapeUrl')}: {t.get('health')} {t.get('lastError', '')}"
            for t in last)) or "no active targets"
        raise PrometheusError(f"targets not up after {timeout_s:.0f} s ({states})")

    def stop(self, grace_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, grace_s)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m perfkit.ingest.promserver",
        description="Run a private Prometheus scraping TARGET until Ctrl-C.")
    ap.add_argument("--target", action="append", required=True,
                    help="URL to scrape (http://127.0.0.1:8000 scrapes /metrics); repeatable")
    ap.add_argument("--interval", type=float, default=1.0, help="scrape interval, seconds")
    ap.add_argument("--port", type=int, default=9090, help="listen port on 127.0.0.1 (0: any free)")
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    args = ap.parse_args(argv)
    try:
        server = PrometheusServer(args.target, args.interval, port=args.port or None,
                                  binary=args.binary).start()
    except (PrometheusError, ValueError) as exc:
        print(f"perfkit prometheus: {exc}", file=sys.stderr)
        return 2
    print(f"Prometheus at {server.url} scraping {', '.join(server.shown_targets)} every "
          f"{args.interval:g} s; Ctrl-C stops it. Pull data with:\n"
          f"  perfkit prometheus --url {server.url} --query 'rate(perfkit_demo_requests_total[30s])'",
          flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and server._proc is not None and server._proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
