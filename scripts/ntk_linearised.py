"""Where a network leaves the kernel regime: its real test PSNR against the prediction of its kernel at step 0.

    python scripts/ntk_linearised.py [--quick] [--out DIR] [--set STEPS=2000]

Full: camera 32², fourier protocol, a wide ReLU (2 × 2048, NTK parametrisation) and SIREN (3 × 256, ω0 = 30),
gradient descent at η = 1/λ_max(Θ₀) for 1000 steps, 2 seeds. --quick: 16², 60 steps, width 256, 1 seed. Writes
records.csv, ntk_linearised.png and summary.md under results/ntk_linearised/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("ntk_linearised")
