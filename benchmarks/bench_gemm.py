"""Time lowbit.models.gemm on a 256 x 4096 x 256 FP8 product through each datapath.

Usage: python benchmarks/bench_gemm.py [M K N]
"""

import argparse
import time

import numpy as np

from lowbit.models import formats, gemm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", nargs="*", type=int, metavar="M K N", default=[256, 4096, 256],
                    help="GEMM shape (default 256 4096 256)")
    args = ap.parse_args(argv)
    if len(args.shape) != 3:
        ap.error("give M K N, three integers")
    M, K, N = args.shape
    rng = np.random.default_rng(0)
    for fa, fb in (("e4m3", "e4m3"), ("e5m2", "e4m3")):
        A = formats.get(fa).encode(rng.standard_normal((M, K)).astype(np.float32), saturate=True)
        B = formats.get(fb).encode(rng.standard_normal((K, N)).astype(np.float32), saturate=True)
        ref = None
        for dp in ("exact", "h100_fp8", "h100_fp8_tc"):
            t = time.perf_counter()
            out = gemm(A, B, fa, fb, dp)
            dt = time.perf_counter() - t
            if ref is None:
                ref = out
            err = np.abs(out.astype(np.float64) - ref).max()
            print(f"{fa} x {fb}  {M}x{K}x{N}  {dp:12s} {dt:7.2f} s   max |diff vs exact| {err:.3g}")


if __name__ == "__main__":
    main()
