"""What every reproduction writes: ``results/<name>/`` (``results/<name>-quick/`` under --quick) with a CSV of every
measured point, a PNG, summary.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from coordnet.tables import write_csv


def experiment_args(doc: str, name: str, quick_help: str, full_time: str, quick_time: str,
                    seeds: int | None = None,
                    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The command line every experiment script shares, parsed; prints the run's expected time first.

    Options: ``--quick`` (``quick_help``), ``--seeds`` (when ``seeds`` is a default), ``--figure-copy PATH``
    (also save the figure there: docs/<name>.png for the README), ``--out`` (default results/<name>, and
    results/<name>-quick under ``--quick``, so that a quick run never overwrites the full study's results), and
    whatever ``add_arguments`` adds. ``full_time``/``quick_time``: measured on a 2-core CPU.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help=quick_help + " (for tests)")
    if seeds is not None:
        parser.add_argument("--seeds", type=int, default=seeds, help=f"seeds per point (default: {seeds})")
    parser.add_argument("--figure-copy", help=f"also save the figure here (docs/{name}.png for the README)")
    parser.add_argument("--out", help=f"output directory (default: results/{name}, with --quick results/{name}-quick)")
    args = parser.parse_args()
    if args.out is None:
        args.out = f"results/{name}-quick" if args.quick else f"results/{name}"
    mode, expected = ("--quick", quick_time) if args.quick else ("full run", full_time)
    print(f"{name} ({mode}): expected {expected} on a 2-core CPU", flush=True)
    return args


def ticks_at(axis: Axis, values: Sequence[float]) -> None:
    """Ticks of a log-scale ``axis`` at ``values`` only, labelled as plain numbers: a few measured sizes read
    better than matplotlib's 2×10² … 9×10² minor labels, which collide where decades are narrow."""
    axis.set_ticks(values, [f"{v:g}" for v in values])
    axis.set_minor_formatter(NullFormatter())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table; floats are written with 4 significant digits."""
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out_dir: str | Path, name: str, rows: list[dict], figure: Figure, summary: str,
                 figure_copy: str | Path | None = None) -> Path:
    """Write ``<out_dir>/<name>.csv`` (``rows``), ``<name>.png`` (``figure``) and ``summary.md``; returns out_dir.

    ``figure_copy``: also save the figure there (the README's figures in docs/ come from this).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / f"{name}.csv", rows)
    for path in (out / f"{name}.png", figure_copy):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=120)
    (out / "summary.md").write_text(summary.rstrip() + "\n")
    return out
