"""Paper 1 Figs. 1–2: λ_min of the empirical NTK against N for cos(5·) and ReLU networks, n1 = 8N and 15N.

    python scripts/p1_min_eig_vs_n.py [--quick] [--out DIR] [--workers N] [--set SEEDS=5]

Full: N ∈ {500, 750, 1000, 1250, 1500}, 5 seeds. --quick: N ∈ {100, 150, 200}, 2 seeds. Writes records.csv,
min_eig_vs_n.csv (every kernel), p1_min_eig_vs_n.png and summary.md under results/p1_min_eig_vs_n/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p1_min_eig_vs_n")
