"""Exhaustive co-simulation of the four FP8 multiplier pairs (4 x 65,536 = 262,144 vectors).

Target (issue 3): under 60 s on 2 cores.  One Verilator build of a
:class:`~lowbit.sim.bank.Bank` holding the four FpMultiplier configurations (e4m3 x e4m3,
e5m2 x e5m2, e4m3 x e5m2, e5m2 x e4m3), lane-wrapped so each clock carries ``--lanes`` code
pairs; every pair drives all four units, so 65,536 pairs check 262,144 products.  Every result
is compared bit for bit with :func:`lowbit.models.mac.fp_mul`.

Prints the time of each phase (Verilog generation, build -- cached across runs under
$LOWBIT_CACHE/cosim --, simulation, golden model) and the vectors checked per second, end to end.

    python benchmarks/bench_cosim_fp8mul.py [--lanes 32] [--sim verilator]
"""

import argparse
import sys
import time

import numpy as np

from lowbit.hdl.fp_mul import FpMultiplier
from lowbit.sim.bank import Bank
from lowbit.models import mac
from lowbit.sim import cosim

PAIRS = [("e4m3", "e4m3"), ("e5m2", "e5m2"), ("e4m3", "e5m2"), ("e5m2", "e4m3")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=32)
    ap.add_argument("--sim", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    A, B = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    A, B = A.ravel(), B.ravel()

    def factory():
        return Bank({f"m_{a}_{b}": FpMultiplier(a, b) for a, b in PAIRS})

    outs = [f"m_{a}_{b}__p" for a, b in PAIRS]
    got = cosim.run_lanes(factory, {"a": A, "b": B, "valid": np.ones_like(A)}, outs,
                          lanes=args.lanes, sim=args.sim)
    t1 = time.perf_counter()
    bad = 0
    for a, b in PAIRS:
        bad += int((np.asarray(got[f"m_{a}_{b}__p"]) != mac.fp_mul(A, B, a, b)).sum())
    t2 = time.perf_counter()
    n = len(A) * len(PAIRS)
    print(f"simulator {got.simulator}, {args.lanes} lanes, {got.cycles} cycles")
    print(f"build (cached if 0.x s): {got.build_seconds:.1f} s; simulation: {got.sim_seconds:.1f} s;"
          f" Verilog generation and packing: {t1 - t0 - got.build_seconds - got.sim_seconds:.1f} s;"
          f" golden model and compare: {t2 - t1:.2f} s")
    print(f"vectors checked: {n}, mismatches: {bad}")
    print(f"end to end: {t2 - t0:.1f} s = {n / (t2 - t0):,.0f} vectors/s "
          f"(simulation alone {n / got.sim_seconds:,.0f} vectors/s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
