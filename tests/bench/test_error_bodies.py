"""Failed answers keep their HTTP status and the first 200 characters of their body, redacted,
for every protocol; the summary's ``error_bodies`` (top 5 per kind), the console and
notebook 01's table show the most common ones."""
from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from factories import make_run
from perfkit import store, summary as contract
from perfkit.bench import errorbodies
from perfkit.bench.cli import print_summary
from perfkit.bench.config import BenchConfig
from perfkit.bench.engine import COLUMNS
from perfkit.bench.payload import PayloadSpec
from perfkit.bench.queries import error_bodies
from perfkit.bench.recorder import to_table
from perfkit.bench.runner import run
from perfkit.bench.schedule import Stage
from perfkit.report.benchmark import error_bodies_table
from perfkit.store import write

SECRET = "sekrit-token-123"


def test_clean_redacts_before_it_cuts():
    raw = (b'{"error": "denied: Authorization: Bearer ' + SECRET.encode() + b' from http://u:' + SECRET.encode()
           + b'@h/x", "pad": "' + b"x" * 3000 + b'"}')
    text = errorbodies.clean(raw)
    assert SECRET not in text and len(text) == errorbodies.BODY_CHARS
    assert text.startswith('{"error": "denied: Authorization: ***')
    assert errorbodies.clean(b"\xff\xfe oops \n") == "\ufffd\ufffd oops"
    cleaner = errorbodies.Cleaner()
    assert cleaner(raw) == text and cleaner(raw) is cleaner(raw)


@pytest.mark.parametrize("body,shown", [
    ('{"error":"Model nope not found"}', "Model nope not found"),                 # MLServer
    ('{"error": {"message": "max_tokens too large", "type": "invalid"}}', "max_tokens too large"),  # OpenAI
    ('{"detail": "Not Found"}', "Not Found"),                                        # FastAPI
    ("upstream\n  connect error", "upstream connect error"),                         # plain text
    ('{"error": "cut', '{"error": "cut'),                                            # cut JSON: as is
    ("", "(empty body)"),
])
def test_message_is_the_human_part(body, shown):
    assert errorbodies.message(body) == shown


def test_lines_read_kind_status_count_message():
    entries = [{"kind": "http_4xx", "status": 404, "body": '{"error":"Model nope not found"}', "count": 1060},
               {"kind": "http_5xx", "status": None, "body": "", "count": 2}]
    assert errorbodies.lines(entries) == ["http_4xx 404 ×1,060: Model nope not found", "http_5xx - ×2: (empty body)"]


def test_to_table_stores_bodies_of_failed_rows_only():
    batch = np.zeros((3, len(COLUMNS)), dtype=np.int64)
    c = {name: i for i, name in enumerate(COLUMNS)}
    batch[:, c["seq"]] = [7, 8, 9]
    batch[:, c["err"]] = [0, 6, 7]          # ok, http_4xx, http_5xx
    batch[:, c["status"]] = [200, 404, 503]
    batch[:, c["intended_ns"]] = batch[:, c["sent_ns"]] = batch[:, c["done_ns"]] = 1
    bodies = [(8, b'{"error":"Model nope not found"}'), (9, b"Authorization: Bearer " + SECRET.encode())]
    table = to_table(batch, 0, 0, 0.0, ["fixed"], np.array([10]), False, bodies)
    assert table["error_body"].to_pylist() == [None, '{"error":"Model nope not found"}', "Authorization: ***"]
    assert "error_body" not in to_table(batch, 0, 0, 0.0, ["fixed"], np.array([10]), False).column_names


