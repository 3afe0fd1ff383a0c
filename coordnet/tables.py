"""Rows of numbers as CSV files: one dict per row, one column per key (in first-seen order).

Used for the NTK callback's history and for the experiments' results; floats are written with
``str``, which round-trips them exactly.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path


def write_csv(path: str | Path, rows: list[dict]) -> None:
    """Write ``rows`` to ``path`` (replacing it atomically); a key missing from a row is an empty cell."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _value(cell: str) -> float | str:
    if not cell:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return cell


def read_csv_columns(path: str | Path) -> dict[str, list[float | str]]:
    """The columns of a CSV: name → values, floats where a cell reads as a number (NaN if empty), else strings."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return {key: [_value(row[key]) for row in rows] for key in rows[0]}
