"""Memorising random targets: which activation's NTK at init is better conditioned, and does it train faster?

    python scripts/memorization.py [--quick] [--num-points 256] [--steps 1000] [--dim 16] [--seeds 1]
                                   [--workers 1] [--out results/memorization]

Full: N = 256 points (Gaussian in R^16 and a 16 × 16 pixel grid), one hidden layer of width N/4 … 8N, cos(s·)
for s ∈ {1, 5, 30}, sine, ReLU and the (a, b)-ReLU at the EOC for Δ ∈ {¼, ½, ¾, 1}; GD (η = 1/λ_max(K₀)) and
Adam, at most 1000 steps (~9 min on 2 cores). --quick: N = 64, widths N and 8N, three activations, 200 steps.
An interrupted sweep resumes from <out>/runs.jsonl. Writes runs.csv, curves.csv, runs.png, summary.md.
"""

from pathlib import Path

from coordnet.experiments.memorization import (curve_rows, default_activations, memorization_figures,
                                               memorization_summary, run_table, sweep)
from coordnet.experiments.reporting import experiment_args, write_report
from coordnet.tables import write_csv


def sizes(parser):
    parser.add_argument("--num-points", type=int, default=256, help="N (default: 256; a square for the grid)")
    parser.add_argument("--steps", type=int, default=1000, help="step cap per run (default: 1000)")
    parser.add_argument("--dim", type=int, default=16, help="dimension of the Gaussian inputs (default: 16)")
    parser.add_argument("--workers", type=int, default=1, help="parallel runs: one process each (default: 1)")


def main() -> None:
    args = experiment_args(__doc__, "memorization", "N = 64, widths N and 8N, 3 activations, 200 steps", "~9 min",
                           "~10 s", seeds=1, add_arguments=sizes)
    specs = default_activations()
    if args.quick:
        specs = [s for s in specs if s.name in ("cos(5·)", "relu", "abrelu Δ=1")]
        n, steps, ratios = 64, 200, (1.0, 8.0)
    else:
        n, steps, ratios = args.num_points, args.steps, (0.25, 0.5, 1.0, 2.0, 8.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = sweep(specs, ("gaussian", "grid"), n, ratios, ("gd", "adam"), steps, args.seeds, out / "runs.jsonl",
                    args.dim, workers=args.workers)
    write_csv(out / "curves.csv", curve_rows(records))
    text = memorization_summary(records, n, steps, args.dim)
    write_report(out, "runs", run_table(records), memorization_figures(records, n), text, args.figure_copy)
    print(text)
    print(f"\nwrote {out}/")


if __name__ == "__main__":  # worker processes import this file again (spawn)
    main()
