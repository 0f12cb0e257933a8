"""Credentials reach the wire and nothing else: the run's stored config, errors, locustfiles."""
from __future__ import annotations

import base64
import json

import pytest

from perfkit.bench.config import BenchConfig, parse_header
from perfkit.bench.locustgen import render
from perfkit.bench.schedule import Stage
from perfkit.bench.wire import encode_requests
from perfkit.errors import UsageError

SECRETS = ("pw-S3CRET", "tok-S3CRET", "key-S3CRET", "sig-S3CRET", "hdr-S3CRET")


def config(target: str, **kw) -> BenchConfig:
    return BenchConfig(target=target, stages=[Stage("constant", duration_s=1.0, rate_rps=5.0)], **kw)


@pytest.mark.parametrize("target", [
    "http://alice:pw-S3CRET@127.0.0.1:8000/x",
    "http://tok-S3CRET@127.0.0.1:8000/x",                       # a bare token as the user
    "http://127.0.0.1:8000/x?api_key=key-S3CRET&n=1",
    "http://127.0.0.1:8000/x?sig=sig-S3CRET&token=tok-S3CRET",
])
def test_public_config_holds_no_secret(target):
    cfg = config(target, headers=[("Ocp-Apim-Subscription-Key", "hdr-S3CRET"), ("X-Auth", "hdr-S3CRET"),
                                  ("api-key", "hdr-S3CRET"), ("X-Team", "perf")])
    text = json.dumps(cfg.public()) + cfg.validate().public_url + repr(cfg.validate())
    assert not [s for s in SECRETS if s in text]
    assert '["X-Team", "perf"]' in text


def test_malformed_input_errors_hold_no_secret():
    with pytest.raises(UsageError) as err:
        config("http://alice:pw-S3CRET@127.0.0.1:99999999/x?token=tok-S3CRET").validate()
    assert "S3CRET" not in str(err.value) and "malformed --target URL" in str(err.value)
    with pytest.raises(UsageError) as err:
        parse_header("Bearer tok-S3CRET")        # the name and the colon forgotten
    assert "S3CRET" not in str(err.value) and "--header must look like" in str(err.value)


def test_userinfo_goes_on_the_wire_as_basic_auth():
    cfg = config("http://alice:p%40ss@127.0.0.1:8000/x")
    wire = encode_requests("POST", cfg.validate(), [b"{}"], cfg.request_headers())[0]
    assert b"Authorization: Basic " + base64.b64encode(b"alice:p@ss") + b"\r\n" in wire
    assert b"alice" not in wire.split(b"\r\n")[0] and b"Host: 127.0.0.1:8000\r\n" in wire


def test_bearer_env_goes_on_the_wire(monkeypatch):
    monkeypatch.setenv("PK_TEST_BEARER", "tok-S3CRET")
    cfg = config("http://127.0.0.1:8000/x", bearer_env="PK_TEST_BEARER")
    wire = encode_requests("POST", cfg.validate(), [b"{}"], cfg.request_headers())[0]
    assert b"Authorization: Bearer tok-S3CRET\r\n" in wire
    assert "tok-S3CRET" not in json.dumps(cfg.public())


def test_credentials_given_twice_are_refused(monkeypatch):
    monkeypatch.setenv("PK_TEST_BEARER", "tok-S3CRET")
    with pytest.raises(UsageError, match="more than once"):
        config("http://alice:pw@127.0.0.1:8000/x", bearer_env="PK_TEST_BEARER").validate()
    with pytest.raises(UsageError, match="more than once"):
        config("http://127.0.0.1:8000/x", bearer_env="PK_TEST_BEARER",
               headers=[("Authorization", "Basic eA==")]).validate()


@pytest.mark.parametrize("kw", [
    {"target": "http://alice:pw-S3CRET@127.0.0.1:8000/x"},
    {"target": "http://127.0.0.1:8000/x?api_key=key-S3CRET"},
    {"target": "http://127.0.0.1:8000/x", "headers": [("X-Api-Key", "key-S3CRET")]},
])
def test_locustfile_never_carries_a_credential(kw):
    target = kw.pop("target")
    with pytest.raises(UsageError, match="locustfile") as err:
        render(config(target, **kw))
    assert "S3CRET" not in str(err.value)


def test_locustfile_reads_the_bearer_at_run_time(monkeypatch):
    monkeypatch.setenv("PK_TEST_BEARER", "tok-S3CRET")
    text = render(config("http://127.0.0.1:8000/x", bearer_env="PK_TEST_BEARER"))
    assert "tok-S3CRET" not in text and "BEARER_ENV = 'PK_TEST_BEARER'" in text
