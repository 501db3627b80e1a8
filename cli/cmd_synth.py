"""``lowbit synth <unit> [unit options] --target generic|ice40|ecp5``: synthesise one unit.

The unit comes from :mod:`lowbit.hdl.catalog`; its parameters become options (``--a``,
``--acc``, ...) through the shared :mod:`lowbit.cli.unit_options`, exactly as for
``lowbit generate`` and ``lowbit cosim``; ``lowbit synth UNIT -h`` lists them.
"""

import argparse
import json
import sys

from lowbit.fpga import synth as fsynth
from lowbit.hdl import catalog, manifest
from lowbit.models import formats as fmts
from lowbit.sim import toggle_energy as te
from lowbit.sim.energy import energy_per_op_pj

from .errors import ToolFailure, UsageError
from .output import check_folder, check_output, write_json
from .table import print_table
from .unit_options import typed_params, unit_parser, unit_values

#: What ``--energy`` takes, here and in ``lowbit compare``: the gate-count model, gate-level
#: toggles, or both.
ENERGY_VIEWS = ("gates", "toggles", "both")

__all__ = ["register", "run"]


def _add_common(p):
    p.add_argument("--target", default="generic", choices=("generic", "ice40", "ecp5"),
                   help="generic gate count (NAND2 equivalents), or iCE40 UP5K / ECP5 85F "
                        "place and route (default generic)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the result as JSON to FILE ('-': standard output, instead "
                        "of the table)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not update the result cache")
    p.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                   help="FPGA clock constraint for nextpnr (default 100)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--keep", metavar="DIR",
                   help="keep the tool files (Verilog, scripts, logs) in DIR (the tools run even "
                        "when the result is cached)")
    p.add_argument("--energy", choices=ENERGY_VIEWS, default="gates",
                   help="generic target: energy per cycle from the gate count (gates, default), "
                        "from gate-level toggles on uniform random operands (toggles, "
                        "lowbit.sim.toggle_energy), or both")


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
                   help="--target, --json FILE, --no-cache, --freq, --seed, --keep, --energy and "
                        "the unit's parameters")
    p.set_defaults(func=run)


def run(args):
    unit = catalog.get_unit(args.unit)
    opts = unit_parser(unit, "lowbit synth", _add_common,
                       f"Synthesise {unit.name}: {unit.description}").parse_args(args.options)
    if opts.json:
        check_output("--json", opts.json)
    if opts.keep:
        check_folder("--keep", opts.keep)
    if opts.energy != "gates" and opts.target != "generic":
        raise UsageError(f"--energy {opts.energy} needs --target generic (the gate-level "
                         f"netlist), not --target {opts.target}")
    component, resolved = unit.build(**unit_values(opts, unit))
    resolved = typed_params(unit, resolved)
    top = unit.name.replace("-", "_")
    text = manifest.to_verilog(component, top)
    try:
        result = fsynth.synth(text, top, opts.target, use_cache=not opts.no_cache,
                              freq_mhz=opts.freq, seed=opts.seed, keep_dir=opts.keep)
    except fsynth.SynthError as e:
        raise ToolFailure(str(e)) from None
    doc = {"unit": unit.name, "parameters": resolved, "latency_cycles": getattr(component, "latency", None),
           **result.to_dict(), "from_cache": result.from_cache}
    if result.target == "generic" and opts.energy in ("gates", "both"):
        # gate-count energy model calibrated on Horowitz 45 nm, 0.9 V (lowbit.sim.energy)
        doc["energy_per_cycle_pj_45nm"] = round(energy_per_op_pj(result), 4)
    if result.target == "generic" and opts.energy in ("toggles", "both"):
        doc["energy_toggles_45nm"] = _toggle_energy(component, resolved, unit, text, top, opts)
    if opts.keep:
        doc["kept_tool_files"] = opts.keep
    if opts.json:
        write_json(opts.json, doc)
    if opts.json == "-":
        return 0
    rows = result.rows()
    if "energy_per_cycle_pj_45nm" in doc:
        rows.append(("energy / cycle (pJ, 45 nm model)", f"{doc['energy_per_cycle_pj_45nm']:.3f}"))
    if "energy_toggles_45nm" in doc:
        t = doc["energy_toggles_45nm"]
        rows.append(("energy / cycle (pJ, toggles, random)", f"{t['pj_per_op']:.3f}"))
        for k, v in t["breakdown"].items():
            rows.append((f"  {k.replace('_', '-')}", f"{v:.3f}"))
        rows.append(("  logic toggles / net / cycle", f"{t['toggle_rates']['logic']:.3f}"))
    title = f"{unit.name} ({', '.join(f'{k}={v}' for k, v in resolved.items())}) on {opts.target}"
    print_table(rows, title, align="lr")
    if opts.keep:
        print(f"tool files kept in {opts.keep}")
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
