"""Paper 2 Fig. 1: condition number of the Edge-of-Chaos NTK against depth, for eight (a, b)-ReLUs.

    python scripts/p2_condition_vs_depth.py [--quick] [--out results/p2_condition_vs_depth]

Full: 100 datasets of 32 points on S^15, depths 2–64 (~20 s on 2 cores). --quick: 8 datasets, depths 2–16.
Writes condition_vs_depth.csv, condition_vs_depth.png and summary.md, and prints the summary.
"""

from coordnet.experiments.paper2 import condition_vs_depth, condition_vs_depth_figure, condition_vs_depth_summary
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p2_condition_vs_depth", "8 datasets, depths up to 16", "~20 s", "~3 s")

datasets, max_depth, points, dim = (8, 16, 32, 16) if args.quick else (100, 64, 32, 16)
rows = condition_vs_depth(datasets, points, dim, max_depth)
summary = condition_vs_depth_summary(rows, datasets, points, dim)
figure = condition_vs_depth_figure(rows, points)
out = write_report(args.out, "condition_vs_depth", rows, figure, summary, args.figure_copy)
print(summary)
print(f"\nwrote {out}/")
