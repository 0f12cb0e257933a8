"""A real third-party target: Seldon MLServer 1.7.1 (PyPI) serving a scikit-learn model.

MLServer is installed into its own virtual environment, cached under
``data/cache/mlserver-1.7.1-pyX.Y/`` (``$PERFKIT_CACHE_DIR``) so that later runs reuse it;
``uvloop<0.22`` because MLServer 1.7.1 breaks on uvloop 0.22 (SeldonIO/MLServer#2286).
The model (a small random forest on scikit-learn's digits, 64 features as the
kserve-v2 protocol's default body sends) is trained by that environment's own
scikit-learn, so the pickle and the runtime agree. MLServer serves its Prometheus
metrics on a port of its own, which ``--metrics-url`` points the live collector at.

Checked: an overloaded run stores MLServer's series and ``perfkit diagnose``'s rules
report the queueing finding on MLServer's own queue metric (``parallel_request_queue``)
with numbers; a wrong model name keeps MLServer's answer ("Model nope not found").
"""
from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from perfkit import paths, store
from perfkit.subprocesses import free_port, stop_process_group

pytestmark = pytest.mark.slow

VERSION = "1.7.1"
REQUIREMENTS = [f"mlserver=={VERSION}", f"mlserver-sklearn=={VERSION}", "uvloop<0.22"]
MODEL = "digits"
TRAIN = """
import sys, joblib
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
X, y = load_digits(return_X_y=True)
joblib.dump(RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y), sys.argv[1])
"""


def _install(venv: Path) -> None:
    """A virtual environment at ``venv`` with MLServer (uv when the project venv has it, else pip)."""
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        steps = [[str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)],
                 [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *REQUIREMENTS]]
    else:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS]]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:  # a skip, which CI=true turns into a failure (tests/conftest.py)
            pytest.skip(f"cannot install MLServer {VERSION} from PyPI: {' '.join(argv[:3])} exited "
                        f"{done.returncode}: {done.stderr.strip()[-800:]}")


def ensure_venv() -> Path:
    """MLServer's own virtual environment, built once per version and Python (under a lock, in
    place: its scripts hold absolute paths), then reused. ``.ci/run`` calls it ahead of the tests."""
    home = paths.cache_dir() / f"mlserver-{VERSION}-py{sys.version_info.major}.{sys.version_info.minor}"
    venv = home / "venv"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            _install(venv)
            (home / "installed").write_text(" ".join(REQUIREMENTS) + "\n")
    return venv


@pytest.fixture(scope="module")
def mlserver_venv() -> Path:
    return ensure_venv()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class _MLServer:
    """``mlserver start`` on three free loopback ports (HTTP, gRPC, metrics), one worker."""

    def __init__(self, venv: Path, repo: Path):
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        settings = {"host": "127.0.0.1", "http_port": self.http_port, "grpc_port": self.grpc_port,
                    "metrics_port": self.metrics_port, "parallel_workers": 1, "debug": False}
        (repo / "settings.json").write_text(json.dumps(settings))
        self.log = repo.parent / f"mlserver-{self.http_port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(venv / "bin" / "mlserver"), "start", str(repo)], cwd=repo,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def wait_ready(self, timeout_s: float = 240.0) -> bool:
        """True once the model and the metrics endpoint answer; False if the server exited."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if _get(f"{self.url}/v2/models/{MODEL}/ready") == 200 and _get(self.metrics_url) == 200:
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        stop_process_group(self.proc, grace_s=10.0)


@pytest.fixture(scope="module")
def mlserver(mlserver_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_MLServer]:
    """MLServer serving the digits model; started again on new ports if a port was taken meanwhile."""
    repo = tmp_path_factory.mktemp("mlserver") / "models"
    (repo / MODEL).mkdir(parents=True)
    subprocess.run([str(mlserver_venv / "bin" / "python"), "-c", TRAIN, str(repo / MODEL / "model.joblib")],
                   check=True, timeout=300)
    (repo / MODEL / "model-settings.json").write_text(json.dumps(
        {"name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}))
    for _attempt in range(2):
        server = _MLServer(mlserver_venv, repo)
        if server.wait_ready():
            break
        server.stop()
    else:
        pytest.fail(f"MLServer did not become ready:\n{server.log.read_text(errors='replace')[-3000:]}")
    try:
        yield server
    finally:
        server.stop()


def _bench(db: Path, server: _MLServer, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "perfkit", "bench", "--protocol", "kserve-v2", "--target", server.url,
            "--metrics-url", server.metrics_url, "--db", str(db), "--quiet", *flags]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_overloaded_mlserver_queueing_found_on_its_own_queue_metric(mlserver: _MLServer, tmp_db: Path) -> None:
    done = _bench(tmp_db, mlserver, "--model", MODEL, "--rate", "300", "--duration", "5",
                  "--summary-json", str(tmp_db.with_suffix(".json")))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(tmp_db.with_suffix(".json").read_text())
    assert summary["ok"] == summary["requests"] == 1500
    from perfkit.analyze.rootcause import run_findings

    with store.connect(tmp_db, read_only=True) as con:
        sources = con.execute("SELECT path FROM sources WHERE kind = 'scrape' AND run_id = ?",
                              [summary["run_id"]]).fetchall()
        names = {n for (n,) in con.execute("SELECT DISTINCT s.name FROM series s JOIN sources o "
                                           "ON o.source_id = s.source_id WHERE o.run_id = ?",
                                           [summary["run_id"]]).fetchall()}
        findings = run_findings(con, summary["run_id"])
    assert sources == [(mlserver.metrics_url,)]
    assert {"parallel_request_queue_sum", "parallel_request_queue_count"} <= names, sorted(names)
    queueing = [f for f in findings if f.rule == "queueing"]
    assert queueing, [f.title for f in findings]
    f = queueing[0]
    print(f"finding: {f.title}; {f.numbers}")
    assert "parallel_request_queue" in f.numbers["queue_metric"]
    assert f.numbers["mean_queue_depth"] > 1 and f.numbers["mean_queue_wait_ms"] > 0
    assert f.numbers["mean_latency_ms"] == pytest.approx(summary["latency_ms"]["mean"])


def test_wrong_model_name_keeps_mlservers_answer(mlserver: _MLServer, tmp_db: Path) -> None:
    done = _bench(tmp_db, mlserver, "--model", "nope", "--rate", "20", "--duration", "2",
                  "--summary-json", str(tmp_db.with_suffix(".json")))
    assert done.returncode == 1, done.stdout + done.stderr  # no request succeeded
    summary = json.loads(tmp_db.with_suffix(".json").read_text())
    assert summary["errors"] == {"http_4xx": 40}
    assert summary["error_bodies"] == [{"kind": "http_4xx", "status": 404, "count": 40,
                                        "body": '{"error":"Model nope not found"}'}]
    assert "http_4xx 404 ×40: Model nope not found" in done.stdout
    with store.connect(tmp_db, read_only=True) as con:
        rows = con.execute("SELECT status_code, error_body, count(*) FROM requests WHERE run_id = ? "
                           "GROUP BY ALL", [summary["run_id"]]).fetchall()
    assert rows == [(404, '{"error":"Model nope not found"}', 40)]


if __name__ == "__main__":  # .ci/run: build the environment before the suite runs
    print(f"MLServer {VERSION} environment: {ensure_venv()}")
