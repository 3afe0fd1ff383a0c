"""A convergence sweep run sequentially and in parallel processes, side by side: wall times and agreement.

    python scripts/bench_sweep.py [--workers 2] [--resolution 64] [--steps 300] [--out /tmp/bench_sweep]

The grid: the convergence study's --quick variants (cos s=5, sine ω0=30, relu) on camera and astronaut, both
protocols, 1 seed, 64 probe pixels: 12 runs (docs/benchmarks.md has the times).
Sequential: one process using every core; parallel: --workers processes, the cores shared out. Prints the times,
the speed-up and the largest relative difference between the two results tables (steps to 25/30/35 dB, PSNRs, κ).
A worker process spends seconds starting (torch, Lightning): runs of a second or two do not repay it.
"""

import argparse
import tempfile
from pathlib import Path

from coordnet.experiments import convergence
from coordnet.experiments.benchmarks import sweep_speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    parser.add_argument("--resolution", type=int, default=64, help="image side (default: 64)")
    parser.add_argument("--steps", type=int, default=300, help="steps per run (default: 300)")
    parser.add_argument("--out", help="where the two sweeps write (default: a temporary directory)")
    args = parser.parse_args()
    if args.out and Path(args.out).exists() and any(Path(args.out).iterdir()):
        parser.error(f"--out {args.out} is not empty: its finished runs would be skipped, not timed")
    out = args.out or tempfile.mkdtemp(prefix="bench_sweep_")
    every = max(1, args.steps // 4)
    jobs = [job | {"resolution": args.resolution, "steps": args.steps, "ntk_every": every, "eval_every": every}
            for job in convergence.jobs(True, Path(out))]
    r = sweep_speedup(jobs, args.workers, out)
    print(f"\n{r['runs']} convergence runs, {args.resolution}², {args.steps} steps ({out})")
    print("| runs | sequential (s) | parallel (s) | processes | speed-up | largest relative difference | "
          "steps-to entries differing |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {r['runs']} | {r['sequential_s']:.1f} | {r['parallel_s']:.1f} | {r['workers']} | {r['speedup']:.2f}× | "
          f"{r['largest_relative_difference']:.1e} | {r['steps_to_differing']} |")


if __name__ == "__main__":  # worker processes import this file again (spawn)
    main()
