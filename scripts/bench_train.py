"""Per-step time of CoordNetModule under the Lightning Trainer against a plain PyTorch loop.

    python scripts/bench_train.py [--accelerator cpu] [--repeats 3]

Same model (3 hidden sine layers, SIREN init), data (camera, full batch) and Adam, at 64×64 / width 64 and
128×128 / width 256. The loops alternate step by step in one process (coordnet.experiments.benchmarks); each
run's ratio is total Lightning time over total plain time. Target on CPU: ratio ≤ 1.15.
"""

import argparse

from coordnet.experiments.benchmarks import compare_training_loops

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu (default: auto)")
parser.add_argument("--repeats", type=int, default=5, help="interleaved runs per size (default: 5)")
args = parser.parse_args()

# (resolution, width, steps per run): about 5-20 s each on a 2-core CPU
rows = [compare_training_loops(res, width, steps, args.repeats, args.accelerator)
        for res, width, steps in ((64, 64, 300), (128, 256, 60))]
print("\n| image | width | device | plain loop (ms/step) | Lightning (ms/step) | ratio (median) | ratio range |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['resolution']}² | {r['width']} | {r['device']} | {r['plain_ms']:.2f} | {r['lightning_ms']:.2f} "
          f"| {r['ratio']:.3f} | {r['ratio_min']:.3f}–{r['ratio_max']:.3f} |")
