"""ECP5 timing of the pipelined MACs (issue 7 section 4: >= 150 MHz each).

For the INT8 MAC (INT32 accumulator) and the FP8 E4M3 MAC with the exact fixed-point (Kulisch)
accumulator (FP32 read-out, default 4096-term register), at every ``pipeline_stages``, runs
:func:`lowbit.fpga.synth.synth` with ``target="ecp5"`` (Yosys ``synth_ecp5``, nextpnr-ecp5
LFE5U-85F, default speed grade 6, the out-of-context wrapper whose only clock is the unit's
``clk``) and prints Fmax, LUT4, flip-flops, carry cells (CCU2C) and DSP blocks of the unit.

nextpnr's clock constraint is set above the target (``--freq``, default 200 MHz) so that the
placer and router work for speed and the reported "achieved" frequency is what the design
reaches, not a constraint that was merely met.  Place-and-route is seed-sensitive (a few MHz
to ~10 %), so the deepest configurations are run with several seeds (``--seeds``) and the
minimum and maximum are printed.  Results are cached (``~/.cache/lowbit/synth``).

Run (about 4 minutes cold on one core; nice it on a shared machine)::

    nice -n 10 python benchmarks/ecp5_timing.py [--freq 200] [--seeds 1 2 3] [--all-seeds]
"""

import argparse
import sys
import time

from lowbit.fpga.synth import synth
from lowbit.hdl.fp_mac import KULISCH_CUTS, FpMac
from lowbit.hdl.int_mac import MAX_PIPELINE, IntMac
from lowbit.hdl.manifest import to_verilog

TARGET_MHZ = 150.0


def units():
    for s in range(MAX_PIPELINE + 1):
        yield "int8", s, lambda s=s: IntMac("int8", "int8", 32, pipeline_stages=s)
    for s in range(len(KULISCH_CUTS) + 1):
        yield "e4m3-kulisch", s, lambda s=s: FpMac("e4m3", "e4m3", "fp32", "kulisch",
                                                  pipeline_stages=s)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freq", type=float, default=200.0, help="nextpnr clock constraint, MHz")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                    help="placement seeds for the deepest pipeline of each unit")
    ap.add_argument("--all-seeds", action="store_true", help="every depth with every seed")
    args = ap.parse_args(argv)
    rows = list(units())
    deepest = {}
    for name, s, _ in rows:
        deepest[name] = max(deepest.get(name, 0), s)
    print(f"ECP5 LFE5U-85F speed grade 6, nextpnr --freq {args.freq:g}, target {TARGET_MHZ:g} MHz")
    print(f"{'unit':14} {'stages':>6} {'latency':>7} {'Fmax MHz (seeds)':>26} {'LUT4':>5} "
          f"{'FF':>4} {'CCU2C':>5} {'DSP':>3}")
    ok = True
    for name, s, make in rows:
        comp = make()
        top = f"{name.replace('-', '_')}_p{s}"
        verilog = to_verilog(comp, top)
        seeds = args.seeds if (args.all_seeds or s == deepest[name]) else args.seeds[:1]
        fmax, r = [], None
        for seed in seeds:
            t0 = time.time()
            r = synth(verilog, top, "ecp5", freq_mhz=args.freq, seed=seed)
            fmax.append(r.fmax_mhz)
            print(f"  ({top} seed {seed}: {r.fmax_mhz} MHz, "
                  f"{'cached' if r.from_cache else f'{time.time() - t0:.0f} s'})",
                  file=sys.stderr)
        f = (f"{min(fmax):.1f}" if len(fmax) == 1
             else f"{min(fmax):.1f}..{max(fmax):.1f} ({len(fmax)})")
        print(f"{name:14} {s:>6} {comp.latency:>7} {f:>26} {r.luts:>5} {r.flip_flops:>4} "
              f"{r.carry:>5} {r.dsp:>3}", flush=True)
        if s == deepest[name] and min(fmax) < TARGET_MHZ:
            ok = False
    print("deepest pipelines meet the target on every seed" if ok
          else "a deepest pipeline misses the target on some seed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
