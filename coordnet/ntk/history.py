"""The NTK spectrum history as a CSV file: one row per measurement, one column per quantity.

Written by ``NTKSpectrumCallback`` (``coordnet.tables.write_csv``) to ``<run dir>/ntk_spectrum.csv`` so that
scripts can read it without TensorBoard. Columns: ``step`` then the quantities (``lambda_min``, ``lambda_max``, …,
``trace_share/layer_0``, …); ``nan`` marks a quantity not measured at that step (``kernel_velocity``
at the first measurement).
"""

from __future__ import annotations

from pathlib import Path

from coordnet.tables import read_csv_columns

HISTORY_FILE = "ntk_spectrum.csv"
FULL_HISTORY_FILE = "ntk_full_spectrum.csv"  # the matrix-free measurements over every training point


def read_history(path: str | Path) -> dict[str, list[float]]:
    """The columns of a history CSV (a file or a run directory holding one): name → values (floats)."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no NTK history at {path} (is NTKSpectrumCallback on for that run?)")
    try:
        return read_csv_columns(path)
    except ValueError:
        raise ValueError(f"NTK history {path} has no measurements") from None
