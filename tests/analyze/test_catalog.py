"""The hardware catalog: the shipped file, validation of bad rows (file:line), name matching."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from perfkit.analyze.hardware.catalog import (NUMERIC_COLUMNS, REQUIRED_COLUMNS, catalog_row, load_catalog,
                                              match_hardware)
from perfkit.cli import main
from perfkit.errors import InputError, UsageError
from perfkit.paths import PACKAGED_CATALOG

SHIPPED = PACKAGED_CATALOG
HEADER = ",".join(REQUIRED_COLUMNS)


def _row(name="X1", tdp="100", fp16="50", price="1.5", as_of="2024-01-01", source="datasheet", regex=""):
    return f"{name},Acme,gpu,16,{tdp},{fp16},,{price},,{regex},{source},{as_of}"


def _write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "hw.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_shipped_catalog_has_the_required_devices_with_sources():
    cat = load_catalog(SHIPPED)
    names = set(cat["name"])
    for wanted in ("T4", "L4", "L40S", "A100 80GB", "H100 SXM", "H200", "MI250X", "MI300X",
                   "Gaudi2", "Gaudi3"):
        assert wanted in names
    assert (cat["kind"] == "cpu").any()
    assert cat["source"].str.len().min() > 20 and cat["as_of"].str.match(r"\d{4}-\d{2}").all()
    assert cat["tdp_w"].notna().all() and (cat["tdp_w"] > 0).all()
    # empty prices stay unknown, they are not zero
    assert cat["price_hour_usd"].isna().any()
    assert not (cat["price_hour_usd"] == 0).any()
    # datasheet figures used as dense: A100 FP16 312, H100 SXM 1979 sparse -> 989.5 dense
    row = catalog_row(cat, "A100 80GB")
    assert row["fp16_tflops_dense"] == 312 and row["tdp_w"] == 400
    assert catalog_row(cat, "H100 SXM")["fp16_tflops_dense"] == pytest.approx(1979 / 2)


def test_empty_numeric_cells_are_nan(tmp_path):
    cat = load_catalog(_write(tmp_path, _row(price="")))
    assert math.isnan(cat.loc[0, "price_hour_usd"])
    assert cat.loc[0, "line"] == 2
    assert all(cat[c].dtype == float for c in NUMERIC_COLUMNS)


@pytest.mark.parametrize("rows, header, line, fragment", [
    ([_row()], HEADER.replace(",tdp_w", ""), 1, "missing column(s): tdp_w"),
    ([_row(), _row(name="X2", tdp="lots")], HEADER, 3, "column tdp_w: 'lots' is not a number"),
    ([_row(price="-1")], HEADER, 2, "column price_hour_usd: '-1' is negative"),
    ([_row(), _row(name="x1")], HEADER, 3, "duplicate name 'x1' (first on line 2)"),
    ([_row(as_of="last year")], HEADER, 2, "column as_of"),
    ([_row(source="")], HEADER, 2, "column source is empty"),
    ([_row(fp16="nan")], HEADER, 2, "not a finite number"),
    ([_row(regex="X1[")], HEADER, 2, "column match_regex"),
    ([_row().replace(",gpu,", ",tpu,")], HEADER, 2, "column kind: 'tpu' is not one of"),
    ([_row() + ",extra"], HEADER, 2, "13 cells, expected 12"),
])
def test_bad_rows_name_file_and_line(tmp_path, rows, header, line, fragment):
    path = _write(tmp_path, *rows, header=header)
    with pytest.raises(InputError) as err:
        load_catalog(path)
    assert err.value.line == line
    assert fragment in err.value.problem
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_cli_validate_exits_2_with_one_line(tmp_path, capsys):
    path = _write(tmp_path, _row(), _row(name="X2", fp16="fast"))
    assert main(["hardware", "--validate", "--catalog", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"perfkit hardware: {path}:3: column fp16_tflops_dense: 'fast' is not a number"
    assert main(["hardware", "--validate", "--catalog", str(SHIPPED)]) == 0
    assert "ok, " in capsys.readouterr().out


def test_match_hardware_by_name_and_regex():
    cat = load_catalog(SHIPPED)
    assert match_hardware(cat, "t4") == "T4"
    assert match_hardware(cat, "NVIDIA H200-SXM-141GB") == "H200"
    assert match_hardware(cat, "AMD Instinct MI300X-NPS1-SPX-192GB-750W") == "MI300X"
    assert match_hardware(cat, "NVIDIA A100-SXM-80GB") == "A100 80GB"
    assert match_hardware(cat, "NVIDIA H100-SXM-80GB") == "H100 SXM"
    assert match_hardware(cat, "NVIDIA H100-NVL-94GB") is None      # a different board
    assert match_hardware(cat, "cpu-demo") is None
    with pytest.raises(UsageError):
        catalog_row(cat, "cpu-demo")


def test_default_catalog_is_found_by_perfkit_paths(tmp_path, monkeypatch):
    mine = _write(tmp_path, _row())
    monkeypatch.setenv("PERFKIT_HARDWARE_CSV", str(mine))
    assert load_catalog().attrs["path"] == str(mine)
    monkeypatch.delenv("PERFKIT_HARDWARE_CSV")
    monkeypatch.chdir(tmp_path)                          # no data/hardware.csv here or above
    assert load_catalog().attrs["path"] == str(PACKAGED_CATALOG)
