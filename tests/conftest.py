"""Fixtures shared by every test directory: a temporary store, the demo server, headless Chromium.

Tests that start servers, load generators or browsers are marked ``slow``
(``make test-fast`` leaves them out; ``make test`` and CI run everything).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

# Tests run with --import-mode=importlib (pyproject.toml), so two directories may each
# have a test_stats.py; helper modules next to the tests (tests/demo/demo_http.py, ...)
# are importable because every test directory is on sys.path, and so is tests/ itself
# (tests/factories.py: ``from factories import make_run``).
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))
for _dir in sorted(p for p in Path(__file__).parent.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
    if str(_dir) not in sys.path and _dir.name != "data":
        sys.path.append(str(_dir))

CHROMIUM = os.environ.get("PERFKIT_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    """Path of a fresh DuckDB store under the test's tmp dir (never data/perfkit.duckdb)."""
    return tmp_path / "perfkit.duckdb"


@pytest.fixture(scope="module")
def demo_server(request: pytest.FixtureRequest) -> Iterator["object"]:
    """A real ``perfkit serve-demo`` on a free loopback port, stopped afterwards.

    Default options; parametrize indirectly for others:
    ``@pytest.mark.parametrize("demo_server", [{"error_rate": 0.05}], indirect=True)``.
    """
    from perfkit.demo.launch import DemoServer

    with DemoServer(**dict(getattr(request, "param", None) or {})) as server:
        yield server


def require_tool(path_or_name: str, why: str) -> str:
    """The tool's path; skip the test locally when it is missing, fail under CI (it must be installed)."""
    found = path_or_name if os.path.isabs(path_or_name) and os.access(path_or_name, os.X_OK) \
        else shutil.which(path_or_name)
    if found:
        return found
    message = f"{path_or_name} not installed ({why}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Iterator["object"]:
    """A headless Debian Chromium driven by Playwright (no downloaded browser)."""
    exe = require_tool(CHROMIUM, "headless browser checks of the HTML reports")
    from perfkit.report.browser import open_browser

    with open_browser(exe) as browser:
        yield browser


# --------------------------------------------------------------------------- test-fast and CI guards

_SERVER_PROGRAMS = ("serve-demo", "nginx", "prometheus", "chromium", "fake_target.py", "locust", "wrk")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test fails: CI installs every program the tests drive, so a
    skip there means something is missing, and it must not pass silently."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {reason}"


@pytest.fixture(autouse=True)
def _fast_tests_start_no_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In ``make test-fast`` (PERFKIT_TEST_FAST=1) a test not marked ``slow`` that listens on a
    socket or starts a server or browser program fails, naming the mark it lacks: so the
    fast run really leaves out every test that starts a server or a browser."""
    if not os.environ.get("PERFKIT_TEST_FAST") or request.node.get_closest_marker("slow"):
        return
    import socket
    import subprocess

    def refuse(what: str) -> None:
        raise AssertionError(f"{request.node.nodeid} {what}: mark it @pytest.mark.slow")

    def listen(self: socket.socket, *args: object) -> None:
        refuse("listens on a socket (starts a server)")

    real_popen_init = subprocess.Popen.__init__

    def popen_init(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:  # type: ignore[type-arg]
        argv = args if isinstance(args, (list, tuple)) else [str(args)]
        if any(prog in str(a) for a in argv for prog in _SERVER_PROGRAMS):
            refuse(f"starts {' '.join(map(str, argv))[:120]}")
        real_popen_init(self, args, *rest, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(subprocess.Popen, "__init__", popen_init)
