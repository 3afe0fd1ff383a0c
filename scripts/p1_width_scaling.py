"""Paper 1's Θ(n^{3/2}) claim tested directly: λ_min of the NTK against the wide layer's width at fixed N.

    python scripts/p1_width_scaling.py [--quick] [--out DIR] [--workers N] [--set SEEDS=16]

Full: N = 500, n1 ∈ {500, …, 16000} (doubling), cos(s·) for s ∈ {1, 5, 30} and ReLU, He and fixed weight
variances, 8 seeds, and a narrow n2 = 50 at N = 100. --quick: N = 100, n1 ∈ {100, …, 800}, 2 seeds. Writes
records.csv, width_scaling.csv (every kernel, with each layer's shares), local_slopes.csv (per doubling, with
seed-bootstrap intervals), layer_shares.csv, p1_width_scaling.png and summary.md under results/p1_width_scaling/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p1_width_scaling")
