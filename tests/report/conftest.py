"""Fixtures of the report tests: a store holding one recorded run with known rows."""
from __future__ import annotations

from pathlib import Path

import pytest
from report_runs import write_run


@pytest.fixture
def run_db(tmp_path: Path) -> tuple[Path, dict]:
    """A fresh store with one recorded run (see :func:`write_run`)."""
    db = tmp_path / "report.duckdb"
    return db, write_run(db)
