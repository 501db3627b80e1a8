"""ECP5 Fmax of systolic arrays with pipelined PEs (issue 16 sections 1 and 4).

For each array (default: the 4 x 4 weight-stationary FP8 E4M3 -> FP32 fused array and the 4 x 4
INT8 array, INT32 accumulator), at the PE depths given, runs :func:`lowbit.fpga.synth.synth`
with ``target="ecp5"`` (Yosys ``synth_ecp5``, nextpnr-ecp5 LFE5U-85F, speed grade 6, the
out-of-context wrapper whose only clock is the array's ``clk``) on the array's hierarchical
Verilog (:func:`lowbit.hdl.manifest.to_verilog`) and prints Fmax, LUT4, flip-flops, carry
cells and DSP blocks, with the array's latency and its fold period for a 64 x 64 x 64 GEMM
(the cycle cost of the depth). Results are cached by input hash (:mod:`lowbit.fpga.cache`).

nextpnr's clock constraint (``--freq``, default 200 MHz) is above the targets (100 MHz FP8,
150 MHz INT8), so the reported frequency is what the design reaches. One placement seed per
configuration (``--seeds`` for more): place-and-route varies by a few MHz to ~10 %.

Run (several minutes per FP configuration cold, one core; nice it on a shared machine)::

    nice -n 10 python benchmarks/ecp5_systolic_pipelined.py [--rows 4 --cols 4]
        [--fp-stages 1 6] [--int-stages 1 2 3] [--freq 200] [--seeds 1]
"""

import argparse
import sys
import time

from lowbit.fpga.synth import synth
from lowbit.hdl.manifest import to_verilog
from lowbit.hdl.systolic import SystolicArray


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--fp-pe", default="e4m3_fp32")
    ap.add_argument("--int-pe", default="int8")
    ap.add_argument("--fp-stages", type=int, nargs="*", default=[1, 6])
    ap.add_argument("--int-stages", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--dataflow", default="ws")
    ap.add_argument("--freq", type=float, default=200.0, help="nextpnr clock constraint, MHz")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    args = ap.parse_args(argv)
    R, C = args.rows, args.cols
    print(f"ECP5 LFE5U-85F speed grade 6, nextpnr --freq {args.freq:g}; {R} x {C} "
          f"{args.dataflow} arrays")
    print(f"{'pe':14} {'S':>2} {'latency':>7} {'P(64^3)':>7} {'Fmax MHz':>16} {'LUT4':>6} "
          f"{'FF':>6} {'CCU2C':>5} {'DSP':>3}")
    todo = [(args.fp_pe, s) for s in args.fp_stages] + [(args.int_pe, s) for s in args.int_stages]
    for pe, S in todo:
        array = SystolicArray(R, C, pe, dataflow=args.dataflow, pe_stages=S)
        top = "systolic_" + array.spec.key.replace("-", "_") + f"_{args.dataflow}_s{S}"
        verilog = to_verilog(array, top)
        fmax, r = [], None
        for seed in args.seeds:
            t0 = time.time()
            r = synth(verilog, top, "ecp5", freq_mhz=args.freq, seed=seed, timeout=7200)
            fmax.append(r.fmax_mhz)
            print(f"  ({top} seed {seed}: {r.fmax_mhz} MHz, "
                  f"{'cached' if r.from_cache else f'{time.time() - t0:.0f} s'})",
                  file=sys.stderr, flush=True)
        f = f"{min(fmax):.1f}" if len(fmax) == 1 else f"{min(fmax):.1f}..{max(fmax):.1f}"
        P = array.gemm_cycles(64, 64, 64).fold_period
        print(f"{pe:14} {S:>2} {array.latency:>7} {P:>7} {f:>16} {r.luts:>6} {r.flip_flops:>6} "
              f"{r.carry:>5} {r.dsp:>3}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
