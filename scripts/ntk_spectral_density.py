"""The NTK's spectral density over every training pixel of a config's image, without forming the kernel.

    python scripts/ntk_spectral_density.py [--quick] [--out DIR] [--set RESOLUTION=128] [--set DEVICE=cuda]
                                           [--figure-copy docs/ntk_spectral_density.png]

Full: configs/camera_sine.yaml's SIREN 3×256 at init on all 65,536 pixels of camera 256² (a 34 GB kernel in
float64, never formed): the 16 largest eigenvalues by Lanczos, then stochastic Lanczos quadrature with 8 probes ×
30 steps. --quick: camera 32² (1024 pixels), 4 eigenvalues, 4 probes × 10 steps. Other settings: CONFIG, PROBES,
STEPS, DEFLATE. Progress bars count the kernel-vector products. Writes records.csv, density.csv (density of
log10 λ), nodes.csv (quadrature nodes and weights), ntk_spectral_density.png and summary.md (with the time and
peak memory) under results/ntk_spectral_density/.
"""

from coordnet.experiments.study import main

if __name__ == "__main__":  # worker processes import this file again (spawn)
    main("ntk_spectral_density")
