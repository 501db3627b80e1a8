"""Encode/decode throughput of lowbit.models.formats against ml_dtypes' astype.

Target (issue 2): encoding 10^7 float32 values to e4m3 and e5m2 and decoding them back
no slower than ml_dtypes in the same run (ratio <= 1.0).  Both sides produce the same
outputs: codes (uint8) from float32, and float64 values from codes (ml_dtypes'
``astype(np.float64)``).  Best of several repeats, one core.

    python benchmarks/bench_formats.py [--n 10000000] [--repeat 5]
"""

import argparse
import time

import ml_dtypes
import numpy as np

from lowbit.models import formats


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n) * rng.choice([1e-3, 1.0, 100.0], args.n)).astype(np.float32)
    print(f"{args.n:,} float32 values, best of {args.repeat}")
    print(f"{'format':8} {'op':7} {'lowbit s':>9} {'ml_dtypes s':>11} {'ratio':>6}")
    worst = 0.0
    for fmt, dt in [(formats.e4m3, ml_dtypes.float8_e4m3fn), (formats.e5m2, ml_dtypes.float8_e5m2)]:
        codes = fmt.encode(x)
        ref = x.astype(dt)
        assert np.array_equal(codes, ref.view(np.uint8)), "encode disagrees with ml_dtypes"
        fmt.decode(codes)                                  # build tables outside the timing
        ours_e = best(lambda: fmt.encode(x), args.repeat)
        theirs_e = best(lambda: x.astype(dt), args.repeat)
        ours_d = best(lambda: fmt.decode(codes), args.repeat)
        theirs_d = best(lambda: ref.astype(np.float64), args.repeat)
        for op, a, b in (("encode", ours_e, theirs_e), ("decode", ours_d, theirs_d),
                         ("both", ours_e + ours_d, theirs_e + theirs_d)):
            print(f"{fmt.name:8} {op:7} {a:9.3f} {b:11.3f} {a / b:6.2f}")
            worst = max(worst, a / b)
    print(f"worst ratio lowbit/ml_dtypes: {worst:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
