"""What ``import coordnet.ntk`` (and ``coordnet.models``) costs on top of ``import torch``, measured side by side.

    python scripts/bench_import.py [--repeats 5]

Each import runs in a fresh interpreter, the three commands interleaved so that a busy machine slows all of
them alike; prints the median wall time of each and the difference from torch's, and the heavy packages
(Lightning, TensorBoard, matplotlib) that ``python -X importtime`` shows each import loading (none expected).
"""

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("pytorch_lightning", "lightning", "tensorboard", "matplotlib")
IMPORTS = ("torch", "coordnet.models", "coordnet.ntk")


def seconds(module: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - start


def heavy_imports(module: str) -> list[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, check=True)
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    return sorted({n.split(".")[0] for n in names if n.split(".")[0] in HEAVY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each import (default: 5)")
    args = parser.parse_args()
    for module in IMPORTS:  # warm the file cache: the first run of each reads its files from disk
        seconds(module)
    times = {module: [] for module in IMPORTS}
    for _ in range(args.repeats):
        for module in IMPORTS:
            times[module].append(seconds(module))
    base = statistics.median(times["torch"])
    print(f"| import | median of {args.repeats} (s) | − torch (s) | heavy packages loaded |\n|---|---|---|---|")
    for module in IMPORTS:
        median = statistics.median(times[module])
        print(f"| {module} | {median:.3f} | {median - base:+.3f} | {', '.join(heavy_imports(module)) or 'none'} |")


if __name__ == "__main__":
    main()
