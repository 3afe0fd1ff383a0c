"""The Neural Tangent Kernel: the empirical kernel of a model and its eigen-spectrum."""

from coordnet.ntk.empirical import (MODES, as_blocks, empirical_ntk, layer_factors, no_tf32, ntk_diagonal,
                                    ntk_layer_diagonals, ntk_matvec)
from coordnet.ntk.spectrum import (Spectrum, kernel_distance, model_spectrum, spectrum, spectrum_from_eigenvalues,
                                   target_alignment, top_eigenvalues)

__all__ = [
    "MODES", "Spectrum", "as_blocks", "empirical_ntk", "kernel_distance", "layer_factors", "model_spectrum",
    "no_tf32", "ntk_diagonal", "ntk_layer_diagonals", "ntk_matvec", "spectrum", "spectrum_from_eigenvalues", "target_alignment", "top_eigenvalues",
]
