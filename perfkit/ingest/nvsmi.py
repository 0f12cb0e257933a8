"""nvidia-smi logs -> Telemetry: ``--query-gpu ... --format=csv[,nounits]`` and ``dmon``.

CSV columns are resolved by header name (sets vary with driver and flags); the
unit is read from the header (``memory.used [MiB]``) so ``nounits`` and unit-ful
values read the same; ``[N/A]``, ``[Not Supported]`` and similar bracketed cells
are absent samples. ``clocks_throttle_reasons.*`` and its newer name
``clocks_event_reasons.*`` both map to ``gpu_clock_event_reasons``.

``dmon`` output has a header row and a units row (``# gpu pwr gtemp`` /
``# Idx W C``), repeated now and then; ``-`` cells are absent samples.

Timestamps: nvidia-smi prints local time without a zone; perfkit reads them as
UTC (run nvidia-smi with ``TZ=UTC`` to make that exact). dmon without ``-o DT``
prints no time at all: rows are then placed at ``at_unix_s`` + one second per
sampling round (dmon's default interval; stated in the source's notes).
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone

from perfkit import names as N
from perfkit.errors import InputError
from perfkit.ingest.frames import Telemetry, from_rows, labels_json

MIB = 1024.0 * 1024.0
UNIT_FACTORS = {  # header unit -> (perfkit unit, factor)
    "MiB": ("bytes", MIB), "KiB": ("bytes", 1024.0), "GiB": ("bytes", MIB * 1024.0),
    "MB": ("bytes", MIB), "%": ("percent", 1.0), "W": ("W", 1.0), "MHz": ("MHz", 1.0),
    "C": ("celsius", 1.0), "J": ("J", 1.0), "mJ": ("J", 1e-3), "MB/s": ("bytes/s", MIB),
    "KB/s": ("bytes/s", 1024.0), "RPM": ("rpm", 1.0), "V": ("V", 1.0), "mV": ("V", 1e-3),
}
# query field (without the unit) -> (perfkit name, unit if the header gives none)
QUERY_FIELDS: dict[str, tuple[str, str | None]] = {
    "utilization.gpu": (N.GPU_UTILIZATION, "percent"),
    "utilization.memory": (N.GPU_MEMORY_UTILIZATION, "percent"),
    "utilization.encoder": (N.GPU_ENCODER_UTILIZATION, "percent"),
    "utilization.decoder": (N.GPU_DECODER_UTILIZATION, "percent"),
    "memory.total": (N.GPU_MEMORY_TOTAL, "bytes"),
    "memory.used": (N.GPU_MEMORY_USED, "bytes"),
    "memory.free": (N.GPU_MEMORY_FREE, "bytes"),
    "memory.reserved": (N.GPU_MEMORY_RESERVED, "bytes"),
    "power.draw": (N.GPU_POWER, "W"),
    "power.draw.instant": (N.GPU_POWER, "W"),
    "power.draw.average": (N.GPU_POWER_AVERAGE, "W"),
    "power.limit": (N.GPU_POWER_LIMIT, "W"),
    "enforced.power.limit": (N.GPU_POWER_LIMIT_ENFORCED, "W"),
    "temperature.gpu": (N.GPU_TEMPERATURE, "celsius"),
    "temperature.memory": (N.GPU_MEMORY_TEMPERATURE, "celsius"),
    "clocks.sm": (N.GPU_SM_CLOCK, "MHz"),
    "clocks.current.sm": (N.GPU_SM_CLOCK, "MHz"),
    "clocks.mem": (N.GPU_MEMORY_CLOCK, "MHz"),
    "clocks.current.memory": (N.GPU_MEMORY_CLOCK, "MHz"),
    "clocks.gr": (N.GPU_GRAPHICS_CLOCK, "MHz"),
    "clocks.current.graphics": (N.GPU_GRAPHICS_CLOCK, "MHz"),
    "fan.speed": (N.GPU_FAN_SPEED, "percent"),
    "pstate": (N.GPU_PSTATE, "state"),
    "clocks_throttle_reasons.active": (N.GPU_CLOCK_EVENT_REASONS, "bitmask"),
    "clocks_event_reasons.active": (N.GPU_CLOCK_EVENT_REASONS, "bitmask"),
    "pcie.link.gen.current": (N.GPU_PCIE_LINK_GEN, "generation"),
    "pcie.link.width.current": (N.GPU_PCIE_LINK_WIDTH, "lanes"),
}
LABEL_FIELDS = {"index": "gpu", "uuid": "uuid", "gpu_uuid": "uuid", "name": "model",
                "gpu_name": "model", "pci.bus_id": "pci_bus_id", "gpu_bus_id": "pci_bus_id",
                "serial": "serial", "driver_version": "driver_version"}
DMON_FIELDS: dict[str, tuple[str, str, float]] = {
    "pwr": (N.GPU_POWER, "W", 1.0), "gtemp": (N.GPU_TEMPERATURE, "celsius", 1.0),
    "mtemp": (N.GPU_MEMORY_TEMPERATURE, "celsius", 1.0),
    "sm": (N.GPU_UTILIZATION, "percent", 1.0),
    "mem": (N.GPU_MEMORY_UTILIZATION, "percent", 1.0),
    "enc": (N.GPU_ENCODER_UTILIZATION, "percent", 1.0),
    "dec": (N.GPU_DECODER_UTILIZATION, "percent", 1.0),
    "mclk": (N.GPU_MEMORY_CLOCK, "MHz", 1.0), "pclk": (N.GPU_SM_CLOCK, "MHz", 1.0),
    "fb": (N.GPU_MEMORY_USED, "bytes", MIB), "bar1": (N.GPU_BAR1_USED, "bytes", MIB),
    "rxpci": (N.GPU_PCIE_RX, "bytes/s", MIB),
    "txpci": (N.GPU_PCIE_TX, "bytes/s", MIB),
    "pviol": (N.GPU_POWER_VIOLATION, "percent", 1.0),
    "tviol": (N.GPU_THERMAL_VIOLATION, "bool", 1.0),
    "sbecc": (N.GPU_ECC_SINGLE_BIT, "count", 1.0),
    "dbecc": (N.GPU_ECC_DOUBLE_BIT, "count", 1.0),
    "pci": (N.GPU_PCIE_REPLAYS, "count", 1.0),
}
_HEADER_UNIT = re.compile(r"^(?P<field>[^\[]+?)\s*(?:\[(?P<unit>[^\]]+)\])?$")
_TS_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")


def parse_timestamp(text: str) -> float:
    """``2020/11/12 13:48:11.412`` (read as UTC) -> epoch seconds."""
    for fmt in _TS_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised timestamp {text!r} (expected 2020/11/12 13:48:11.412)")


def _number(cell: str, field: str) -> float | None:
    """A cell's number, None for [N/A]-style cells; units after the number are ignored."""
    cell = cell.strip()
    if not cell or cell.startswith("[") or cell in ("N/A", "-"):
        return None
    if field == "pstate" and cell.upper().startswith("P") and cell[1:].isdigit():
        return float(cell[1:])
    if cell.lower().startswith("0x"):
        return float(int(cell, 16))
    if cell in ("Enabled", "Active", "Yes"):
        return 1.0
    if cell in ("Disabled", "Not Active", "No"):
        return 0.0
    token = cell.split()[0]
    return float(token)


