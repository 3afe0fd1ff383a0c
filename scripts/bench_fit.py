"""Train PSNR of SIREN and ReLU on camera 128×128 after 100/250/500 full-batch Adam steps, and step time.

    python scripts/bench_fit.py [--accelerator cpu] [--resolution 128] [--steps 500]

Networks: sine 3×256 (ω0 = 30, SIREN init, lr 1e-4) and ReLU 3×256 (He init, lr 1e-3), protocol
memorize. Target: sine ≥ 35 dB by step 500.
"""

import argparse

from coordnet.training.fitting import fit_image, siren_and_relu

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto (default: cpu)")
parser.add_argument("--resolution", type=int, default=128)
parser.add_argument("--steps", type=int, default=500)
args = parser.parse_args()

checkpoints = tuple(s for s in (100, 250, 500) if s < args.steps) + (args.steps,)
results = [fit_image(spec, "camera", args.resolution, args.steps, checkpoints, save_dir="runs/bench_fit",
                     progress=False, accelerator=args.accelerator) for spec in siren_and_relu()]
print(f"\ncamera {args.resolution}×{args.resolution}, full-batch Adam, device {results[0].device}\n")
print("| network | lr | " + " | ".join(f"PSNR @{s} (dB)" for s in checkpoints) + " | ms/step |")
print("|---|---|" + "---|" * len(checkpoints) + "---|")
for r in results:
    print(f"| {r.spec.name} {r.spec.depth}×{r.spec.hidden} | {r.spec.lr:g} | "
          + " | ".join(f"{r.psnr_at[s]:.2f}" for s in checkpoints) + f" | {1e3 * r.step_time:.1f} |")
