"""MLPerf results trees: the importer, the reference table, and the round's official table reproduced."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from perfkit.analyze.hardware.reference import build_reference, load_reference, reproduce_official
from perfkit.cli import main
from perfkit.ingest.mlperf_results import normalize_accelerator

REPO = Path(__file__).resolve().parents[2]
SUBSET = REPO / "tests" / "data" / "mlperf-v4.1-subset"
FULL = REPO / ".." / "shared" / "data" / "mlperf-inference-v4.1"
README = REPO / "tests" / "data" / "README.md"
H200_SERVER = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/Server"
UNTETHER = "closed/UntetherAI/results/h13_u3_slim/resnet50"


def _unexplained(checked) -> list[str]:
    """Rows not reproduced whose location tests/data/README.md does not explain."""
    notes = README.read_text(encoding="utf-8")
    return [loc for loc in checked.loc[~checked["reproduced"], "location"] if loc not in notes]


def test_subset_reproduces_its_official_rows():
    frame, problems = build_reference(SUBSET, "v4.1")
    official = json.loads((SUBSET / "summary_results.json").read_text())
    checked = reproduce_official(frame, official)
    assert problems == [] and len(frame) == len(official) == 13
    assert checked["reproduced"].sum() == 12
    assert _unexplained(checked) == []
    h200 = frame.set_index("location").loc[H200_SERVER]
    assert h200["accelerator"] == "H200" and h200["accelerators"] == 8 and h200["units"] == "Tokens/s"
    assert h200["result_per_accelerator"] == pytest.approx(h200["result"] / 8)
    assert h200["ttft_p99_ms"] < h200["ttft_bound_ms"] == 2000 and h200["tpot_bound_ms"] == 200
    single = frame.set_index("location").loc[f"{UNTETHER}/singlestream"]
    assert single["energy_mj_per_query"] > 0 and single["units"] == "Latency (ms)"


@pytest.mark.skipif(not FULL.is_dir(), reason="the shared MLPerf v4.1 tree is not beside the clone")
def test_full_tree_reproduces_the_official_table(capsys):
    frame, problems = build_reference(FULL)
    official = json.loads((FULL / "summary_results.json").read_text())
    checked = reproduce_official(frame, official)
    n = int(checked["reproduced"].sum())
    with capsys.disabled():
        print(f"\n{n} of {len(official)} rows reproduced")
    assert problems == [] and len(official) == 937
    assert n == 931
    assert _unexplained(checked) == []


def test_ingest_tree_stores_one_run_per_performance_run(tmp_db, capsys):
    assert main(["ingest", "mlperf-results", str(SUBSET), "--db", str(tmp_db)]) == 0
    assert "13 runs stored, 0 already there, 0 skipped" in capsys.readouterr().out
    con = duckdb.connect(str(tmp_db), read_only=True)
    rows = con.execute("SELECT labels, summary, tool FROM runs").fetchall()
    con.close()
    runs = {json.loads(labels)["location"]: (json.loads(labels), json.loads(summary), tool)
            for labels, summary, tool in rows}
    labels, summary, tool = runs[H200_SERVER]
    assert tool == "mlperf" and labels["submitter"] == "NVIDIA" and labels["accelerator"] == "H200"
    assert labels["accelerators"] == "8" and labels["scenario"] == "Server" and labels["division"] == "closed"
    assert summary["output_tokens_per_s"] == summary["result"] and summary["target_qps"] > 0
    assert summary["tpot_ms"]["p99"] < summary["tpot_bound_ms"]
    offline = runs[f"{UNTETHER}/offline"][1]
    assert offline["power_w"] > 0 and offline["power_samples"] > 100
    # same bytes again: nothing new
    assert main(["ingest", "mlperf", str(SUBSET), "--db", str(tmp_db)]) == 0
    assert "0 runs stored, 13 already there" in capsys.readouterr().out


def test_bad_runs_are_skipped_with_one_line_each(tmp_path, tmp_db, capsys):
    tree = tmp_path / "mlperf-v4.1"
    shutil.copytree(SUBSET, tree)
    summary = tree / H200_SERVER / "performance" / "run_1" / "mlperf_log_summary.txt"
    summary.write_text(summary.read_text().split("Completed samples")[0])  # truncated
    (tree / UNTETHER / "offline" / "performance" / "run_1" / "mlperf_log_detail.txt").unlink()
    odd = tree / "closed" / "X" / "results" / "sys" / "model" / "performance"
    odd.mkdir(parents=True)
    (odd / "mlperf_log_summary.txt").write_text("x")
    assert main(["ingest", "mlperf-results", str(tree), "--db", str(tmp_db)]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert any(str(summary) in line and "truncated" in line for line in lines)
    assert any("offline" in line and "power run without its detail log" in line for line in lines)
    assert any("unknown layout" in line for line in lines)
    assert "11 runs stored, 0 already there, 3 skipped" in out


def test_reference_command_writes_csv_and_parquet(tmp_path):
    for name in ("ref.csv", "ref.parquet"):
        assert main(["reference", "mlperf", str(SUBSET), "--out", str(tmp_path / name)]) == 0
        table = load_reference(tmp_path / name)
        assert len(table) == 13 and {"power_w", "energy_mj_per_query", "ttft_p99_ms", "tpot_p99_ms"} <= set(table)
    assert main(["reference", "mlperf", str(SUBSET), "--out", str(tmp_path / "ref.txt")]) == 2


def test_shipped_reference_table_is_the_full_round():
    table = load_reference()
    assert len(table) == 937 and table["location"].is_unique
    assert table["power_w"].notna().sum() == 31 and table["energy_mj_per_query"].notna().sum() == 2


@pytest.mark.parametrize("name, normal", [
    ("NVIDIA H100-SXM-80GB", "H100 SXM"), ("NVIDIA H200-SXM-141GB-CTS", "H200"),
    ("NVIDIA GH200 Grace Hopper Superchip 96GB", "GH200 96GB"), ("Tesla T4", "T4"),
    ("AMD Instinct MI300X-NPS1-SPX-192GB-750W", "MI300X"), ("Some New Chip", "Some New Chip"), ("", "")])
def test_accelerator_names_normalised_to_the_catalog(name, normal):
    assert normalize_accelerator(name) == normal
