"""The Neural Tangent Kernel: the empirical kernel of a model, its infinite-width limit and its eigen-spectrum."""

from coordnet.ntk.analytic import AnalyticKernels, analytic_kernels, analytic_ntk, eoc_cosine_map, eoc_ntk

from coordnet.ntk.empirical import (MODES, as_blocks, empirical_ntk, find_mlp, layer_factors, no_tf32, ntk_diagonal,
                                    ntk_layer_diagonals, ntk_layer_kernels, ntk_matvec, require_mlp)
from coordnet.ntk.eigenfunctions import Eigenfunctions, kernel_eigenfunctions
from coordnet.ntk.predict import LinearisedGD
from coordnet.ntk.spectrum import (Spectrum, kernel_distance, model_spectrum, numerical_floor, spectrum,
                                   spectrum_from_eigenvalues, target_alignment, top_eigenpairs,
                                   top_eigenvalues)

__all__ = [
    "AnalyticKernels", "Eigenfunctions", "LinearisedGD", "MODES", "Spectrum", "analytic_kernels", "analytic_ntk",
    "as_blocks", "empirical_ntk", "eoc_cosine_map", "eoc_ntk", "find_mlp", "kernel_distance", "kernel_eigenfunctions",
    "layer_factors", "model_spectrum", "no_tf32", "ntk_diagonal", "ntk_layer_diagonals", "ntk_layer_kernels",
    "ntk_matvec", "numerical_floor", "require_mlp", "spectrum", "spectrum_from_eigenvalues", "target_alignment",
    "top_eigenpairs", "top_eigenvalues",
]
