"""Paper 1 Figs. 3–4: the empirical Lipschitz constant of layer-3 features, cos(30·) against ReLU.

    python scripts/p1_lipschitz.py [--quick] [--out DIR] [--workers N] [--set SEEDS=3]

Full: n0 ∈ {200, 400}, n3 ∈ {64, …, 2048}, 1000 points, 3 seeds. --quick: n3 ∈ {64, 128}, 200 points, 1 seed.
Writes records.csv, lipschitz.csv (every network), p1_lipschitz.png and summary.md under results/p1_lipschitz/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p1_lipschitz")
