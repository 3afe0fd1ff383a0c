"""Paper 2 Theorem 13: λ_max and the bulk of the EOC NTK against their predicted values.

    python scripts/p2_spectrum_bounds.py [--quick] [--out results/p2_spectrum_bounds]

Full: n ∈ {16, 32, 64} points on S^15, l ∈ {8, 16, 32, 64}, ReLU (Δ = 1/2) and |x| (Δ = 1), 20 datasets
(~10 s). --quick: n ∈ {16}, l ∈ {8, 16}, 3 datasets. Writes spectrum_bounds.csv, spectrum_bounds.png and summary.md.
"""

from coordnet.experiments.paper2 import (spectrum_bounds, spectrum_bounds_figure, spectrum_bounds_summary,
                                         spectrum_bounds_table)
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p2_spectrum_bounds", "n = 16, l ∈ {8, 16}, 3 datasets", "~10 s", "~2 s")

rows = spectrum_bounds((16,), (8, 16), datasets=3) if args.quick else spectrum_bounds()
table = spectrum_bounds_table(rows)
text = spectrum_bounds_summary(rows, table, 16)
out = write_report(args.out, "spectrum_bounds", rows, spectrum_bounds_figure(table), text, args.figure_copy)
print(text)
print(f"\nwrote {out}/")
