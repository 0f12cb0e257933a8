"""Real servers for the bench tests: the demo server and a small edge-case server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from perfkit.demo.launch import DemoServer, free_port

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def demo():
    with DemoServer() as server:
        yield server


class FakeTarget:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> "FakeTarget":
        self.proc = subprocess.Popen([sys.executable, str(HERE / "fake_target.py"), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(self.url + "/status/200", data=b"{}", method="POST")
                urllib.request.urlopen(req, timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("fake target did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture
def fake():
    target = FakeTarget().start()
    yield target
    target.stop()
