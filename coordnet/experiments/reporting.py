"""What the studies' reports share: group means, power-law slopes, Markdown tables and plain log-scale ticks."""

from __future__ import annotations

import statistics
from typing import Sequence

import numpy as np
from matplotlib.axis import Axis
from matplotlib.ticker import NullFormatter


def ticks_at(axis: Axis, values: Sequence[float]) -> None:
    """Ticks of a log-scale ``axis`` at ``values`` only, labelled as plain numbers: a few measured sizes read
    better than matplotlib's 2×10² … 9×10² minor labels, which collide where decades are narrow."""
    axis.set_ticks(values, [f"{v:g}" for v in values])
    axis.set_minor_formatter(NullFormatter())


def group_means(rows: Sequence[dict], by: Sequence[str], fields: Sequence[str]) -> list[dict]:
    """One row per distinct value of the ``by`` columns (in sorted order): those columns, the mean of each of
    ``fields`` over the group's rows, and ``count``, the group's size."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    return [dict(zip(by, key)) | {f: statistics.fmean(r[f] for r in members) for f in fields} | {"count": len(members)}
            for key, members in sorted(groups.items())]


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: the exponent of a power law y ∝ x^slope."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def slopes_ours_and_paper(rows: Sequence[dict], x: str, ours: str) -> tuple[float, float | str]:
    """``loglog_slope`` of column ``ours`` against ``x`` over ``rows``, and of the ``paper`` column over the rows
    where the paper has a value ("—" where it has fewer than two)."""
    paper = [r for r in rows if r["paper"]]
    return (loglog_slope([r[x] for r in rows], [r[ours] for r in rows]),
            loglog_slope([r[x] for r in paper], [r["paper"] for r in paper]) if len(paper) > 1 else "—")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table; floats are written with 4 significant digits."""
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
