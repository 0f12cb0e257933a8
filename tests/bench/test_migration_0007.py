"""Migration 0007: requests gain ttft_intended_ms and connect_ms; older LLM rows get their
TTFT from the intended send computed from what they stored."""
from __future__ import annotations

import pytest

from factories import store_before
from perfkit import store


def test_0007_adds_columns_and_backfills_ttft_from_intended(tmp_path):
    path = tmp_path / "old.duckdb"
    con = store_before(path, 7)
    con.execute("INSERT INTO requests (run_id, seq, intended_unix_s, sent_unix_s, ttft_ms) VALUES "
                "('r', 0, 100.0, 100.25, 40.0), ('r', 1, 101.0, 101.0, NULL), ('r', 2, 102.0, NULL, NULL)")
    con.close()
    with store.connect(path) as con:
        assert store.schema_version(con) >= 7
        rows = con.execute("SELECT seq, ttft_intended_ms, connect_ms FROM requests ORDER BY seq").fetchall()
    assert rows[0][1] == pytest.approx(290.0) and rows[0][2] is None
    assert rows[1][1] is None and rows[2][1] is None
