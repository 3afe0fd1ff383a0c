"""Member-steps per second of an ensemble against single fits, side by side in one run.

    python scripts/bench_ensemble.py [--members 1 4 16 64] [--quick]

SIREN 3 × width on camera, Adam, through coordnet's Trainer on both sides (coordnet.experiments.ensemble_benchmarks),
at 32²/width 32, 64²/width 64 and 128²/width 256. Goals (issue 16): on the 2-core CPU, M = 16 at 32²/32 at least 4×
the single path; on a GPU, M = 64 at 128²/256 at least 8×.
"""

import argparse

from coordnet.experiments.ensemble_benchmarks import compare

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64], help="ensemble sizes M")
parser.add_argument("--quick", action="store_true", help="fewer steps, for a first look")
args = parser.parse_args()

scale = 5 if args.quick else 1
sizes = [(32, 32, 1000 // scale), (64, 64, 300 // scale), (128, 256, 30 // scale)]
rows = compare(sizes, args.members)
print("\n| image | width | device | M | steps | ensemble (member-steps/s) | single (member-steps/s) | ratio |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['resolution']}² | {r['width']} | {r['device']} | {r['members']} | {r['steps']} | {r['ensemble']:.1f} "
          f"| {r['single']:.1f} | {r['ratio']:.2f}× |")
