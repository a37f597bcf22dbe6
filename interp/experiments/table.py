"""The tidy results table: one row per unit x metric, written as CSV."""

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.experiments.units import COLUMNS, Row, write_text


def columns(rows: Sequence[Row]) -> list[str]:
    """The fixed columns, then every label column in sorted order."""
    labels = sorted({key for row in rows for key in row.labels} - set(COLUMNS))
    return [*COLUMNS, *labels]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def render(rows: Sequence[Row]) -> str:
    """The CSV text of ``rows`` (exact float round trip, stable column order)."""
    names = columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        flat = row.flat()
        writer.writerow([_cell(flat.get(name)) for name in names])
    return buffer.getvalue()


def write_table(path: Path, rows: Sequence[Row]) -> int:
    """Write ``results.csv`` atomically; returns the number of rows."""
    write_text(path, render(rows))
    return len(rows)


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` as dictionaries (``value`` as float, ``seed`` as int)."""
    out = []
    with open(path, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            row: dict[str, Any] = {k: (v if v != "" else None) for k, v in record.items()}
            if row.get("value") is not None:
                row["value"] = float(row["value"])
            if row.get("seed") is not None:
                row["seed"] = int(row["seed"])
            out.append(row)
    return out
