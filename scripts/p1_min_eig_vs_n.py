"""Paper 1 Figs. 1–2: λ_min of the empirical NTK against N for cos(5·) and ReLU networks, n1 = 8N and 15N.

    python scripts/p1_min_eig_vs_n.py [--quick] [--seeds 5] [--out results/p1_min_eig_vs_n]

Full: N ∈ {500, 750, 1000, 1250, 1500}, 5 seeds (~3 min on 2 cores). --quick: N ∈ {100, 150, 200}, 2 seeds.
Writes min_eig_vs_n.csv (every kernel), min_eig_vs_n.png and summary.md, and prints the summary.
"""

from coordnet.experiments.paper1 import (min_eig_figure, min_eig_reference_check, min_eig_summary, min_eig_vs_n,
                                         summarise_min_eig)
from coordnet.experiments.paper_data import P1_NS
from coordnet.experiments.reporting import experiment_args, write_report

args = experiment_args(__doc__, "p1_min_eig_vs_n", "N ∈ {100, 150, 200}, 2 seeds", "~3 min", "~5 s", seeds=5)

ns, seeds = ((100, 150, 200), 2) if args.quick else (P1_NS, args.seeds)
rows = min_eig_vs_n(ns, seeds=seeds)
summary = summarise_min_eig(rows)
text = min_eig_summary(rows, summary)
if not args.quick:
    text += (f"\n\nReLU against paper 1's plotted points: largest |ours/paper − 1| = "
             f"{100 * min_eig_reference_check(summary):.1f}% (target ≤ 15%).")
out = write_report(args.out, "min_eig_vs_n", rows, min_eig_figure(summary), text, args.figure_copy)
print(text)
print(f"\nwrote {out}/")
