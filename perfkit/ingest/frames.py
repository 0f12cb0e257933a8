"""The in-memory shape every importer and collector produces before writing.

A :class:`Telemetry` holds two polars frames: ``series`` (one row per distinct
metric name + label set, with ``key`` 0..n-1, ``unit`` and ``type``) and
``samples`` (``key``, ``ts_unix_s``, ``value``), plus an optional ``run`` row
for tools whose files describe a whole run (Locust, MLPerf). Keeping them as
frames lets the writer bulk-insert through Arrow instead of row-by-row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

SERIES_SCHEMA = {"key": pl.Int64, "name": pl.String, "labels": pl.String,
                 "unit": pl.String, "type": pl.String}
SAMPLES_SCHEMA = {"key": pl.Int64, "ts_unix_s": pl.Float64, "value": pl.Float64}


@dataclass
class Telemetry:
    """Series and samples ready to store; ``run`` is a ``runs`` row (dict) or None."""

    series: pl.DataFrame
    samples: pl.DataFrame
    run: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return self.samples.height

    def long(self) -> pl.DataFrame:
        """One row per sample with its series' name/labels/unit/type (for tests, notebooks)."""
        return self.samples.join(self.series, on="key", how="left").select(
            "name", "labels", "unit", "type", "ts_unix_s", "value")


def labels_json(labels: dict[str, Any]) -> str:
    """Labels as the compact JSON text the store keeps (key order as given)."""
    return json.dumps({k: str(v) for k, v in labels.items()}, separators=(",", ":"),
                      ensure_ascii=False)


def empty() -> Telemetry:
    return Telemetry(pl.DataFrame(schema=SERIES_SCHEMA), pl.DataFrame(schema=SAMPLES_SCHEMA))


LONG_SCHEMA = {"name": pl.String, "labels": pl.String, "unit": pl.String, "type": pl.String,
               "ts_unix_s": pl.Float64, "value": pl.Float64}


def from_rows(rows: list[tuple]) -> Telemetry:
    """Series/samples from (name, labels_json, unit, type, ts_unix_s, value) tuples."""
    return from_long(pl.DataFrame(rows, schema=LONG_SCHEMA, orient="row"))


def from_long(frame: pl.DataFrame) -> Telemetry:
    """Build series/samples from a long frame (name, labels, unit, type, ts_unix_s, value).

    A series is a distinct (name, labels); its unit and type are taken from its
    first row.
    """
    if frame.height == 0:
        return empty()
    frame = frame.with_columns(
        pl.col("ts_unix_s").cast(pl.Float64), pl.col("value").cast(pl.Float64),
        pl.col("unit").cast(pl.String), pl.col("type").cast(pl.String),
    )
    series = (
        frame.select("name", "labels", "unit", "type")
        .unique(subset=["name", "labels"], keep="first", maintain_order=True)
        .with_row_index("key")
        .with_columns(pl.col("key").cast(pl.Int64))
    )
    samples = frame.join(series.select("key", "name", "labels"), on=["name", "labels"],
                         how="left", maintain_order="left").select("key", "ts_unix_s", "value")
    return Telemetry(series.select(list(SERIES_SCHEMA)), samples)


def concat(parts: list[Telemetry]) -> Telemetry:
    """Merge several Telemetry objects, re-keying so series stay distinct."""
    longs = [p.long() for p in parts if p.series.height]
    if not longs:
        return empty()
    merged = from_long(pl.concat(longs, how="vertical_relaxed"))
    merged.run = next((p.run for p in parts if p.run), None)
    return merged
