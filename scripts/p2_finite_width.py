"""Paper 2: the empirical Edge-of-Chaos NTK (JJᵀ/n) converging to the closed form as the width grows.

    python scripts/p2_finite_width.py [--quick] [--out DIR] [--workers N] [--set SEEDS=32]

Full: m ∈ {256, 1024, 4096}, l ∈ {3, 6, 12}, |x| and ReLU, 16 points on S^15, 16 seeds. --quick: m ∈ {64, 256},
l = 3, 2 seeds. Writes records.csv, finite_width.csv (every network), finite_width_summary.csv (medians,
intervals, the seed-averaged kernel's error), finite_width_rates.csv, p2_finite_width.png and summary.md.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p2_finite_width")
