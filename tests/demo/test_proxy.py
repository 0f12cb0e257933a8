"""perfkit.demo.proxy.NginxProxy: a real nginx in front of a real local HTTP server."""
from __future__ import annotations

import http.server
import os
import shutil
import threading
import time
import urllib.request

import pytest

from perfkit.demo.proxy import NginxProxy, render_config
from perfkit.errors import UsageError


def _need_nginx() -> None:
    if shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK):
        return
    if os.environ.get("CI"):
        pytest.fail("nginx not installed; .ci/run installs it")
    pytest.skip("nginx not installed")


class _Chunked(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"first", b"second"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.3 if part == b"first" else 0)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_proxies_streams_unbuffered_and_cleans_up(upstream):
    _need_nginx()
    with NginxProxy(upstream) as proxy:
        pid, prefix = proxy.process.pid, proxy.prefix
        assert proxy.url.startswith("http://127.0.0.1:") and proxy.url != upstream
        with urllib.request.urlopen(proxy.url + "/x", timeout=10) as resp:
            first = resp.read1(64)     # what has arrived while the upstream sleeps 0.3 s
            rest = resp.read()
        assert (first, rest) == (b"first", b"second")   # chunks pass as they come (no buffering)
        assert "nginx" in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        assert os.stat(f"/proc/{pid}").st_uid == os.getuid()   # runs as the current user
    assert not os.path.exists(f"/proc/{pid}") and not prefix.exists()


def test_rejects_non_loopback_and_bad_urls():
    with pytest.raises(UsageError):
        NginxProxy("http://10.0.0.1:8000")
    with pytest.raises(UsageError):
        NginxProxy("https://127.0.0.1:8000")
    with pytest.raises(UsageError):
        NginxProxy("127.0.0.1:8000")


def test_config_keeps_everything_in_the_prefix(tmp_path):
    conf = render_config(tmp_path, 18080, "127.0.0.1", 8000)
    assert "daemon off;" in conf and "listen 127.0.0.1:18080;" in conf
    assert "server 127.0.0.1:8000;" in conf and "proxy_buffering off;" in conf
    for line in conf.splitlines():
        if line.strip().startswith(("pid ", "error_log ", "client_body_temp_path", "proxy_temp_path")):
            assert str(tmp_path) in line
