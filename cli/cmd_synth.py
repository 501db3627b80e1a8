"""``lowbit synth <unit> [unit options] --target generic|ice40|ecp5``: synthesise one unit.

The unit comes from :mod:`lowbit.hdl.catalog`; its parameters become options (``--a``,
``--acc``, ...) exactly as for ``lowbit generate``. The options after the unit name are
parsed by a parser built for that unit (private helper below: the shared
``cli/unit_options.py`` did not exist when this was written), so ``lowbit synth UNIT -h``
lists the unit's own parameters.
"""

import argparse
import json
import sys

__all__ = ["register", "run", "unit_parser"]

from lowbit.cli.main import UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def unit_parser(unit):
    """An argument parser for the synthesis options plus the parameters of ``unit``."""
    p = _Parser(prog=f"lowbit synth {unit.name}",
                description=f"Synthesise {unit.name}: {unit.description}")
    p.add_argument("--target", default="generic", choices=("generic", "ice40", "ecp5"),
                   help="generic gate count (NAND2 equivalents), or iCE40 UP5K / ECP5 85F "
                        "place and route (default generic)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-': stdout)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not update the result cache")
    p.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                   help="FPGA clock constraint for nextpnr (default 100)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--keep", metavar="DIR", help="keep the tool files (Verilog, scripts, logs) in DIR")
    group = p.add_argument_group(f"parameters of {unit.name}")
    for prm in unit.params:
        kw = {"dest": f"param_{prm.name}", "default": None,
              "help": f"{prm.help} (default {prm.default})"}
        kw["metavar"] = ("{" + ",".join(map(str, prm.choices)) + "}" if prm.choices
                         else {"int": "N", "bool": "BOOL", "format": "FORMAT"}.get(prm.kind, "VALUE"))
        group.add_argument(prm.flag, **kw)
    return p


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
    from lowbit.hdl import catalog, manifest
    from lowbit.fpga import synth as fsynth

    unit = catalog.get_unit(args.unit)
    opts = unit_parser(unit).parse_args(args.options)
    values = {prm.name: getattr(opts, f"param_{prm.name}") for prm in unit.params
              if getattr(opts, f"param_{prm.name}") is not None}
    component, resolved = unit.build(**values)
    # record ints/bools as such (the raw CLI values are strings); formats stay names
    kinds = {prm.name: prm for prm in unit.params}
    resolved = {k: (kinds[k].convert(v) if kinds[k].kind in ("int", "bool") else v)
                for k, v in resolved.items()}
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
    if opts.json == "-":
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    table = result.rich_table()
    table.title = f"{unit.name} ({', '.join(f'{k}={v}' for k, v in resolved.items())}) on {opts.target}"
    Console().print(table)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0
