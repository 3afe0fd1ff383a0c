"""λ_min and condition number of the NTK while cos and ReLU networks fit the camera image.

    python scripts/ntk_cos_vs_relu.py [--max-steps 2000] [--resolution 256] [--save-dir runs] [--out FIG.png]
    python scripts/ntk_cos_vs_relu.py --runs runs/camera_cos/version_0 runs/camera_relu/version_0   # plot only

Trains configs/camera_cos.yaml and configs/camera_relu.yaml as shipped (their NTKSpectrumCallback
on: 1024 pixels, every 100 steps), then plots both runs' ntk_spectrum.csv and prints the first and
last measurements.
"""

import argparse

from coordnet.experiments.config_runs import CONFIG_DIR, fit_config
from coordnet.ntk.history import read_history
from coordnet.ntk.plots import history_figure

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max-steps", type=int, default=2000, help="optimiser steps per run (default: 2000)")
parser.add_argument("--resolution", type=int, default=256, help="image side in pixels (default: 256, as shipped)")
parser.add_argument("--save-dir", default="runs", help="TensorBoard root of the two runs (default: runs)")
parser.add_argument("--runs", nargs=2, metavar=("COS_RUN", "RELU_RUN"),
                    help="plot these two finished run directories instead of training")
parser.add_argument("--out", default="docs/ntk_camera_cos_vs_relu.png", help="where to write the figure")
args = parser.parse_args()

histories = {}
for i, (label, name) in enumerate((("cos(5x), He", "camera_cos"), ("ReLU, He", "camera_relu"))):
    if args.runs:
        histories[label] = read_history(args.runs[i])
        continue
    trainer, seconds = fit_config(CONFIG_DIR / f"{name}.yaml", [
        "--trainer.max_steps", str(args.max_steps), "--data.init_args.resolution", str(args.resolution),
        "--trainer.logger.init_args.save_dir", args.save_dir])
    histories[label] = read_history(trainer.log_dir)
    print(f"{name}: {seconds:.0f} s, run directory {trainer.log_dir}")

print("\n| network | step | λ_min | λ_max | condition number | kernel distance to step 0 |")
print("|---|---|---|---|---|---|")
for label, h in histories.items():
    for i in (0, -1):
        print(f"| {label} | {h['step'][i]:.0f} | {h['lambda_min'][i]:.4g} | {h['lambda_max'][i]:.4g} "
              f"| {h['condition_number'][i]:.4g} | {h['kernel_distance_init'][i]:.3g} |")
fig = history_figure(histories, ("lambda_min", "condition_number"),
                     title=f"Empirical NTK on 1024 pixels of camera {args.resolution}² (raw JJᵀ)")
fig.savefig(args.out, dpi=120)
print(f"wrote {args.out}")
