"""Paper 2 Theorem 13: λ_max and the bulk of the EOC NTK against their predicted values.

    python scripts/p2_spectrum_bounds.py [--quick] [--out DIR] [--workers N] [--set DATASETS=40]

Full: n ∈ {16, 32, 64} points on S^15, l ∈ {8, 16, 32, 64}, ReLU (Δ = 1/2) and |x| (Δ = 1), 20 datasets.
--quick: n = 16, l ∈ {8, 16}, 3 datasets. Writes records.csv, spectrum_bounds.csv, p2_spectrum_bounds.png and
summary.md.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p2_spectrum_bounds")
