"""Fitting images: how fast each activation converges, and what its NTK's conditioning does meanwhile.

    python scripts/convergence.py [--quick] [--out DIR] [--workers N] [--set RESOLUTION=256] [--set STEPS=1000]

Full: camera (grey) and astronaut (RGB) at 64², protocols memorize and fourier, cos s ∈ {1, 5, 15}, sine
ω0 ∈ {10, 30, 60}, ReLU, ReLU + Fourier features (σ = 2.5·resolution/256), |x| at the EOC, 3 seeds: 108 runs
of 300 full-batch Adam steps through the CLI's configs and callbacks. The papers' 256² setting:
--set RESOLUTION=256 --set STEPS=1000 --set PROBE_POINTS=1024. --quick: 32², cos s=5, sine ω0=30 and ReLU,
1 seed, 40 steps. Settings: IMAGES, PROTOCOLS, RESOLUTION, STEPS, HIDDEN, SEEDS, PROBE_POINTS, VARIANTS.
Writes records.jsonl, records.csv, runs.csv, curves.csv, convergence.png and summary.md under
results/convergence/, and each run's TensorBoard logs under its runs/ (tensorboard --logdir results/convergence/runs).
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("convergence")
