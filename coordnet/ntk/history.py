"""The NTK spectrum history as a CSV file: one row per measurement, one column per quantity.

Written by ``NTKSpectrumCallback`` to ``<run dir>/ntk_spectrum.csv`` so that scripts can read it
without TensorBoard. Columns: ``step`` then the quantities in the order first measured
(``lambda_min``, ``lambda_max``, …, ``trace_share/layer_0``, …); ``nan`` marks a quantity not
measured at that step (``kernel_velocity`` at the first measurement).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

HISTORY_FILE = "ntk_spectrum.csv"


def write_history(path: str | Path, rows: list[dict[str, float]]) -> None:
    """Write ``rows`` (each {"step": …, quantity: value}) to ``path``, replacing it atomically."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)  # str(float) round-trips exactly
    os.replace(tmp, path)


def read_history(path: str | Path) -> dict[str, list[float]]:
    """The columns of a history CSV (a file or a run directory holding one): name → values (floats)."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no NTK history at {path} (is NTKSpectrumCallback on for that run?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"NTK history {path} has no measurements")
    return {key: [float(row[key]) if row[key] else math.nan for row in rows] for key in rows[0]}
