"""Paper 1 Figs. 3–4: the empirical Lipschitz constant of layer-3 features, cos(30·) against ReLU.

    python scripts/p1_lipschitz.py [--quick] [--seeds 3] [--out results/p1_lipschitz]

Full: n0 ∈ {200, 400}, n3 ∈ {64, …, 2048}, 1000 points, 3 seeds (~1.5 min on 2 cores). --quick: n3 ∈ {64, 128},
200 points, 1 seed. Writes lipschitz.csv, lipschitz.png and summary.md, and prints the summary.
"""

from coordnet.experiments.paper1 import lipschitz, lipschitz_figure, lipschitz_summary, lipschitz_table
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p1_lipschitz", "n3 ∈ {64, 128}, 200 points, 1 seed", "~1.5 min", "~5 s", seeds=3)

points = 200 if args.quick else 1000
rows = lipschitz((64, 128), num_points=points, seeds=1) if args.quick else lipschitz(num_points=points, seeds=args.seeds)
table = lipschitz_table(rows)
text = lipschitz_summary(rows, table, points)
out = write_report(args.out, "lipschitz", rows, lipschitz_figure(table), text, args.figure_copy)
print(text)
print(f"\nwrote {out}/")
