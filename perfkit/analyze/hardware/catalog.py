"""The hardware catalog (``perfkit/data/hardware.csv``): loading, validation and look-up.

The catalog is a file that people edit by hand, so it is checked row by row on
load: a missing column, a number that is not a number or is negative, an empty
name or source, a malformed date or regex, or a duplicate name stops the load
with ``InputError(path, line, problem)`` (the CLI turns that into exit 2).
Empty numeric cells are allowed and become NaN: a price that has no public
figure is left empty, never invented, and every computation downstream must
cope with NaN.
"""
from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from perfkit.errors import InputError, UsageError
from perfkit.paths import catalog_path

#: Numeric columns, with their unit in the name. Empty cells become NaN.
NUMERIC_COLUMNS = (
    "memory_gib",          # device memory, GiB (vendors' "GB" for HBM/GDDR parts)
    "tdp_w",               # thermal design / max board power, W
    "fp16_tflops_dense",   # peak dense FP16/BF16 tensor throughput, TFLOPS (no sparsity)
    "int8_tops_dense",     # peak dense INT8 tensor throughput, TOPS (no sparsity)
    "price_hour_usd",      # public hourly rent per device, USD
    "price_purchase_usd",  # public purchase price per device, USD
)
#: Text columns; ``name``, ``source`` and ``as_of`` must not be empty.
TEXT_COLUMNS = ("name", "vendor", "kind", "match_regex", "source", "as_of")
REQUIRED_COLUMNS = ("name", "vendor", "kind", *NUMERIC_COLUMNS, "match_regex", "source", "as_of")
KINDS = ("gpu", "accelerator", "cpu")
#: The columns a listing shows (``perfkit hardware``), name first.
LISTING_COLUMNS = ("name", "vendor", "kind", "memory_gib", "tdp_w", "fp16_tflops_dense", "int8_tops_dense",
                   "price_hour_usd", "price_purchase_usd", "as_of")
_DATE_RE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def _parse_number(text: str, column: str, path: str, line: int) -> float:
    text = text.strip()
    if text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, line, f"column {column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(path, line, f"column {column}: {text!r} is not a finite number")
    if value < 0:
        raise InputError(path, line, f"column {column}: {text!r} is negative")
    return value


def load_catalog(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read and validate the catalog; one row per device, NaN for empty numbers.

    ``path`` defaults to :func:`perfkit.paths.catalog_path`. Raises
    :class:`InputError` naming the file and line of the first bad row.
    """
    path = Path(path) if path else catalog_path()
    spath = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(spath, None, f"cannot read the hardware catalog: {exc.strerror}") from None
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(spath, 1, "empty file: expected a header row") from None
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(spath, 1, f"missing column(s): {', '.join(missing)}")
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise InputError(spath, 1, f"duplicate column(s): {', '.join(dupes)}")
        index = {name: header.index(name) for name in header}
        line = reader.line_num
        for cells in reader:
            start_line, line = line + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InputError(spath, start_line,
                                 f"{len(cells)} cells, expected {len(header)} (one per column)")
            row: dict[str, Any] = {}
            for column in TEXT_COLUMNS:
                row[column] = cells[index[column]].strip()
            for column in NUMERIC_COLUMNS:
                row[column] = _parse_number(cells[index[column]], column, spath, start_line)
            for column in ("name", "source", "as_of"):
                if not row[column]:
                    raise InputError(spath, start_line, f"column {column} is empty")
            if row["kind"] not in KINDS:
                raise InputError(spath, start_line,
                                 f"column kind: {row['kind']!r} is not one of {', '.join(KINDS)}")
            if not _DATE_RE.match(row["as_of"]):
                raise InputError(spath, start_line,
                                 f"column as_of: {row['as_of']!r} is not a date (YYYY-MM-DD)")
            if row["match_regex"]:
                try:
                    re.compile(row["match_regex"])
                except re.error as exc:
                    raise InputError(spath, start_line, f"column match_regex: {exc}") from None
            key = row["name"].casefold()
            if key in seen:
                raise InputError(spath, start_line,
                                 f"duplicate name {row['name']!r} (first on line {seen[key]})")
            seen[key] = start_line
            row["line"] = start_line
            rows.append(row)
    if not rows:
        raise InputError(spath, None, "the catalog has a header but no rows")
    frame = pd.DataFrame(rows, columns=[*REQUIRED_COLUMNS, "line"])
    for column in NUMERIC_COLUMNS:
        frame[column] = frame[column].astype(float)
    frame.attrs["path"] = spath
    return frame


def catalog_view(catalog: pd.DataFrame, columns: tuple[str, ...] = LISTING_COLUMNS) -> pd.DataFrame:
    """The catalog cut to ``columns`` (name first), indexed by device name."""
    return catalog[list(columns)].set_index("name")


def match_hardware(catalog: pd.DataFrame, text: object) -> str | None:
    """The catalog name that ``text`` (a run label, an MLPerf ``Accelerator``) refers to.

    An exact, case-insensitive name match wins; otherwise the first row whose
    ``match_regex`` is found in ``text`` (case-insensitive). ``None`` if nothing matches.
    """
    if text is None:
        return None
    wanted = str(text).strip()
    by_name = {n.casefold(): n for n in catalog["name"]}
    if wanted.casefold() in by_name:
        return by_name[wanted.casefold()]
    for name, pattern in zip(catalog["name"], catalog["match_regex"]):
        if pattern and re.search(pattern, wanted, flags=re.IGNORECASE):
            return name
    return None


#: How every figure derived from datasheet peak rates is labelled: an estimate, never a
#: star, a headline or a fleet input unless asked for (``use_estimates`` / ``--use-estimates``).
ESTIMATE_BASIS = "estimate (datasheet TFLOPS scaling)"


def is_estimate(basis: "pd.Series") -> "pd.Series":
    """True where a basis text names the datasheet estimate tier (:data:`ESTIMATE_BASIS`)."""
    return basis.astype(str).str.startswith("estimate")


RATE_COLUMNS = {"fp16": "fp16_tflops_dense", "int8": "int8_tops_dense"}


def rate_column(precision: str) -> str:
    """The catalog column of a precision's peak dense rate (``fp16`` or ``int8``)."""
    try:
        return RATE_COLUMNS[precision]
    except KeyError:
        raise UsageError(f"precision must be one of {', '.join(RATE_COLUMNS)}, got {precision!r}") from None


def catalog_row(catalog: pd.DataFrame, name: str) -> pd.Series:
    """One device's row by name or alias; :class:`UsageError` if it is not in the catalog."""
    found = match_hardware(catalog, name)
    if found is None:
        known = ", ".join(catalog["name"])
        raise UsageError(f"hardware {name!r} is not in the catalog ({known})")
    return catalog.loc[catalog["name"] == found].iloc[0]
