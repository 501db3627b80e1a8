"""Time lowbit.models.gemm on a 256 x 4096 x 256 FP8 product, beside a float64 matmul.

Each datapath's time is printed with its ratio to a float64 NumPy matmul (``A @ B``) of the
same shape, measured in the same run (best of ``--repeat`` runs each, so that a busy
machine disturbs both alike).  BLAS runs on one thread unless ``--blas-threads`` says
otherwise (the model itself is single-threaded NumPy): the comparison is one core
against one core.  The operands are OCP FP8 codes of standard-normal values
(``--data uniform``: codes uniform over the finite codes, like the H100 measurements).

The configured datapaths run their fast path with the compiled grid-sum kernel of
``lowbit.models.jit`` when numba is installed (``pip install lowbit[fast]``), and again
with the NumPy passes alone (``[numpy]`` rows, the same bits).

Usage: python benchmarks/bench_gemm.py [M K N] [--repeat R] [--blas-threads T] [--data D]
Target (issue 15): the H100 GEMM under 20x the float64 matmul.

Measured 2026-12-04 (2-core Xeon with AVX-512, best of 7, normal data, 256 x 4096 x 256):
float64 matmul 8.7-9.6 ms; h100_fp8 14.4x (e4m3 x e4m3) and 15.4x (e5m2 x e4m3) with the
kernel, 29.6x and 32.4x with the NumPy passes; exact 10.6x / 11.5x.
"""

import argparse
import os
import sys
import time


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", nargs="*", type=int, metavar="M K N", default=[256, 4096, 256],
                    help="GEMM shape (default 256 4096 256)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads for the float64 reference (default 1)")
    ap.add_argument("--data", choices=("normal", "uniform"), default="normal",
                    help="operand distribution (default normal)")
    args = ap.parse_args(argv)
    if len(args.shape) != 3:
        ap.error("give M K N, three integers")
    return args


def best(f, repeat):
    t = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - t0)
    return t, out


def main(argv=None):
    args = _args(argv)
    # the BLAS thread count must be fixed before NumPy loads its BLAS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads)
    import numpy as np
    from lowbit.models import formats, gemm, jit

    M, K, N = args.shape
    rng = np.random.default_rng(0)
    print(f"GEMM {M} x {K} x {N}, {args.data} FP8 operands, BLAS threads {args.blas_threads}, "
          f"best of {args.repeat}; compiled kernel: "
          f"{'on' if jit.enabled() else 'off (numba not installed or LOWBIT_JIT=0)'}")
    for fa, fb in (("e4m3", "e4m3"), ("e5m2", "e4m3")):
        fmt_a, fmt_b = formats.get(fa), formats.get(fb)
        if args.data == "normal":
            A = fmt_a.encode(rng.standard_normal((M, K)).astype(np.float32), saturate=True)
            B = fmt_b.encode(rng.standard_normal((K, N)).astype(np.float32), saturate=True)
        else:
            fin_a = np.nonzero(np.isfinite(fmt_a.decode(fmt_a.all_codes())))[0]
            fin_b = np.nonzero(np.isfinite(fmt_b.decode(fmt_b.all_codes())))[0]
            A = rng.choice(fin_a, (M, K)).astype(np.uint8)
            B = rng.choice(fin_b, (K, N)).astype(np.uint8)
        xa, xb = fmt_a.decode(A), fmt_b.decode(B)
        t_ref, _ = best(lambda: xa @ xb, args.repeat)
        print(f"  {fa} x {fb}  float64 matmul            {t_ref * 1e3:9.1f} ms      1.0x")
        runs = [("h100_fp8", True), ("h100_fp8_fast_accum", True), ("exact", True)]
        if jit.enabled():
            runs[1:1] = [("h100_fp8", False)]
        ref = {}
        for dp, kernel in runs:
            old = jit.set_enabled(kernel and jit.enabled())
            try:
                t, out = best(lambda: gemm(A, B, fa, fb, dp), args.repeat)
            finally:
                jit.set_enabled(old)
            if dp in ref and not np.array_equal(ref[dp].view(np.uint32), out.view(np.uint32)):
                raise SystemExit(f"{dp}: the two engines disagree")
            ref[dp] = out
            name = dp if kernel else f"{dp} [numpy]"
            print(f"  {fa} x {fb}  {name:24s} {t * 1e3:9.1f} ms  {t / t_ref:8.1f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
