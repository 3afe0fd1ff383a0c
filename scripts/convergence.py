"""Fitting images: how fast each activation converges, and what its NTK's conditioning does meanwhile.

    python scripts/convergence.py [--quick] [--resolution 64] [--steps 300] [--hidden N] [--seeds 3]
                                  [--images camera astronaut] [--workers 1] [--out results/convergence]

Full: camera (grey) and astronaut (RGB) at 64², protocols memorize and fourier, cos s ∈ {1, 5, 15}, sine
ω0 ∈ {10, 30, 60}, ReLU, ReLU + Fourier features (σ = 2.5·resolution/256), |x| at the EOC, 3 seeds: 108 runs
of 300 full-batch Adam steps through the CLI's configs and callbacks (32 min on 2 cores). The papers' 256²
setting: --resolution 256 --steps 1000 --probe-points 1024 --workers 6 (4.5 min on one H100, 6 processes
sharing it). --quick: 32², 3 activations, 1 seed, 40 steps.
An interrupted sweep resumes from <out>/runs.jsonl. Writes runs.csv, curves.csv, runs.png, summary.md,
and each run's TensorBoard logs under <out>/runs/.
"""

from pathlib import Path

from coordnet.experiments.convergence import (convergence_figure, convergence_jobs, convergence_run,
                                              convergence_summary, curve_rows, default_variants, run_table, KEY)
from coordnet.experiments.reporting import experiment_args, write_report
from coordnet.experiments.sweeps import default_workers, run_sweep
from coordnet.tables import write_csv


def sizes(parser):
    parser.add_argument("--resolution", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--steps", type=int, default=300, help="full-batch Adam steps per run (default: 300)")
    parser.add_argument("--hidden", type=int, help="hidden width (default: each config's own, 256)")
    parser.add_argument("--images", nargs="+", default=["camera", "astronaut"], help="images (default: camera astronaut)")
    parser.add_argument("--probe-points", type=int, default=256, help="NTK probe size (default: 256)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="parallel runs: one process each (default: one per GPU, else 1)")


def main() -> None:
    args = experiment_args(__doc__, "convergence", "32², cos s=5, sine ω0=30, relu; 1 seed, 40 steps", "~33 min",
                           "~40 s", seeds=3, add_arguments=sizes)
    variants = default_variants(32 if args.quick else args.resolution)
    if args.quick:
        variants = [v for v in variants if v.name in ("cos s=5", "sine ω0=30", "relu")]
        args.resolution, args.steps, args.probe_points, args.seeds = 32, 40, 64, 1
    out = Path(args.out)
    jobs = convergence_jobs(variants, tuple(args.images), ("memorize", "fourier"), args.resolution, args.steps, args.seeds,
                            out / "runs", args.hidden, args.probe_points, ntk_every=max(1, args.steps // 6),
                            eval_every=max(1, args.steps // 12))
    records = run_sweep(jobs, convergence_run, out / "runs.jsonl", KEY, args.workers, desc="convergence")
    write_csv(out / "curves.csv", curve_rows(records))
    text = convergence_summary(records)
    write_report(out, "runs", run_table(records), convergence_figure(records), text, args.figure_copy)
    print(text)
    print(f"\nwrote {out}/ (TensorBoard: tensorboard --logdir {out / 'runs'})")


if __name__ == "__main__":  # worker processes import this file again (spawn)
    main()
