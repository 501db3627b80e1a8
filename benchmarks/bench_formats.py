"""Encode/decode throughput of lowbit.models.formats against ml_dtypes' astype.

Target (issues 2 and 14): encoding 10^7 float32 values to e4m3 and e5m2, and decoding them
back, no slower than ml_dtypes in the same run (ratio <= 1.0).  Both sides produce the same
outputs: codes (uint8) from float32, and float64 values from codes (ml_dtypes'
``astype(np.float64)``).  The machines are shared and noisy, so every figure is the best of
``--repeat`` runs and the two sides of a ratio are timed alternately in the same loop.  A copy
of the same float32 array (``x.copy()``: read 4 bytes, write 4 bytes per value) is printed
beside them as the memory-bandwidth floor, and each encode time as a multiple of it.

    python benchmarks/bench_formats.py [--n 10000000] [--repeat 7]
"""

import argparse
import time

import ml_dtypes
import numpy as np

from lowbit.models import formats


def best_pair(f, g, repeat):
    """Best times of ``f`` and ``g``, run alternately ``repeat`` times each."""
    tf, tg = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        tf.append(time.perf_counter() - t)
        t = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t)
    return min(tf), min(tg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n) * rng.choice([1e-3, 1.0, 100.0], args.n)).astype(np.float32)
    print(f"{args.n:,} float32 values, best of {args.repeat} (sides of a ratio timed alternately)")
    rows = []
    for fmt, dt in [(formats.e4m3, ml_dtypes.float8_e4m3fn), (formats.e5m2, ml_dtypes.float8_e5m2)]:
        codes = fmt.encode(x)                                # builds the tables outside the timing
        ref = x.astype(dt)
        assert np.array_equal(codes, ref.view(np.uint8)), "encode disagrees with ml_dtypes"
        assert np.array_equal(fmt.decode(codes), ref.astype(np.float64), equal_nan=True), \
            "decode disagrees with ml_dtypes"
        ours_e, theirs_e = best_pair(lambda: fmt.encode(x), lambda: x.astype(dt), args.repeat)
        ours_d, theirs_d = best_pair(lambda: fmt.decode(codes), lambda: ref.astype(np.float64),
                                     args.repeat)
        copy, _ = best_pair(x.copy, lambda: None, args.repeat)
        rows.append((fmt.name, ours_e, theirs_e, ours_d, theirs_d, copy))
    copy = min(r[5] for r in rows)
    print(f"copy of the float32 array (memory-bandwidth floor): {copy:.4f} s")
    print(f"{'format':8} {'op':7} {'lowbit s':>9} {'ml_dtypes s':>11} {'ratio':>6} {'x copy':>7}")
    worst = {}
    for name, ours_e, theirs_e, ours_d, theirs_d, _ in rows:
        for op, a, b in (("encode", ours_e, theirs_e), ("decode", ours_d, theirs_d),
                         ("both", ours_e + ours_d, theirs_e + theirs_d)):
            print(f"{name:8} {op:7} {a:9.4f} {b:11.4f} {a / b:6.2f} {a / copy:7.1f}")
            worst[op] = max(worst.get(op, 0.0), a / b)
    print("worst ratio lowbit/ml_dtypes: " + ", ".join(f"{op} {r:.2f}" for op, r in worst.items())
          + " (target <= 1.0)")


if __name__ == "__main__":
    main()
