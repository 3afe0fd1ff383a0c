"""Memorising random targets: which activation's NTK at init is better conditioned, and does it train faster?

    python scripts/memorization.py [--quick] [--out DIR] [--workers N] [--set NUM_POINTS=64] [--set STEPS=500]

Full: N = 256 points (Gaussian in R^16 and a 16 × 16 pixel grid), one hidden layer of width N/4 … 8N, cos(s·)
for s ∈ {1, 5, 30}, sine, ReLU and the (a, b)-ReLU at the EOC for Δ ∈ {¼, ½, ¾, 1}; GD (η = 1/λ_max(K₀)) and
Adam, at most 1000 steps. --quick: N = 64, widths N and 8N, cos(5·), ReLU and |x|, 200 steps. Settings: NUM_POINTS,
DIM, STEPS, SEEDS, WIDTH_RATIOS, ACTIVATIONS. Writes records.jsonl, records.csv, runs.csv, curves.csv,
memorization.png and summary.md under results/memorization/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("memorization")