def test_summary_keeps_the_five_most_common_bodies_per_kind(tmp_db):
    rows = [("http_4xx", 404, f"body {k}") for k in range(7) for _ in range(k + 1)]
    rows += [("http_5xx", 503, "overloaded")] * 3 + [("timeout", None, None)] * 4 + [(None, 200, None)] * 5
    with store.connect(tmp_db) as con:
        make_run(con, "r1")
        write.insert_requests(con, "r1", pa.table({
            "seq": list(range(len(rows))), "error_kind": [r[0] for r in rows],
            "status_code": pa.array([r[1] for r in rows], pa.int32()), "error_body": [r[2] for r in rows]}))
        got = error_bodies(con, "r1")
    assert [(e["kind"], e["body"], e["count"]) for e in got] == [
        ("http_4xx", "body 6", 7), ("http_4xx", "body 5", 6), ("http_4xx", "body 4", 5), ("http_4xx", "body 3", 4),
        ("http_4xx", "body 2", 3), ("http_5xx", "overloaded", 3)]
    assert got[0]["status"] == 404


def test_contract_declares_error_bodies():
    import fastjsonschema

    entry = {"kind": "http_4xx", "status": 404, "body": "x" * 200, "count": 3}
    definitions = contract.schema()["definitions"]
    assert set(definitions["error_body"]["required"]) == set(contract.ErrorBody.__annotations__) == set(entry)
    check = fastjsonschema.compile({"definitions": definitions, "$ref": "#/definitions/error_body"})
    check(entry)
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        check({**entry, "body": "x" * 201})


def test_console_and_report_show_them():
    entries = [{"kind": "http_4xx", "status": 404, "body": '{"error":"Model nope not found"}', "count": 60}]
    table = error_bodies_table(SimpleNamespace(summary={"error_bodies": entries}))
    assert table.loc["http_4xx", "message"] == "Model nope not found" and table.loc["http_4xx", "requests"] == 60
    assert error_bodies_table(SimpleNamespace(summary=None)).empty
    from test_summary_contract import built

    out = io.StringIO()
    print_summary({**built("http-json"), "error_bodies": entries}, out)
    assert "    http_4xx 404 ×60: Model nope not found\n" in out.getvalue()


_STREAM_OFF = '{"model": "m", "messages": [{"role": "user", "content": "{{text}}"}], "stream": false}'


@pytest.mark.slow
@pytest.mark.parametrize("protocol,template", [("http-json", None), ("kserve-v2", None), ("openai", None),
                                               ("openai", _STREAM_OFF)], ids=["http-json", "kserve-v2",
                                                                              "openai-stream", "openai-plain"])
def test_every_protocol_keeps_status_and_redacted_body(fake, tmp_db, monkeypatch, protocol, template):
    monkeypatch.setenv("PK_ERR_TOKEN", SECRET)
    cfg = BenchConfig(target=f"{fake.url}/refuse/503", protocol=protocol, bearer_env="PK_ERR_TOKEN",
                      db=str(tmp_db), quiet=True, collect=False, min_duration_s=0.1,
                      stages=[Stage("constant", rate_rps=20.0, duration_s=0.5)])
    if template:
        cfg.payload = PayloadSpec(template=template)
    s = run(cfg)
    assert s["errors"] == {"http_5xx": 10}
    [entry] = s["error_bodies"]
    assert (entry["kind"], entry["status"], entry["count"]) == ("http_5xx", 503, 10)
    assert entry["body"].startswith('{"error": "Model nope not found (Authorization: ***')
    assert SECRET not in entry["body"] and len(entry["body"]) == errorbodies.BODY_CHARS
    with store.connect(tmp_db, read_only=True) as con:
        rows = con.execute("SELECT status_code, error_body, count(*) FROM requests GROUP BY ALL").fetchall()
        stored = con.execute("SELECT count(*) FROM requests WHERE error_body LIKE ?", [f"%{SECRET}%"]).fetchone()
    assert rows == [(503, entry["body"], 10)] and stored == (0,)


@pytest.mark.slow
def test_successful_answers_store_no_body(fake, tmp_db):
    s = run(BenchConfig(target=f"{fake.url}/status/200", db=str(tmp_db), quiet=True, collect=False,
                        min_duration_s=0.1, stages=[Stage("constant", rate_rps=20.0, duration_s=0.5)]))
    assert s["ok"] == 10 and "error_bodies" not in s
    with store.connect(tmp_db, read_only=True) as con:
        assert con.execute("SELECT count(error_body) FROM requests").fetchone() == (0,)
