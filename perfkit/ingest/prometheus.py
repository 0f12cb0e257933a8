"""Prometheus text / OpenMetrics files -> Telemetry (series named as exposed).

Samples that carry no timestamp are stamped with ``at_unix_s``: the ``--at``
time when given, else the moment of the ingest (UTC). Explicit timestamps are
kept (0.0.4 milliseconds and OpenMetrics seconds both become epoch seconds).
"""
from __future__ import annotations

import polars as pl

from perfkit.ingest import promtext
from perfkit.ingest.frames import SAMPLES_SCHEMA, SERIES_SCHEMA, Telemetry


def exposition_to_telemetry(expo: promtext.Exposition, at_unix_s: float) -> Telemetry:
    """Group an exposition's samples into series (name + labels) with type and unit."""
    samples = expo.samples
    if samples.height == 0:
        return Telemetry(pl.DataFrame(schema=SERIES_SCHEMA), pl.DataFrame(schema=SAMPLES_SCHEMA))
    meta = expo.series_meta()
    if expo.distinct_series:  # the parser saw no (name, labels) twice: no grouping needed
        frame = samples.with_row_index("key").with_columns(pl.col("key").cast(pl.Int64))
        series = frame.select("key", "name", "labels")
    else:
        ident = pl.concat_str(pl.col("name"), pl.lit("\x00"), pl.col("labels"))
        frame = samples.with_columns(ident=ident)
        series = (
            frame.select("ident", "name", "labels")
            .unique(subset=["ident"], keep="first", maintain_order=True)
            .with_row_index("key")
            .with_columns(pl.col("key").cast(pl.Int64))
        )
        if series.height == frame.height:
            keys = series.get_column("key")  # every sample its own series: same order
            frame = frame.with_columns(key=keys)
        else:
            frame = frame.join(series.select("ident", "key"), on="ident", how="left",
                               maintain_order="left")
    # a handful of names: map type and unit by name rather than joining row by row
    names = meta.get_column("name")
    series = series.select(
        "key", "name", "labels",
        unit=pl.col("name").replace_strict(names, meta.get_column("unit"), return_dtype=pl.String),
        type=pl.col("name").replace_strict(names, meta.get_column("type"), return_dtype=pl.String),
    )
    out = frame.select(
        "key",
        ts_unix_s=pl.col("ts_unix_s").fill_null(at_unix_s),
        value="value",
    )
    return Telemetry(series, out)


def read(text: str | bytes, path: str, at_unix_s: float,
         openmetrics: bool | None = None) -> Telemetry:
    """Parse a Prometheus text or OpenMetrics file into Telemetry."""
    expo = promtext.parse(text, path, openmetrics=openmetrics)
    return exposition_to_telemetry(expo, at_unix_s)
