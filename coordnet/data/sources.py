"""Where a data module's ``source`` points, checked before anything is read, and how much a file may decode to.

``existing_file`` refuses, naming the input, what cannot be read as a file: a directory, a FIFO or device
(reading one would block), ``~user`` of no such user; the CLI checks configs and checkpoints with it too.
``resolve_source`` tells a built-in name from a file, and names a missing path.
``check_size`` refuses a file whose header declares more values (points × channels) than ``COORDNET_MAX_VALUES``
(default 3·10⁸: a 10,000 × 10,000 RGB image) before it is decoded: a 1 MB PNG can declare 14,000² pixels of 16 bits
and need gigabytes. Raise the limit in the environment, e.g. ``COORDNET_MAX_VALUES=1e9 coordnet fit …``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

MAX_VALUES_VARIABLE = "COORDNET_MAX_VALUES"
DEFAULT_MAX_VALUES = 3 * 10**8


def existing_file(source: str | os.PathLike, name: str, expected: str = "a file") -> Path | None:
    """The regular file ``source`` names (``~`` expanded), or None when nothing is there. ``name`` starts each
    message (e.g. ``image 'cat.png'``) and ``expected`` ends it.

    Raises:
        FileNotFoundError: ``~user`` of an unknown user.
        ValueError: a directory, or not a regular file (a FIFO, socket or device: reading one would block).
    """
    try:
        path = Path(source).expanduser()
    except RuntimeError:  # Path.expanduser: "Could not determine home directory"
        raise FileNotFoundError(f"{name}: cannot expand {str(source).split('/')[0]!r}: no such user") from None
    if path.is_dir():
        raise ValueError(f"{name}: is a directory, expected {expected}")
    if path.exists() and not path.is_file():
        raise ValueError(f"{name}: is not a regular file (a FIFO, socket or device), expected {expected}")
    return path if path.is_file() else None


def resolve_source(source: str, kind: str, builtins: Sequence[str]) -> Path | None:
    """The file ``source`` names, or None when it is one of ``builtins`` (and no such file exists).

    Raises:
        FileNotFoundError: neither a file nor a built-in name, or ``~user`` of an unknown user.
        ValueError: a directory, or not a regular file (a FIFO, socket or device).
    """
    path = existing_file(source, f"{kind} {source!r}")
    if path is not None:
        return path
    if source in builtins:
        return None
    raise FileNotFoundError(f"{kind} {source!r}: no such file, and not a built-in {kind} "
                            f"(built-ins: {', '.join(builtins)})")


def max_values() -> int:
    """The largest number of values a data file may decode to (``COORDNET_MAX_VALUES``)."""
    text = os.environ.get(MAX_VALUES_VARIABLE)
    if text is None:
        return DEFAULT_MAX_VALUES
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 1:
        raise ValueError(f"{MAX_VALUES_VARIABLE}={text!r}: expected a number ≥ 1")
    return int(value)


def check_size(kind: str, source: str, shape: Sequence[int]) -> None:
    """Refuse a file whose declared ``shape`` holds more values than ``max_values()``."""
    count, limit = math.prod(shape), max_values()
    if count > limit:
        raise ValueError(f"{kind} {source!r}: declares {' × '.join(map(str, shape))} = {count:,} values, more than "
                         f"the limit of {limit:,} (set {MAX_VALUES_VARIABLE} to raise it)")
