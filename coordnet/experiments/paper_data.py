"""The source papers' published numbers (docs/science.md §1.6 and §2.5 describe where each comes from).

Paper 1 (arXiv 2402.04783): values read from the vector paths of Figs. 1–2 (3–4 significant figures).
Paper 2 (arXiv 2501.13225): the CSVs behind Fig. 1 (mean κ over 100 datasets of 32 points on S^15).
"""

import math

# Paper 2, Fig. 1: Δ → (a, b) of the (a, b)-ReLU used for it.
P2_PAIRS = {
    1 / 8: (math.sqrt(7), 1.0), 1 / 4: (math.sqrt(3), 1.0), 3 / 8: (math.sqrt(5), math.sqrt(3)), 1 / 2: (1.0, 1.0),
    5 / 8: (math.sqrt(3), math.sqrt(5)), 3 / 4: (1.0, math.sqrt(3)), 7 / 8: (1.0, math.sqrt(7)), 1.0: (0.0, 1.0),
}
P2_DEPTHS = (2, 4, 8, 16, 32, 64)
# Paper 2, Fig. 1: mean κ(K∞) at the depths above, one tuple per Δ.
P2_KAPPA = {
    1 / 8: (92.73, 37.46, 28.79, 24.35, 20.63, 17.46),
    1 / 4: (46.32, 30.07, 24.90, 20.94, 17.68, 15.26),
    3 / 8: (37.41, 27.66, 22.93, 19.21, 16.35, 14.40),
    1 / 2: (34.77, 26.24, 21.67, 18.17, 15.63, 13.96),
    5 / 8: (33.76, 25.29, 20.81, 17.51, 15.19, 13.70),
    3 / 4: (33.58, 24.68, 20.25, 17.08, 14.91, 13.55),
    7 / 8: (34.28, 24.45, 19.93, 16.82, 14.74, 13.45),
    1.0: (39.08, 25.79, 20.25, 16.85, 14.71, 13.43),
}

# Paper 1, Figs. 1 (n1 = 8N) and 2 (n1 = 15N): λ_min of the empirical NTK J Jᵀ against N.
P1_NS = (500, 750, 1000, 1250, 1500)
P1_MIN_EIG = {
    ("cos", 8): (36410, 40650, 51790, 60260, 73310),
    ("relu", 8): (1483, 1832, 2519, 2943, 3507),
    ("cos", 15): (67180, 74840, 87190, 100600, None),
    ("relu", 15): (3135, 3791, 4680, 5610, None),
}

P1_LIP_WIDTHS = (64, 128, 256, 512, 1024, 2048)
P1_LIPSCHITZ = {  # paper 1, Figs. 3 (cos(30·)) and 4 (ReLU inset), max_x ‖J(f_3)(x)‖_op at n3 = P1_LIP_WIDTHS
    ("cos", 200): (1.08e5, 1.36e5, 1.87e5, 2.46e5, 3.46e5, 4.75e5),
    ("cos", 400): (1.07e5, 1.31e5, 1.84e5, 2.40e5, 3.35e5, 4.62e5),
    ("relu", 200): (4.0, 5.3, 7.3, 9.9, 13.0, 18.4),
    ("relu", 400): (3.6, 5.5, 6.0, 9.8, 11.8, 17.8),
}
