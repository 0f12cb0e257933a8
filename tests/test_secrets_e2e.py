"""No secret reaches the database, the summary JSON, the console, a report or a locustfile,
and the credentials still work on the wire (a protected demo server answers 401 otherwise).

Secrets are generated (hypothesis) and put in every position a user can put one:
a secret query parameter of the target, a secret header, the URL's user-info
(``user:password@`` and a bare token ``token@``) and a bearer token from the
environment. Each store is then *queried*: every text and JSON column of every
table, not the raw file bytes (compressed storage can hide a leak from a grep).
"""
from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfkit import store
from perfkit.demo.launch import DemoServer

pytestmark = pytest.mark.slow

TOKEN_ENV = "PK_SECRET_TEST_TOKEN"
PARAMS = ("api_key", "token", "key", "apikey", "access_token", "auth", "signature", "sig", "password",
          "secret", "API_KEY", "Token")
HEADERS = ("X-Api-Key", "api-key", "Ocp-Apim-Subscription-Key", "X-Auth", "X-Auth-Token")
secret = st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=24).map(lambda s: "Zq" + s)


@pytest.fixture(scope="module")
def protected_demo():
    token = "Zq" + os.urandom(12).hex()
    env = {**os.environ, TOKEN_ENV: token}
    with DemoServer(require_token_env=TOKEN_ENV, env=env) as server:
        yield server, token


def bench(db: Path, target: str, out: Path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfkit", "bench", "--target", target, "--rate", "20", "--duration", "1",
         "--db", str(db), "--summary-json", str(out), *extra],
        capture_output=True, text=True, timeout=120, env=env)


def leaks(db: Path, secrets: list[str]) -> list[str]:
    """``table.column`` of every text or JSON value in the store that contains a secret."""
    found = []
    with store.connect(db, read_only=True) as con:
        cols = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') AND table_schema = 'main'").fetchall()
        for table, column in cols:
            for s in secrets:
                n = con.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                                [f"%{s}%"]).fetchone()[0]
                if n:
                    found.append(f"{table}.{column} holds {s[:6]}...")
    return found


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=secret, query=secret, header=secret, param=st.sampled_from(PARAMS), header_name=st.sampled_from(HEADERS))
def test_generated_secrets_reach_no_sink_and_credentials_work(protected_demo, tmp_path_factory, user, query,
                                                             header, param, header_name):
    demo, token = protected_demo
    tmp = tmp_path_factory.mktemp("secrets")
    db = tmp / "s.duckdb"
    env = {**os.environ, TOKEN_ENV: token}
    host = demo.url.split("://", 1)[1]
    runs = [  # (target, extra flags): each sends the token a different way
        (f"http://{host}/api/v1/infer?{param}={query}&n=1", ["--bearer-env", TOKEN_ENV,
                                                           "--header", f"{header_name}: {header}"]),
        (f"http://{user}:{token}@{host}/api/v1/infer", []),
        (f"http://{token}@{host}/api/v1/infer?{param}={query}", []),
    ]
    secrets = [user, query, header, token]
    console = ""
    for i, (target, extra) in enumerate(runs):
        res = bench(db, target, tmp / f"s{i}.json", *extra, env=env)
        console += res.stdout + res.stderr
        assert res.returncode == 0, res.stderr[-800:]
        summary = json.loads((tmp / f"s{i}.json").read_text())
        assert summary["ok"] == summary["requests"] > 0, "credentials did not reach the server (401s)"
        text = json.dumps(summary)
        assert not [s for s in secrets if s in text], f"summary JSON of run {i} holds a secret"
    assert not [s for s in secrets if s in console], "a secret was printed"
    assert leaks(db, secrets) == []
    with store.connect(db, read_only=True) as con:
        scraped = con.execute(
            "SELECT count(*) FROM sources so JOIN series se USING (source_id) JOIN samples sa USING (series_id) "
            "WHERE so.kind = 'scrape'").fetchone()[0]
    assert scraped > 0, "the live /metrics scrape of the protected server stored nothing (credentials lost)"

    # a locustfile: a secret target is refused without echoing it; a bearer token is never written
    scenario = tmp / "s.toml"
    scenario.write_text(f'target = "http://{host}/api/v1/infer?{param}={query}"\n[[stage]]\nrate = 5\nduration = 1\n')
    res = subprocess.run([sys.executable, "-m", "perfkit", "locustfile", str(scenario), "-o", str(tmp / "l.py")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 2 and query not in res.stdout + res.stderr
    scenario.write_text(f'target = "http://{host}/api/v1/infer"\nbearer_env = "{TOKEN_ENV}"\n'
                        f'[[stage]]\nrate = 5\nduration = 1\n')
    res = subprocess.run([sys.executable, "-m", "perfkit", "locustfile", str(scenario), "-o", str(tmp / "l.py")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert token not in (tmp / "l.py").read_text()


def test_report_of_a_secret_target_shows_no_secret(protected_demo, tmp_path):
    demo, token = protected_demo
    env = {**os.environ, TOKEN_ENV: token}
    host = demo.url.split("://", 1)[1]
    db = tmp_path / "r.duckdb"
    res = bench(db, f"http://alice:{token}@{host}/api/v1/infer?api_key=ZqQUERYSECRET", tmp_path / "s.json", env=env)
    assert res.returncode == 0, res.stderr[-800:]
    out = tmp_path / "reports"
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "01", "-p", "run_id", "latest",
                          "--db", str(db), "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-800:]
    pages = list(out.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert token not in html and "ZqQUERYSECRET" not in html, page.name
    assert token not in res.stdout + res.stderr
