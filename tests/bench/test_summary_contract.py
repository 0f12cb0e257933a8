"""The run-summary contract (perfkit.summary): the builder's output validates, drift is caught."""
from __future__ import annotations

import json

import numpy as np
import pytest

from perfkit import summary as contract
from perfkit.bench.summary import summary_from_frame
from perfkit.jsonsafe import json_safe


def built(protocol: str = "openai", n: int = 800) -> dict:
    lat = np.random.default_rng(0).exponential(10.0, n)
    t = np.arange(n) / 100.0
    cols = {"ok": np.ones(n, bool), "conn_err": np.zeros(n, bool), "seq": np.arange(n),
            "latency_ms": lat, "service_ms": 0.9 * lat, "connect_ms": np.full(n, np.nan),
            "intended_unix_s": t, "sent_unix_s": t, "done_unix_s": t + 1.0,
            "ttft_ms": lat / 2, "ttft_intended_ms": lat / 2, "tpot_ms": lat / 10, "itl_ms_max": lat / 5,
            "output_tokens": np.full(n, 10.0), "errors": {}, "gap_ms": lat / 10,
            "tpot_incl_ttft_ms": lat / 10, "itl_request_mean_ms": lat / 10,
            "payload_classes": {"fixed": n}}
    run = {"run_id": "r1", "status": "completed", "protocol": protocol, "t0_unix_s": 0.0,
           "scenario": {"workers": 1, "scheduled": n, "slo_p99_ms": 50.0, "slo": {"ttft_ms": 10.0}}}
    return json_safe(summary_from_frame(cols, run))


@pytest.mark.parametrize("protocol", ["openai", "http-json"])
def test_builder_output_follows_the_contract(protocol):
    s = built(protocol)
    assert contract.validate(s) is s
    assert contract.load(json.dumps(s)) == s


def test_schema_and_typeddict_declare_the_same_fields():
    schema = contract.schema()
    notes = contract.RunSummary.__annotations__
    assert set(schema["properties"]) == set(notes)
    text = {k: getattr(v, "__forward_arg__", str(v)) for k, v in notes.items()}
    required = {k for k, v in text.items() if not v.startswith("NotRequired[")}
    assert set(schema["required"]) == required


def test_drift_is_refused():
    s = built()
    missing = {**s, "latency_ms": {k: v for k, v in s["latency_ms"].items() if k != "p99"}}
    with pytest.raises(contract.SummaryError, match="latency_ms"):
        contract.validate(missing)
    with pytest.raises(contract.SummaryError, match="undeclared"):
        contract.validate({**s, "latency_p99": 1.0})
    with pytest.raises(contract.SummaryError, match="requests"):
        contract.load({**s, "requests": "many"})
    with pytest.raises(contract.SummaryError, match="format_version 2"):
        contract.load({**s, "format_version": 2})


def test_readers_accept_fields_added_later():
    s = {**built(), "added_in_a_later_release": {"x": 1}}
    assert contract.load(s)["requests"] == 800
