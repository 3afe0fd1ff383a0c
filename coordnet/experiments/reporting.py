"""What the studies' reports share: group means, power-law slopes, seed-bootstrap intervals, Markdown tables and
plain log-scale ticks."""

from __future__ import annotations

import math
import statistics
from typing import Callable, Sequence

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


BOOTSTRAP_RESAMPLES = 4000


def seed_bootstrap(samples: Sequence[Sequence[float]], statistic: Callable[..., float],
                   level: float = 0.95) -> tuple[float, float, float]:
    """``statistic(*samples)`` and its percentile-bootstrap ``level`` interval over seeds: (value, low, high).

    ``samples``: one sequence per group (e.g. per width), each indexed by seed in the same order, so that seed s
    is resampled in every group at once (``scipy.stats.bootstrap``, paired; a fixed random state, so a report
    is the same each time it is written). ``statistic`` takes one 1-D array per group.
    """
    from scipy import stats

    arrays = [np.asarray(sample, dtype=float) for sample in samples]
    value = float(statistic(*arrays))
    if len(arrays[0]) < 2:
        return value, float("nan"), float("nan")
    result = stats.bootstrap(arrays, statistic, paired=True, vectorized=False, confidence_level=level,
                             n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=0)
    return value, float(result.confidence_interval.low), float(result.confidence_interval.high)


def local_slopes(xs: Sequence[float], samples: Sequence[Sequence[float]],
                 level: float = 0.95) -> list[tuple[float, float, float, float, float]]:
    """The log-log slope over each step x_i → x_{i+1} of the geometric mean over seeds, with its seed-bootstrap
    interval: one (x_i, x_{i+1}, slope, low, high) per step. ``samples[i]``: the values at x_i, by seed."""
    out = []
    for i in range(len(xs) - 1):
        run = math.log(xs[i + 1] / xs[i])
        slope = lambda a, b: (np.log(b).mean() - np.log(a).mean()) / run  # noqa: E731
        out.append((xs[i], xs[i + 1], *seed_bootstrap([samples[i], samples[i + 1]], slope, level)))
    return out


def interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """``value [low, high]`` with ``digits`` significant digits."""
    return f"{value:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table; floats are written with 4 significant digits, a ``|`` in a cell escaped."""
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", r"\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
