"""``lowbit synth <unit> [unit options] --target generic|ice40|ecp5``: synthesise one unit.

The unit comes from :mod:`lowbit.hdl.catalog`; its parameters become options (``--a``,
``--acc``, ...) through the shared :mod:`lowbit.cli.unit_options`, exactly as for
``lowbit generate`` and ``lowbit cosim``; ``lowbit synth UNIT -h`` lists them.
"""

import argparse
import json
import sys

__all__ = ["register", "run"]


def _add_common(p):
    p.add_argument("--target", default="generic", choices=("generic", "ice40", "ecp5"),
                   help="generic gate count (NAND2 equivalents), or iCE40 UP5K / ECP5 85F "
                        "place and route (default generic)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-': stdout)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not update the result cache")
    p.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                   help="FPGA clock constraint for nextpnr (default 100)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--keep", metavar="DIR", help="keep the tool files (Verilog, scripts, logs) in DIR")


def register(subparsers):
    p = subparsers.add_parser(
        "synth", help="synthesise a unit: gate count, or FPGA utilisation and Fmax",
        description="Synthesise a catalogue unit with Yosys (generic: NAND2-equivalent area, "
                    "flip-flops, logic depth) or Yosys + nextpnr (ice40/ecp5: LUTs, FFs, carry, "
                    "DSP, BRAM, Fmax). Results are cached on disk. "
                    "`lowbit synth UNIT -h` lists the unit's parameters.",
        add_help=True)
    p.add_argument("unit", help="unit name (see `lowbit generate --list`)")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="--target, --json FILE, --no-cache, --freq, --seed, --keep and the unit's parameters")
    p.set_defaults(func=run)


def run(args):
    from lowbit.cli.unit_options import typed_params, unit_parser, unit_values
    from lowbit.fpga import synth as fsynth
    from lowbit.hdl import catalog, manifest

    unit = catalog.get_unit(args.unit)
    opts = unit_parser(unit, "lowbit synth", _add_common,
                       f"Synthesise {unit.name}: {unit.description}").parse_args(args.options)
    component, resolved = unit.build(**unit_values(opts, unit))
    resolved = typed_params(unit, resolved)
    top = unit.name.replace("-", "_")
    text = manifest.to_verilog(component, top)
    try:
        result = fsynth.synth(text, top, opts.target, use_cache=not opts.no_cache,
                              freq_mhz=opts.freq, seed=opts.seed, keep_dir=opts.keep)
    except fsynth.SynthError as e:
        print(f"lowbit synth: {e}", file=sys.stderr)
        return 1
    doc = {"unit": unit.name, "parameters": resolved, "latency_cycles": getattr(component, "latency", None),
           **result.to_dict(), "from_cache": result.from_cache}
    if result.target == "generic":
        from lowbit.fpga.energy import energy_per_op_pj
        # gate-count energy model calibrated on Horowitz 45 nm, 0.9 V (lowbit.fpga.energy)
        doc["energy_per_cycle_pj_45nm"] = round(energy_per_op_pj(result), 4)
    if opts.json == "-":
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    table = result.rich_table()
    table.title = f"{unit.name} ({', '.join(f'{k}={v}' for k, v in resolved.items())}) on {opts.target}"
    if "energy_per_cycle_pj_45nm" in doc:
        table.add_section()
        table.add_row("energy / cycle (pJ, 45 nm model)", f"{doc['energy_per_cycle_pj_45nm']:.3f}")
    Console().print(table)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0
