"""Generic-synthesis cell counts: MXFP8 k=32 dot unit vs 32 FP8 MACs vs an INT8 k=32 dot.

Usage: python benchmarks/mx_synth_compare.py [k]

* ``MxDotUnit("mxfp8_e4m3", k)`` (default knobs: frac_bits 26, cut toward zero, FP32
  nearest-even, accumulator in the max exponent, 1 input register stage);
* the same with the H100 knobs (frac_bits 13, terms cut toward zero, FP22 toward zero; the
  ``h100_fp8`` preset of ``lowbit.models.shared_exp``, measured on an H100);
* ``FpMac(e4m3, e4m3, fp32, mode="fused")`` synthesised once and multiplied by k (k
  separate MACs, no sharing);
* an INT8 k-term dot product (k int8 x int8 products, adder tree, 32-bit wrapping
  accumulator register), defined here.

Each is synthesised with :func:`lowbit.fpga.synth.synth` (Yosys generic flow, Nangate45-like
gate set, area in NAND2 equivalents).  First run takes minutes; results are cached.
"""

import argparse
import time

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.fpga.synth import synth
from lowbit.hdl.fp_mac import FpMac
from lowbit.hdl.manifest import to_verilog
from lowbit.hdl.mx_dot import MxDotUnit


class Int8Dot(wiring.Component):
    """k int8 x int8 products summed into a 32-bit wrapping accumulator register."""

    def __init__(self, k):
        self._k = k
        super().__init__({"a": In(8 * k), "b": In(8 * k), "valid": In(1), "first": In(1),
                          "o": Out(signed(32))})

    def elaborate(self, platform):
        m = Module()
        k = self._k
        prods = [self.a[8 * i:8 * i + 8].as_signed() * self.b[8 * i:8 * i + 8].as_signed()
                 for i in range(k)]
        level = prods
        while len(level) > 1:
            nxt = [level[j] + level[j + 1] for j in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        s = Signal(signed(32))
        m.d.comb += s.eq(level[0])
        acc = Signal(signed(32))
        with m.If(self.valid):
            m.d.sync += acc.eq((acc & ~self.first.replicate(32)) + s)
        m.d.comb += self.o.eq(acc)
        return m


def run(name, comp, top, mult=1):
    t = time.perf_counter()
    r = synth(to_verilog(comp, top), top, "generic")
    dt = time.perf_counter() - t
    cells = sum(r.cells.values())
    print(f"{name:44s} cells {cells * mult:9d}  area {r.area_ge * mult:10.0f} GE  "
          f"FFs {r.flip_flops * mult:6d}  depth {r.logic_depth:4d}  ({dt:.0f} s"
          f"{', cached' if r.from_cache else ''})", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("k", nargs="?", type=int, default=32, help="block length (default 32)")
    k = ap.parse_args(argv).k
    run(f"MxDotUnit mxfp8_e4m3 k={k} (F=26, RNE FP32)", MxDotUnit("mxfp8_e4m3", k=k), "mx_dot")
    run(f"MxDotUnit mxfp8_e4m3 k={k} (H100 F=13)",
        MxDotUnit("mxfp8_e4m3", k=k, frac_bits=13, cut="toward_zero", norm_frac_bits=13,
                  norm_rounding="toward_zero"), "mx_dot_h100")
    run(f"{k} x FpMac e4m3 -> fp32 fused", FpMac("e4m3", "e4m3", "fp32", mode="fused"),
        "fp_mac", mult=k)
    run(f"INT8 dot k={k} (int32 acc)", Int8Dot(k), "int8_dot")


if __name__ == "__main__":
    main()
