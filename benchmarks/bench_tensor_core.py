"""Time lowbit.models.tensor_core: 10^6 dot products of the Hopper FP8 wgmma k32 instruction.

``instruction("Hopper", "m64n8k32.f32.e4m3.e4m3").dpa`` on 10^6 rows of 32 E4M3 pairs plus
an FP32 C, on one core, printed beside float64 NumPy products of the same shape measured
in the same run: the batched matmul ``(V, 1, 32) @ (V, 32, 1)`` and ``einsum("ik,ik->i")``
(best of ``--repeat`` runs each).  ``--all`` also times every instruction on the shipped
reference vectors (``tests/data/tensor_cores``), in dot products per second.

Usage: python benchmarks/bench_tensor_core.py [--rows V] [--repeat R] [--all]
"""

import argparse
import json
import os
import pathlib
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def best(f, repeat):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10 ** 6, help="dot products (default 10^6)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    ap.add_argument("--all", action="store_true", help="also time all 35 instructions")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"                   # one core, also for the reference
    import numpy as np
    from lowbit.models import formats
    from lowbit.models import tensor_core as tc

    V = args.rows
    rng = np.random.default_rng(0)
    e4m3 = formats.e4m3
    a = e4m3.encode(rng.standard_normal((V, 32)).astype(np.float32), saturate=True)
    b = e4m3.encode(rng.standard_normal((V, 32)).astype(np.float32), saturate=True)
    c = rng.standard_normal(V).astype(np.float32).view(np.uint32)
    ins = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    xa, xb = e4m3.decode(a), e4m3.decode(b)
    t_mm = best(lambda: np.matmul(xa[:, None, :], xb[:, :, None]), args.repeat)
    t_es = best(lambda: np.einsum("ik,ik->i", xa, xb), args.repeat)
    t_tc = best(lambda: ins.dpa(a, b, c), args.repeat)
    print(f"{V} dot products of Hopper wgmma m64n8k32.f32.e4m3.e4m3 (K = 32), one core, "
          f"best of {args.repeat}")
    print(f"  float64 matmul (V,1,32)@(V,32,1)  {t_mm:8.3f} s   1.0x")
    print(f"  float64 einsum ik,ik->i           {t_es:8.3f} s   {t_es / t_mm:5.2f}x")
    print(f"  tensor_core .dpa                  {t_tc:8.3f} s   {t_tc / t_mm:5.2f}x "
          f"(x{t_tc / t_es:.1f} the einsum), {V / t_tc / 1e6:.2f} M dots/s")
    if args.all:
        data = ROOT / "tests" / "data" / "tensor_cores"
        cases = json.loads((data / "cases.json").read_text())
        with np.load(data / "tensor_core_vectors_seed11.npz") as z:
            vec = {k: z[k] for k in z.files}
        print("all instructions, on the 2,048 shipped vectors each:")
        for name, cs in cases.items():
            ins = tc.instruction(cs["arch"], cs["instruction"])
            kw = {}
            if cs["block"]:
                kw = dict(scale_a=vec[name + "_sa"], scale_b=vec[name + "_sb"])
            t = best(lambda: ins.dpa(vec[name + "_a"], vec[name + "_b"], vec[name + "_c"], **kw),
                     args.repeat)
            print(f"  {name:40s} {ins.algorithm:10s} {2048 / t / 1e3:9.1f} k dots/s")


if __name__ == "__main__":
    main()
