"""Paper 1's Θ(n^{3/2}) claim tested directly: λ_min of the NTK against the wide layer's width at fixed N.

    python scripts/p1_width_scaling.py [--quick] [--seeds 5] [--out results/p1_width_scaling]

Full: N = 500, n1 ∈ {500, …, 16000} (doubling), cos(s·) for s ∈ {1, 5, 30} and ReLU, 5 seeds (~50 s on
2 cores). --quick: N = 100, n1 ∈ {100, …, 800}, 2 seeds. Writes width_scaling.csv, width_scaling.png and
summary.md (fitted exponents with 95% intervals), and prints the summary.
"""

from coordnet.experiments.paper1 import width_exponents, width_scaling, width_scaling_figure, width_scaling_summary
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p1_width_scaling", "N = 100, n1 up to 800, 2 seeds", "~50 s", "~5 s", seeds=5)

if args.quick:
    n, widths, seeds = 100, (100, 200, 400, 800), 2
else:
    n, widths, seeds = 500, (500, 1000, 2000, 4000, 8000, 16000), args.seeds
rows = width_scaling(n, widths, seeds)
exponents = width_exponents(rows)
text = width_scaling_summary(rows, exponents, n)
out = write_report(args.out, "width_scaling", rows, width_scaling_figure(rows, exponents, n), text, args.figure_copy)
print(text)
print(f"\nwrote {out}/")
