"""Paper 2 Fig. 1: condition number of the Edge-of-Chaos NTK against depth, for eight (a, b)-ReLUs.

    python scripts/p2_condition_vs_depth.py [--quick] [--out DIR] [--workers N] [--set DATASETS=20]

Full: 100 datasets of 32 points on S^15, depths 2–64. --quick: 8 datasets, depths 2–16. Writes records.csv,
condition_vs_depth.csv, p2_condition_vs_depth.png and summary.md under results/p2_condition_vs_depth/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("p2_condition_vs_depth")
