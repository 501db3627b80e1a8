"""``lowbit cosim <unit> [unit options] [--vectors N] [--sim icarus|verilator] [--seed S]``.

Runs the unit's co-simulation bench (:mod:`lowbit.sim.benches`) with its parameters (the same
options as ``lowbit generate``): the generated Verilog under cocotb against the golden model
(see :mod:`lowbit.sim.cosim`), and prints the report: vectors checked,
mismatches with the first few shown as inputs / expected / got, and the seed and command that
reproduce them.

Exit status: 0 when every vector matches, 1 on any mismatch (or when the simulation itself
fails), 2 on bad input (unknown unit or parameter value, no usable simulator).
"""

import argparse
import secrets
import sys

from lowbit.hdl import catalog
from lowbit.sim import benches, cosim

from .errors import UsageError
from .unit_options import command_line, unit_parser, unit_values

__all__ = ["register", "run"]


def _add_common(parser):
    parser.add_argument("--vectors", metavar="N",
                        help="number of random vectors / sequences (default: the unit's own; "
                             "exhaustive units check every input combination)")
    parser.add_argument("--sim", metavar="{verilator,icarus}",
                        help="HDL simulator (default: $LOWBIT_SIM, else Verilator if installed, "
                             "else Icarus)")
    parser.add_argument("--seed", metavar="S",
                        help="seed of the random vectors (default: a fresh one, printed)")


def register(subparsers):
    p = subparsers.add_parser(
        "cosim", help="co-simulate a unit's generated Verilog against the golden model",
        description="Generate a catalogue unit, run its Verilog under cocotb (Verilator or "
                    "Icarus) and compare it bit for bit with the golden model. "
                    "`lowbit cosim UNIT -h` lists the unit's parameters. Exit status 1 on any "
                    "mismatch, 2 on bad input.")
    p.add_argument("unit", nargs="?", help="unit name (see `lowbit generate --list`)")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="--vectors N, --sim, --seed S and the unit's parameters")
    p.set_defaults(func=run)


def _nonneg_int(flag, value, minimum):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be an integer >= {minimum}, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{flag} must be an integer >= {minimum}, not {value!r}")
    return number


def run(args):
    if args.unit is None or args.unit.startswith("-"):
        known = ", ".join(catalog.units()) or "(none)"
        if args.unit in ("-h", "--help"):
            print(f"usage: lowbit cosim UNIT [unit options] [--vectors N] [--sim SIM] [--seed S]\n"
                  f"units: {known}")
            return 0
        raise UsageError(f"missing unit name; known units: {known}")
    unit = catalog.get_unit(args.unit)
    opts = unit_parser(unit, "lowbit cosim", _add_common).parse_args(args.options)
    if unit.name not in benches.BENCHES:
        raise UsageError(f"unit {unit.name!r} has no co-simulation bench yet")
    vectors = None if opts.vectors is None else _nonneg_int("--vectors", opts.vectors, 1)
    seed = secrets.randbelow(2 ** 31) if opts.seed is None else _nonneg_int("--seed", opts.seed, 0)
    if opts.sim is not None and opts.sim not in cosim.SIMULATORS:
        raise ValueError(f"--sim must be one of {', '.join(cosim.SIMULATORS)}, not {opts.sim!r}")
    try:
        sim = cosim.find_simulator(opts.sim)
    except cosim.SimulatorNotFound as e:
        raise UsageError(str(e)) from None

    values = unit_values(opts, unit)
    _, resolved = unit.resolve(**values)          # bad values fail here, before any build
    try:
        report = benches.cosim(unit.name, values, vectors, seed, sim)
    except cosim.CosimError as e:
        print(f"lowbit cosim: {unit.name}: {e}", file=sys.stderr)
        return 1
    if report.command is None:
        extra = ["--sim", sim, "--seed", seed] + (["--vectors", vectors] if vectors else [])
        report.command = command_line("lowbit cosim", unit, resolved, extra)
    print(report.format())
    return 0 if report.ok else 1