def read(text: str, path: str, at_unix_s: float | None = None) -> Telemetry:
    """Read either format (dmon when the first line is a ``#`` header)."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("#"):
        return read_dmon(text, path, at_unix_s)
    return read_query_csv(text, path)


def read_query_csv(text: str, path: str) -> Telemetry:
    """``nvidia-smi --query-gpu=... --format=csv[,nounits]``."""
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    if not rows:
        raise InputError(path, 1, "empty file")
    header = [h.strip() for h in rows[0]]
    cols = []
    for h in header:
        m = _HEADER_UNIT.match(h)
        if not m:
            raise InputError(path, 1, f"unreadable column header {h!r}")
        cols.append((m.group("field").strip(), m.group("unit")))
    fields = [c[0] for c in cols]
    if "timestamp" not in fields:
        if all(_looks_numeric(h) for h in header):
            raise InputError(path, 1, "no header row: record with --format=csv (not noheader) "
                                      "so columns can be resolved by name")
        raise InputError(path, 1, "no 'timestamp' column: add timestamp to --query-gpu")
    ts_col = fields.index("timestamp")
    label_cols = [(i, LABEL_FIELDS[f]) for i, f in enumerate(fields) if f in LABEL_FIELDS]
    metric_cols = []
    for i, (field, unit) in enumerate(cols):
        if field in LABEL_FIELDS or field == "timestamp":
            continue
        name, default_unit = QUERY_FIELDS.get(field, ("gpu_" + re.sub(r"[^a-z0-9]+", "_", field.lower()), None))
        out_unit, factor = UNIT_FACTORS.get(unit or "", (default_unit, 1.0))
        if field in ("memory.total", "memory.used", "memory.free", "memory.reserved") and unit is None:
            out_unit, factor = "bytes", MIB  # nvidia-smi reports memory in MiB
        metric_cols.append((i, field, name, out_unit, factor))
    long = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise InputError(path, lineno, f"{len(row)} fields, the header has {len(header)}")
        try:
            ts = parse_timestamp(row[ts_col])
        except ValueError as exc:
            raise InputError(path, lineno, str(exc)) from None
        labels = labels_json({lab: row[i].strip() for i, lab in label_cols})
        for i, field, name, unit, factor in metric_cols:
            try:
                value = _number(row[i], field)
            except ValueError:
                raise InputError(path, lineno, f"column {header[i]!r}: not a number: {row[i].strip()!r}") from None
            if value is not None:
                long.append((name, labels, unit, "gauge", ts, value * factor))
    return from_rows(long)




def _looks_numeric(text: str) -> bool:
    try:
        float(text.split()[0])
        return True
    except (ValueError, IndexError):
        return False


def read_dmon(text: str, path: str, at_unix_s: float | None) -> Telemetry:
    """``nvidia-smi dmon [-o DT]`` output."""
    header: list[str] | None = None
    units: list[str] | None = None
    long = []
    round_no = -1
    seen_in_round: set[str] = set()
    notes: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            tokens = line.lstrip()[1:].split()
            if header is None or (tokens and tokens[0].lower() in ("gpu", "date")):
                if tokens and tokens[0].lower() in ("gpu", "date"):
                    header = [t.lower() for t in tokens]
                    units = None
                    continue
            if header is not None and units is None:
                units = tokens
                continue
            continue
        if header is None:
            raise InputError(path, lineno, "data before the '# gpu ...' header row")
        cells = line.split()
        if len(cells) != len(header):
            raise InputError(path, lineno, f"{len(cells)} fields, the header has {len(header)}")
        rec = dict(zip(header, cells))
        gpu = rec.get("gpu") or rec.get("idx")
        if gpu is None:
            raise InputError(path, lineno, "no 'gpu' column in the header")
        if "date" in rec and "time" in rec:
            try:
                ts = datetime.strptime(rec["date"] + " " + rec["time"], "%Y%m%d %H:%M:%S") \
                    .replace(tzinfo=timezone.utc).timestamp()
            except ValueError:
                raise InputError(path, lineno, f"bad date/time {rec['date']} {rec['time']}") from None
        else:
            if gpu in seen_in_round or round_no < 0:
                round_no += 1
                seen_in_round = set()
            seen_in_round.add(gpu)
            if at_unix_s is None:
                raise InputError(path, lineno, "dmon output without -o DT has no timestamps")
            ts = at_unix_s + round_no
            if not notes:
                notes.append("dmon without timestamps: rows placed 1 s apart from --at/ingest time")
        labels = labels_json({"gpu": gpu})
        for col, cell in rec.items():
            spec = DMON_FIELDS.get(col)
            if spec is None or cell == "-":
                continue
            try:
                value = float(cell)
            except ValueError:
                raise InputError(path, lineno, f"column {col!r}: not a number: {cell!r}") from None
            long.append((spec[0], labels, spec[1], "gauge", ts, value * spec[2]))
    if header is None:
        raise InputError(path, 1, "no '# gpu ...' header row: not nvidia-smi dmon output")
    tel = from_rows(long)
    tel.notes = notes
    return tel
