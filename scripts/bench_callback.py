"""Wall time of an image config's training with and without its NTKSpectrumCallback, side by side.

    python scripts/bench_callback.py [--config configs/camera_sine.yaml] [--max-steps N] [--resolution R]
                                     [--repeats 2] [--accelerator auto]

Fits the config as shipped (the callback at its defaults: 1024 probe pixels, every 100 steps) and
with ``--trainer.callbacks=[]``, alternating, ``--repeats`` pairs. Target on CPU: ratio ≤ 1.10.
Shorter runs overstate the overhead: step 0 is always measured, so 300 steps hold 4 measurements
where 2000 steps hold 21.
"""

import argparse

from coordnet.experiments.benchmarks import callback_overhead
from coordnet.experiments.config_runs import CONFIG_DIR

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default=str(CONFIG_DIR / "camera_sine.yaml"), help="default: configs/camera_sine.yaml")
parser.add_argument("--max-steps", type=int, help="override trainer.max_steps (default: the config's)")
parser.add_argument("--resolution", type=int, help="override the image resolution (default: the config's)")
parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (default: 2)")
parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu (default: auto)")
args = parser.parse_args()

changes = ["--trainer.max_steps", str(args.max_steps)] if args.max_steps else []
changes += ["--data.init_args.resolution", str(args.resolution)] if args.resolution else []
r = callback_overhead(args.config, [*changes, "--trainer.accelerator", args.accelerator,
                                    "--trainer.logger.init_args.save_dir", "runs/bench_callback"], args.repeats)
print(f"\n{args.config} {' '.join(changes)}")
print("| device | without (s) | with NTK callback (s) | ratio (median) | ratio range | measurements | s per measurement |")
print("|---|---|---|---|---|---|---|")
print(f"| {r['device']} | {r['without_s']:.1f} | {r['with_s']:.1f} | {r['ratio']:.3f} | "
      f"{r['ratio_min']:.3f}–{r['ratio_max']:.3f} | {r['measurements']} | {r['per_measurement_s']:.2f} |")
