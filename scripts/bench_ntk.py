"""The layer-wise empirical NTK against the torch.func Jacobian-contraction recipe, side by side.

    python scripts/bench_ntk.py [--device cpu] [--skip-large]

Table 1 (single-threaded, float32): MLP 2→512×4→O, cos(s=1) and ReLU, N = 512, 1024, 2048 (O = 1) and
N = 1024 (O = 3): time and peak memory above the model of each method, and the speed-up. Targets: ≥100× at
N = 2048, O = 1; ≥200× at N = 1024, O = 3; layer-wise peak ≤150 MB at N = 2048.
Table 2: the layer-wise path alone, 2→1024×4→1, float64 kernel and its spectrum, N = 512 … 8192, and the
fitted exponent of time against N. Target: N = 8192 within 4 GB peak RSS.
"""

import argparse

from coordnet.experiments.ntk_benchmarks import NTKCase, measure
from coordnet.experiments.reporting import loglog_slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--skip-large", action="store_true", help="skip table 2 (the N = 8192 run takes minutes)")
    args = parser.parse_args()

    print(f"Table 1 — {args.device}, 1 thread, float32, MLP 2→512×4→O\n")
    print("| activation | N | O | recipe (s) | layer-wise (s) | speed-up | recipe peak (MB) | layer-wise peak (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    sizes = ((512, 1), (1024, 1), (2048, 1), (1024, 3)) + (((4096, 3),) if args.device.startswith("cuda") else ())
    for activation in ("cos", "relu"):
        for n, outputs in sizes:
            fast = measure(NTKCase("layerwise", activation, n, outputs, device=args.device))
            slow = measure(NTKCase("recipe", activation, n, outputs, device=args.device))
            if "error" in slow:
                print(f"| {activation} | {n} | {outputs} | {slow['error']} | {fast['seconds']:.3f} | — | — | "
                      f"{fast['peak_mb']:.0f} |", flush=True)
                continue
            print(f"| {activation} | {n} | {outputs} | {slow['seconds']:.2f} | {fast['seconds']:.3f} | "
                  f"{slow['seconds'] / fast['seconds']:.0f}× | {slow['peak_mb']:.0f} | {fast['peak_mb']:.0f} |", flush=True)

    if not args.skip_large:
        print(f"\nTable 2 — {args.device}, 1 thread, layer-wise float64 kernel + eigvalsh, MLP 2→1024×4→1\n")
        print("| N | kernel + spectrum (s) | peak RSS (MB) | λ_max |")
        print("|---|---|---|---|")
        ns, times = [512, 1024, 2048, 4096, 8192], []
        for n in ns:
            r = measure(NTKCase("layerwise", "cos", n, width=1024, dtype="float64", with_spectrum=True,
                                device=args.device))
            times.append(r["seconds"])
            print(f"| {n} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['lambda_max']:.4g} |", flush=True)
        print(f"\nfitted exponent of time vs N over N ∈ [{ns[0]}, {ns[-1]}]: {loglog_slope(ns, times):.2f}")


if __name__ == "__main__":  # measure() starts fresh processes, which import this file
    main()
