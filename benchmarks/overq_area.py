"""Measured cost of OverQ: synthesise the OverQ PE and the plain b-bit PE with the same
accumulator and print the area ratio.

Both units are the standalone streaming PEs of :mod:`lowbit.hdl.overq_pe` (same ports except
``meta``, same ``acc_bits`` accumulator register, latency 1).  The OverQ PE adds a register for
the previous weight (in a weight-stationary array this is the stationary weight of the PE above,
a wire, so the WS step's overhead is smaller; the combinational steps are synthesised too),
the weight mux and the shift mux.  With precision overwrite the accumulator keeps the same
width but counts in units of ``2^-b``, so it has ``b`` bits less headroom; the row
``+prec, acc+b`` restores equal headroom.

Flows: ``lowbit.fpga.synth`` (Yosys generic synthesis to a Nangate-45-like cell set, area in
NAND2 equivalents; iCE40 UP5K / ECP5 with nextpnr, LUT4 / FF / carry / DSP counts, cached).
If ``lowbit.fpga.synth`` is missing, Amaranth's builtin Yosys ``synth; stat`` cell count is used.

Run: ``python benchmarks/overq_area.py [--targets generic,ice40] [--bits 4,8] [--acc-bits 32]``
"""

import argparse
import time

from lowbit.hdl.manifest import to_verilog
from lowbit.hdl.overq_pe import IntPe, IntPeStep, OverqPe, OverqStep


def variants(b, acc):
    w = b
    yield "plain int PE", "int_pe", IntPe(b, w, acc)
    yield "overq c=0 (1 meta bit)", "overq_pe", OverqPe(b, w, acc, cascade=0, precision=False)
    yield "overq c>=1 (2 meta bits)", "overq_pe", OverqPe(b, w, acc, cascade=1, precision=False)
    yield "overq c>=1 +prec", "overq_pe", OverqPe(b, w, acc, cascade=1, precision=True)
    yield "overq c>=1 +prec, shift operands", "overq_pe", OverqPe(b, w, acc, cascade=1,
                                                                  precision=True, shift_at="operands")
    if acc + b <= 64:
        yield f"overq c>=1 +prec, acc+{b}", "overq_pe", OverqPe(b, w, acc + b, cascade=1,
                                                                precision=True)
    yield "plain WS step (comb.)", "int_pe_step", IntPeStep(b, w, acc)
    yield "overq WS step +prec (comb.)", "overq_step", OverqStep(b, w, acc, cascade=1,
                                                                 precision=True)


def builtin_yosys_cells(text, top):
    """Fallback: total cell count of Amaranth's builtin Yosys ``synth -top; stat``."""
    import re
    import tempfile
    from pathlib import Path

    from amaranth._toolchain.yosys import find_yosys

    yosys = find_yosys(lambda ver: ver >= (0, 10))
    with tempfile.TemporaryDirectory() as d:
        Path(d, "d.v").write_text(text)
        out = yosys.run(["-q", "-p", f"read_verilog {d}/d.v; synth -top {top}; tee -o {d}/s.txt stat"])
        stat = Path(d, "s.txt").read_text()
    m = re.findall(r"Number of cells:\s+(\d+)", stat)
    return int(m[-1]) if m else None, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="generic,ice40", help="comma list of generic, ice40, ecp5")
    ap.add_argument("--bits", default="4,8", help="comma list of code widths (weights the same)")
    ap.add_argument("--acc-bits", type=int, default=32)
    args = ap.parse_args(argv)
    targets = args.targets.split(",")
    try:
        from lowbit.fpga import synth as fsynth
    except ImportError:
        fsynth = None
        print("lowbit.fpga.synth not available: Amaranth builtin Yosys cell counts only")
        targets = ["builtin"]
    t0 = time.perf_counter()
    for b in (int(v) for v in args.bits.split(",")):
        for target in targets:
            rows = []
            base = {}
            for label, top, comp in variants(b, args.acc_bits):
                text = to_verilog(comp, top)
                if fsynth is None:
                    cells, _ = builtin_yosys_cells(text, top)
                    rows.append((label, {"cells": cells}))
                    continue
                r = fsynth.synth(text, top, target)
                if target == "generic":
                    fig = {"area_ge": r.area_ge, "ff": r.flip_flops, "depth": r.logic_depth}
                else:
                    fig = {"lut4": r.luts, "ff": r.flip_flops, "carry": r.carry, "dsp": r.dsp,
                           "fmax": r.fmax_mhz}
                rows.append((label, fig))
            print(f"\n== b={b}, w={b}, acc_bits={args.acc_bits}, target {target} ==")
            key = {"generic": "area_ge", "builtin": "cells"}.get(target, "lut4")
            cols = list(rows[0][1])
            print(f"{'unit':<32}" + "".join(f"{c:>10}" for c in cols) + f"{'ratio':>8}")
            for label, fig in rows:
                if "step" in label:
                    ref = base.setdefault("step", fig) if label.startswith("plain") else base["step"]
                else:
                    ref = base.setdefault("pe", fig) if label.startswith("plain") else base["pe"]
                ratio = f"{fig[key] / ref[key]:>8.3f}" if ref[key] else f"{'n/a':>8}"
                cells = "".join(f"{'-' if v is None else (f'{v:.1f}' if isinstance(v, float) else v):>10}"
                                for v in fig.values())
                print(f"{label:<32}{cells}{ratio}")
    print("\nOn FPGA targets the ratio counts LUT4s only: compare the DSP and carry columns too "
          "(iCE40: a plain 8x8 MAC fits one SB_MAC16 with its accumulator, the OverQ shift mux "
          "between product and accumulator moves the adder into LUTs).")
    print(f"ratio: {key} relative to the plain PE (or plain step) with the same accumulator "
          f"({time.perf_counter() - t0:.0f} s, results cached by lowbit.fpga)")


if __name__ == "__main__":
    main()
