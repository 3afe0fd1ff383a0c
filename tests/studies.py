"""Helpers of the study tests: run a study's script, check that a figure reads well."""

import subprocess
import sys
from pathlib import Path


SCRIPTS = Path(__file__).parents[1] / "scripts"


def run_quick(script: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    """``scripts/<script> --quick --out <out> [options]``, which must succeed; its captured stdout and stderr."""
    result = subprocess.run([sys.executable, str(SCRIPTS / script), "--quick", "--out", str(out), *options],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def drawn(fig):
    """``fig`` drawn on an Agg canvas; the renderer, for window extents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def assert_readable(fig) -> None:
    """Every axes and figure title lies inside the figure and no two titles, nor two tick labels of one axis, come
    within 2 pixels of each other (labels that touch read as one: "3×10²4×10²")."""
    renderer = drawn(fig)
    page = fig.bbox
    padded = lambda text: text.get_window_extent(renderer).padded(1)  # noqa: E731
    titles = [ax.title for ax in fig.axes if ax.get_title()] + [t for t in fig.texts if t.get_text()]
    for t in titles:
        box = t.get_window_extent(renderer)
        assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5 and box.y1 <= page.y1 + 0.5, \
            f"title {t.get_text()!r} is cut off by the figure's edge"
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            assert not padded(a).overlaps(padded(b)), f"titles {a.get_text()!r} and {b.get_text()!r} overlap"
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for axis, lo, hi, centre in ((ax.xaxis, frame.x0, frame.x1, lambda b: (b.x0 + b.x1) / 2),
                                     (ax.yaxis, frame.y0, frame.y1, lambda b: (b.y0 + b.y1) / 2)):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()
                      and lo - 1 <= centre(t.get_window_extent(renderer)) <= hi + 1]
            for i, a in enumerate(labels):
                for b in labels[i + 1:]:
                    assert not padded(a).overlaps(padded(b)), \
                        f"tick labels {a.get_text()!r} and {b.get_text()!r} overlap"


def legend_labels(fig) -> list[str]:
    """The entries of every legend in ``fig``: its figure-level legends and its axes' legends."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for legend in legends for t in legend.get_texts()]
