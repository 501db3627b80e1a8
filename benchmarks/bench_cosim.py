"""Vectors per second through cocotb with the lane wrapper of :mod:`lowbit.sim.cosim`.

Issue 3's target: the exhaustive check of all four FP8 multiplier pairs (4 x 65,536 = 262,144
vectors) in under 60 s on 2 cores. Until the FP8 multiplier exists this uses a STAND-IN of the
same shape: four registered 8 x 8-bit integer multipliers (unsigned x unsigned, signed x signed,
signed x unsigned, unsigned x signed: four distinct designs, so four builds, as for the four FP8
pairs), each checked exhaustively over its 65,536 operand pairs against NumPy. To point it at the
real unit, replace ``CASES`` with factories of the FP8 multiplier and its golden model.

Usage::

    python benchmarks/bench_cosim.py                 # 64 lanes, default simulator, warm cache
    python benchmarks/bench_cosim.py --cold          # fresh build cache: every build counted,
                                                     # Verilator's runtime library included
    python benchmarks/bench_cosim.py --lanes 16 64 128 --sim icarus

Prints, per lane count: build seconds, simulation seconds, total wall seconds for the four
exhaustive checks, CPU seconds (this process + builds + simulators; meaningful when other jobs
share the machine) and vectors/second (total wall time, builds included).
"""

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class IntMul8(wiring.Component):
    """Registered 8 x 8-bit integer multiplier (latency 1): ``p = a * b`` as a 16-bit
    two's-complement (signed operands) or unsigned product. Benchmark stand-in only."""

    latency = 1

    def __init__(self, a_signed, b_signed):
        self.a_signed, self.b_signed = bool(a_signed), bool(b_signed)
        super().__init__({"a": In(8), "b": In(8), "p": Out(16)})

    def elaborate(self, platform):
        m = Module()
        a = self.a.as_signed() if self.a_signed else self.a
        b = self.b.as_signed() if self.b_signed else self.b
        m.d.sync += self.p.eq(a * b)
        return m


def _golden(a, b, a_signed, b_signed):
    av = np.where(a >= 128, a - 256, a) if a_signed else a
    bv = np.where(b >= 128, b - 256, b) if b_signed else b
    return (av * bv) % 65536


CASES = [(f"{'s' if sa else 'u'}8 x {'s' if sb else 'u'}8", sa, sb)
         for sa, sb in ((False, False), (True, True), (True, False), (False, True))]


def run(lanes, sim):
    from lowbit.sim import cosim
    codes = np.arange(65536)
    a, b = codes & 0xFF, codes >> 8
    total_build = total_sim = 0.0
    c0 = _cpu()
    t0 = time.perf_counter()
    for label, sa, sb in CASES:
        out = cosim.run_lanes(lambda sa=sa, sb=sb: IntMul8(sa, sb), {"a": a, "b": b}, ["p"],
                              lanes=lanes, sim=sim)
        bad = int(np.count_nonzero(out["p"] != _golden(a, b, sa, sb)))
        if bad:
            raise SystemExit(f"{label}: {bad} mismatches")
        total_build += out.build_seconds
        total_sim += out.sim_seconds
    total = time.perf_counter() - t0
    return total_build, total_sim, total, _cpu() - c0


def _cpu():
    """CPU seconds of this process and its finished children (builds, simulators): a figure
    that stays meaningful when other jobs share the 2 cores."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[64])
    parser.add_argument("--sim", choices=("verilator", "icarus"))
    parser.add_argument("--cold", action="store_true",
                        help="use a fresh build cache (counts every build)")
    args = parser.parse_args(argv)
    if args.cold:
        os.environ["LOWBIT_CACHE"] = tempfile.mkdtemp(prefix="lowbit-bench-cosim-")
    from lowbit.sim import cosim
    sim = cosim.find_simulator(args.sim)
    vectors = 65536 * len(CASES)
    print(f"stand-in: 4 exhaustive 8x8-bit integer multipliers ({vectors:,} vectors) on {sim}, "
          f"{'cold' if args.cold else 'warm'} build cache, {os.cpu_count()} CPUs")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'lanes':>6} {'build s':>8} {'sim s':>7} {'total s':>8} {'CPU s':>7} {'vectors/s':>11}")
    for lanes in args.lanes:
        build, simt, total, cpu = run(lanes, sim)
        print(f"{lanes:>6} {build:>8.2f} {simt:>7.2f} {total:>8.2f} {cpu:>7.2f} "
              f"{vectors / total:>11,.0f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
