"""What stochastic rounding costs in the quantiser (issue 17 section 1): ``sr-quantise`` with
RNE, with SR from the ``rbits`` port and with SR from the internal 16-bit LFSR, for
FP32 -> E4M3 and BF16 -> E2M1, through Yosys generic synthesis (the same flow and cache as
``lowbit synth``).  Prints area (NAND2 equivalents), flip-flops, logic depth and energy per
conversion (the gate-count model of :mod:`lowbit.sim.energy`, 45 nm; one conversion per
cycle), each also as a ratio to the RNE unit of the same pair.

    python benchmarks/sr_quantise_cost.py [--sr-bits 8] [--no-cache]

Equivalent single runs: ``lowbit synth sr-quantise --from fp32 --to e4m3 [--rounding
nearest_even | --random-source port]``.
"""

import argparse

from lowbit.cli.table import print_table
from lowbit.fpga import synth as fs
from lowbit.hdl import catalog, manifest
from lowbit.sim.energy import energy_per_op_pj

PAIRS = (("fp32", "e4m3"), ("bf16", "e2m1"))
VARIANTS = (("RNE", {"rounding": "nearest_even"}),
            ("SR, port rbits", {"random_source": "port"}),
            ("SR, LFSR 16", {"random_source": "lfsr", "lfsr_width": 16}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sr-bits", type=int, default=8)
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    unit = catalog.get_unit("sr-quantise")
    rows = [["conversion", "rounding", "area GE", "x RNE", "FF", "depth", "pJ/conv", "x RNE"]]
    for src, dst in PAIRS:
        base = None
        for label, extra in VARIANTS:
            params = {"in_format": src, "out_format": dst, **extra}
            if extra.get("rounding") != "nearest_even":
                params["sr_bits"] = args.sr_bits
            comp, _ = unit.build(**params)
            text = manifest.to_verilog(comp, "sr_quantise")
            r = fs.synth(text, "sr_quantise", "generic", use_cache=not args.no_cache)
            e = energy_per_op_pj(r)
            base = base or (r.area_ge, e)
            rows.append([f"{src} -> {dst}", label, f"{r.area_ge:.1f}",
                         f"{r.area_ge / base[0]:.2f}", r.flip_flops, r.logic_depth,
                         f"{e:.3f}", f"{e / base[1]:.2f}"])
    print_table(rows, title=f"sr-quantise: RNE vs stochastic rounding (N = {args.sr_bits}), "
                            "Yosys + ABC generic, Nangate45 areas, 45 nm gate-count energy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
