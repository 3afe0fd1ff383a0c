"""Paper 2: the empirical Edge-of-Chaos NTK (JJᵀ/n) converging to the closed form as the width grows.

    python scripts/p2_finite_width.py [--quick] [--seeds 4] [--out results/p2_finite_width]

Full: m ∈ {256, 1024, 4096}, l ∈ {3, 6, 12}, |x| and ReLU, 16 points on S^15, 4 seeds (~1 min on 2 cores).
--quick: m ∈ {64, 256}, l ∈ {3}, 2 seeds. Writes finite_width.csv, finite_width.png and summary.md.
"""

from coordnet.experiments.paper2 import finite_width, finite_width_figure, finite_width_summary, finite_width_table
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p2_finite_width", "m ∈ {64, 256}, l = 3, 2 seeds", "~1 min", "~3 s", seeds=4)

rows = finite_width((64, 256), (3,), seeds=2) if args.quick else finite_width(seeds=args.seeds)
table = finite_width_table(rows)
text = finite_width_summary(rows, table, 16, 16)
out = write_report(args.out, "finite_width", rows, finite_width_figure(table), text, args.figure_copy)
print(text)
print(f"\nwrote {out}/")
