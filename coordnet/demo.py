"""``coordnet demo``: fit the built-in camera image with SIREN and ReLU and print the final PSNRs.

    coordnet demo [--image camera] [--resolution 128] [--steps 400] [--save-dir runs/demo]
"""

from __future__ import annotations

import argparse

from coordnet.training.fitting import fit_image, siren_and_relu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="coordnet demo", description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="camera", help="built-in image name or file path (default: camera)")
    parser.add_argument("--resolution", type=int, default=128, help="side of the square image (default: 128)")
    parser.add_argument("--steps", type=int, default=400, help="full-batch Adam steps per network (default: 400)")
    parser.add_argument("--save-dir", default="runs/demo", help="TensorBoard log root (default: runs/demo)")
    args = parser.parse_args(argv)
    if args.steps <= 0:
        parser.error(f"--steps must be > 0, got {args.steps}")

    results = [fit_image(spec, args.image, args.resolution, args.steps, save_dir=args.save_dir)
               for spec in siren_and_relu()]
    print(f"\n{args.image} {args.resolution}×{args.resolution}, {args.steps} full-batch Adam steps, "
          f"device {results[0].device}\n")
    print("| network | init | lr | final PSNR (dB) | s/step | wall (s) | logs |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.spec.name} {r.spec.depth}×{r.spec.hidden} | {r.init} | {r.spec.lr:g} | {r.final_psnr:.2f} "
              f"| {r.step_time:.3f} | {r.seconds:.1f} | {r.log_dir} |")
    print(f"\nTensorBoard: tensorboard --logdir {args.save_dir}")
