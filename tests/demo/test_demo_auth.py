"""``perfkit serve-demo --require-token-env VAR``: every endpoint but /health wants the token."""
from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from perfkit.cli import main
from perfkit.demo.auth import authorized
from perfkit.demo.options import DemoOptions
from perfkit.demo.server import create_app

TOKEN = "t0ken.S3cret"
ENV = "PERFKIT_TEST_DEMO_TOKEN"


def _basic(user: str, password: str | None = None) -> str:
    cred = user if password is None else f"{user}:{password}"
    return "Basic " + base64.b64encode(cred.encode()).decode()


@pytest.mark.parametrize("header, ok", [
    (f"Bearer {TOKEN}", True),
    (f"bearer   {TOKEN} ", True),
    (_basic("anyone", TOKEN), True),
    (_basic(TOKEN, ""), True),         # a bare token as user (http://TOKEN@host)
    (_basic(TOKEN), True),
    (None, False),
    ("", False),
    ("Bearer", False),
    (f"Bearer {TOKEN}x", False),
    (f"Token {TOKEN}", False),
    (_basic(TOKEN, "wrong"), False),   # a password is given: it must be the token
    (_basic("anyone", ""), False),
    ("Basic not-base64!", False),
])
def test_authorized(header, ok):
    assert authorized(header, TOKEN) is ok


class _StubModel:
    """Enough of a classifier for the routes that do not run it."""

    description = "stub"

    def predict(self, rows: Any) -> Any:
        raise AssertionError("no request may reach the model in these tests")


async def _statuses(requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, str]]:
    app = create_app(DemoOptions(require_token_env=ENV).validate(), _StubModel())
    async with TestClient(TestServer(app)) as client:
        out = []
        for method, path, headers in requests:
            async with client.request(method, path, headers=headers, json={}) as resp:
                out.append((resp.status, resp.headers.get("WWW-Authenticate", "")))
        return out


def test_every_endpoint_but_health_answers_401_without_the_token(monkeypatch):
    monkeypatch.setenv(ENV, TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    got = asyncio.run(_statuses([
        ("GET", "/health", {}),
        ("GET", "/metrics", {}),
        ("GET", "/demo/config", {}),
        ("POST", "/api/v1/infer", {}),
        ("GET", "/v2/health/ready", {"Authorization": "Bearer wrong"}),
        ("GET", "/no/such/route", {}),
        ("GET", "/metrics", bearer),
        ("GET", "/demo/config", {"Authorization": _basic("me", TOKEN)}),
    ]))
    assert [status for status, _ in got] == [200, 401, 401, 401, 401, 401, 200, 200]
    assert all("Bearer" in challenge for status, challenge in got if status == 401)


def test_without_the_variable_the_server_refuses_to_start(monkeypatch, capsys):
    monkeypatch.delenv(ENV, raising=False)
    assert main(["serve-demo", "--require-token-env", ENV]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ENV in err and "not set" in err
