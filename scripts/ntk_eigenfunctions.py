"""The NTK's top eigenfunctions over every pixel of camera, for SIREN, ReLU + Fourier features and cos at init.

    python scripts/ntk_eigenfunctions.py [--quick] [--out DIR] [--set K=32] [--figure-copy docs/ntk_eigenfunctions.png]

Full: camera 128² (16 384 pixels), the top 16 eigenpairs of each shipped config's raw NTK by matrix-free Lanczos.
--quick: 32², 4 eigenpairs. Writes records.csv, <config>.npy (the eigenvectors), ntk_eigenfunctions.png and
summary.md under results/ntk_eigenfunctions/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("ntk_eigenfunctions")
