"""``lowbit synth <unit> [unit options] --target generic|ice40|ecp5``: synthesise one unit.

The unit comes from :mod:`lowbit.hdl.catalog`; its parameters become options (``--a``,
``--acc``, ...) through the shared :mod:`lowbit.cli.unit_options`, exactly as for
``lowbit generate`` and ``lowbit cosim``; ``lowbit synth UNIT -h`` lists them.
"""

import argparse
import json
import sys

from rich.console import Console

from lowbit.fpga import synth as fsynth
from lowbit.hdl import catalog, manifest
from lowbit.models import formats as fmts
from lowbit.sim import toggle_energy as te
from lowbit.sim.energy import energy_per_op_pj

from .unit_options import typed_params, unit_parser, unit_values

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
    p.add_argument("--energy", choices=("gates", "toggles"), default="gates",
                   help="generic target: energy per cycle from the gate count (default), or also "
                        "from gate-level toggles on uniform random operands (lowbit.sim.toggle_energy)")


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
        # gate-count energy model calibrated on Horowitz 45 nm, 0.9 V (lowbit.sim.energy)
        doc["energy_per_cycle_pj_45nm"] = round(energy_per_op_pj(result), 4)
    if result.target == "generic" and opts.energy == "toggles":
        doc["energy_toggles_45nm"] = _toggle_energy(component, resolved, unit, text, top, opts)
    if opts.json == "-":
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    table = result.rich_table()
    table.title = f"{unit.name} ({', '.join(f'{k}={v}' for k, v in resolved.items())}) on {opts.target}"
    if "energy_per_cycle_pj_45nm" in doc:
        table.add_section()
        table.add_row("energy / cycle (pJ, 45 nm model)", f"{doc['energy_per_cycle_pj_45nm']:.3f}")
    if "energy_toggles_45nm" in doc:
        t = doc["energy_toggles_45nm"]
        table.add_row("energy / cycle (pJ, toggles, random)", f"{t['pj_per_op']:.3f}")
        for k, v in t["breakdown"].items():
            table.add_row(f"  {k.replace('_', '-')}", f"{v:.3f}")
        table.add_row("  logic toggles / net / cycle", f"{t['toggle_rates']['logic']:.3f}")
    Console().print(table)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


def _toggle_energy(component, resolved, unit, text, top, opts):
    """(b) energy on uniform random operands: 256 streams x 256 cycles (8 not counted)."""
    _, netlist = fsynth.generic_netlist(text, top, use_cache=not opts.no_cache)
    ports = [(p["name"], p["width"]) for p in manifest.ports(component) if p["direction"] == "input"]
    port_formats = {}
    for p in unit.params:                        # a_format -> port a, etc.
        if p.kind == "format" and p.name.endswith("_format"):
            fmt = fmts.get(resolved[p.name])
            if hasattr(fmt, "exp_bits"):
                port_formats[p.name[:-len("_format")]] = fmt
    stim = te.random_stimulus(ports, 256, 256, formats=port_formats)
    r = te.toggle_energy(netlist, stimulus=stim, warmup=8)
    return {"pj_per_op": round(r.pj_per_op, 4),
            "breakdown": {k: round(v, 4) for k, v in r.breakdown.items()},
            "toggle_rates": {k: round(v, 4) for k, v in r.toggle_rates.items()},
            "ops": r.ops, "stimulus": "uniform random codes (finite for FP formats), valid=1, "
                                      "clear/first every 64 cycles; 256 streams x 248 cycles",
            "model": "lowbit.sim.toggle_energy, zero delay, 45 nm, 0.9 V"}
