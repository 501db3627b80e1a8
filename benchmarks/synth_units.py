"""Synthesis smoke (issue 3 section 4): every catalogue unit through Yosys generic synthesis.

Each unit is built with its default parameters (or ``--set unit:param=value``), converted
to Verilog and synthesised with :func:`lowbit.fpga.synth.synth` (generic target: no
errors, no latches, Nangate-45-area gate set). Prints one row per unit with the NAND2-
equivalent area, flip-flops, logic depth and cell counts by type; ``--target ice40``
/ ``ecp5`` adds the FPGA columns. Cached results make a second run take seconds.

    python benchmarks/synth_units.py [--target generic ice40 ecp5] [--json FILE] [--no-cache]
"""

import argparse
import json
import sys
import time

from lowbit.cli.table import print_table
from lowbit.fpga import synth as fs
from lowbit.hdl import catalog, manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", nargs="+", default=["generic"], choices=fs.TARGETS)
    ap.add_argument("--units", nargs="+", help="unit names (default: all in the catalogue)")
    ap.add_argument("--set", action="append", default=[], metavar="UNIT:PARAM=VALUE",
                    help="override a parameter of one unit")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)

    all_units = catalog.units()
    names = args.units or list(all_units)
    overrides = {}
    for s in args.set:
        unit, _, kv = s.partition(":")
        k, _, v = kv.partition("=")
        overrides.setdefault(unit, {})[k] = v

    results, failures = [], []
    for name in names:
        unit = catalog.get_unit(name)
        comp, params = unit.build(**overrides.get(name, {}))
        top = name.replace("-", "_")
        text = manifest.to_verilog(comp, top)
        for target in args.target:
            t0 = time.perf_counter()
            try:
                r = fs.synth(text, top, target, use_cache=not args.no_cache)
            except fs.SynthError as e:
                failures.append((name, target, str(e).splitlines()[0]))
                print(f"FAIL {name} ({target}): {e}", file=sys.stderr)
                continue
            results.append({"unit": name, "parameters": params, "seconds": time.perf_counter() - t0,
                            **r.to_dict(), "from_cache": r.from_cache})

    gen = [r for r in results if r["target"] == "generic"]
    if gen:
        types = sorted({t for r in gen for t in r["cells"]})
        rows = [["unit", "area GE", "FF", "depth", *types]]
        for r in gen:
            rows.append([r["unit"], f"{r['area_ge']:.1f}", r["flip_flops"], r["logic_depth"],
                         *[r["cells"].get(t, 0) for t in types]])
        print_table(rows, title="Generic synthesis (Yosys + ABC, Nangate45 X1 areas; "
                                "GE = NAND2_X1 = 0.798 um^2); default parameters")
    for target in [t for t in args.target if t != "generic"]:
        rows = [["unit", "LUT4", "FF", "carry", "DSP", "BRAM", "Fmax MHz"]]
        for r in results:
            if r["target"] == target:
                rows.append([r["unit"], r["luts"], r["flip_flops"], r["carry"], r["dsp"], r["bram"],
                             "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"])
        print_table(rows, title=f"{target}: {results and next((r['extra']['device'] for r in results if r['target'] == target), '')}"
                                " (out-of-context, registered I/O wrapper, nextpnr seed 1)")
    print(f"{len(results)} unit/target runs, {len(failures)} failures, "
          f"{sum(r['from_cache'] for r in results)} from cache, "
          f"{sum(r['seconds'] for r in results):.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
