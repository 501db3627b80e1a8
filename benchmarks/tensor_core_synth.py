"""``lowbit synth`` of one instruction of each tensor-core family, and ECP5 Fmax with pipelining
(issue 15 section 3).

For each family (default: the seven algorithms of :data:`tensor_core_cosim.FAMILIES`, one
instruction each, plus the INT8 dot product of the same L as baseline) and each pipeline depth
given (``--pipeline``, default 0 2 4: the registers of ``TensorCoreDot`` at the cut points of
:data:`lowbit.hdl.tensor_core_dot.CUTS`; the INT8 baseline takes at most 2), the unit's
Verilog (:func:`lowbit.hdl.manifest.to_verilog`) goes through :func:`lowbit.fpga.synth.synth`
-- exactly what ``lowbit synth tensor-core-dot --preset P --pipeline N [--target ecp5]`` runs --

* ``generic`` (Yosys + ABC to the Nangate-45-like gate set): area in NAND2 equivalents,
  flip-flops, logic depth (``--no-generic`` skips it);
* ``ecp5`` (Yosys ``synth_ecp5``, nextpnr-ecp5 LFE5U-85F, the out-of-context wrapper that feeds
  every input from a shift register and captures every output, so a combinational unit is
  measured register to register): Fmax, LUT4, flip-flops, CCU2C carry cells, DSP blocks.

nextpnr's clock constraint (``--freq``, default 200 MHz) is above what these units reach, so
the frequency printed is what the design achieves with one placement seed (seeds vary it by a
few MHz).  Results are cached by input hash (:mod:`lowbit.fpga.cache`); cold, the large units
take minutes each on one core.

    python benchmarks/tensor_core_synth.py [--families T-FDPA ...] [--pipeline 0 2 4]
        [--freq 200] [--no-generic] [--no-ecp5]

Measured 2026-12-04 (``--pipeline 0 4``, 2-core shared machine, cold: 44 min wall in two processes),
ECP5 Fmax in MHz at pipeline 0 -> 4 (INT8 dot of the same L: 0 -> 2): T-FDPA Hopper e4m3
10.9 -> 37.7 (INT8 L=32 42.9 -> 71.7); ST-FDPA Blackwell MXFP8 9.1 -> 35.0; GST-FDPA
Blackwell NVFP4 12.0 -> 27.1 (INT8 L=64 34.8 -> 57.0); GTR-FDPA CDNA3 fp8 7.0 -> 13.3 (INT8
L=16 54.5 -> 91.0); TR-FDPA CDNA3 f16 7.4 -> 13.1 (INT8 L=8 62.6 -> 115.7); E-FDPA CDNA1 f16
8.2 -> 12.3 and CDNA2-FTZ bf16-1k 4.7 -> 14.3 (INT8 L=4 73.6 -> 136.4).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tensor_core_cosim import FAMILIES  # noqa: E402

from lowbit.fpga.synth import synth  # noqa: E402
from lowbit.hdl.manifest import to_verilog  # noqa: E402
from lowbit.hdl.tensor_core_dot import INT_DOT_MAX_PIPELINE as INT_MAX_PIPELINE  # noqa: E402
from lowbit.hdl.tensor_core_dot import IntDot, TensorCoreDot  # noqa: E402


def _units(families, depths):
    """``(label, unit)`` of each family at each depth, each INT8 baseline (its L, its own depth)
    once, before the first family that needs it."""
    seen = set()
    for fam in families:
        for p in depths:
            unit = TensorCoreDot(FAMILIES[fam], pipeline_stages=p)
            key = (unit.instruction.L, min(p, INT_MAX_PIPELINE))
            if key not in seen:
                seen.add(key)
                yield f"INT8 dot L={key[0]}", IntDot("int8", "int8", key[0], 32,
                                                     pipeline_stages=key[1])
            yield f"{fam} {FAMILIES[fam]}", unit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--pipeline", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--freq", type=float, default=200.0, help="nextpnr clock constraint, MHz")
    ap.add_argument("--no-generic", action="store_true")
    ap.add_argument("--no-ecp5", action="store_true")
    args = ap.parse_args(argv)
    print(f"generic: Yosys/ABC, NAND2 equivalents; ecp5: LFE5U-85F, nextpnr --freq {args.freq:g}")
    print(f"{'unit':54} {'p':>1} {'lat':>3} {'GE':>9} {'FF':>5} {'depth':>5} | "
          f"{'Fmax MHz':>8} {'LUT4':>6} {'FF':>5} {'CCU2C':>5} {'DSP':>3}", flush=True)
    for label, unit in _units(args.families, args.pipeline):
        p = unit.pipeline_stages
        top = "tc_" + "".join(c if c.isalnum() else "_" for c in label.lower()) + f"_p{p}"
        verilog = to_verilog(unit, top)
        g = e = None
        t0 = time.time()
        if not args.no_generic:
            g = synth(verilog, top, "generic", timeout=7200)
        if not args.no_ecp5:
            e = synth(verilog, top, "ecp5", freq_mhz=args.freq, timeout=7200)
        gen = (f"{g.area_ge:>9.1f} {g.flip_flops:>5} {g.logic_depth:>5}" if g
               else f"{'-':>9} {'-':>5} {'-':>5}")
        fp = (f"{e.fmax_mhz:>8.1f} {e.luts:>6} {e.flip_flops:>5} {e.carry:>5} {e.dsp:>3}" if e
              else f"{'-':>8} {'-':>6} {'-':>5} {'-':>5} {'-':>3}")
        print(f"{label:54} {p:>1} {unit.latency:>3} {gen} | {fp}", flush=True)
        print(f"  ({top}: {time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
