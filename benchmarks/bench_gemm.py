"""Time lowbit.models.gemm on a 256 x 4096 x 256 FP8 product through each datapath.

Usage: python benchmarks/bench_gemm.py [M K N]
"""

import sys
import time

import numpy as np

from lowbit.models import formats, gemm


def main(argv):
    M, K, N = (int(v) for v in argv[:3]) if len(argv) >= 3 else (256, 4096, 256)
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
    main(sys.argv[1:])
