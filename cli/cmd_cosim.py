"""``lowbit cosim <unit> [unit options] [--vectors N] [--sim verilator|icarus] [--seed S]``.

Runs the unit's co-simulation bench (:mod:`lowbit.sim.benches`) with its parameters (the same
options as ``lowbit generate``): the generated Verilog under cocotb against the golden model
(see :mod:`lowbit.sim.cosim`), and prints the report: vectors checked, mismatches with the
first few shown as inputs / expected / got, and the seed and command that reproduce them.
``--json FILE`` writes the report as JSON (``-``: standard output, instead of the text);
``--waves`` re-runs a failing check with waveforms and prints where they are.

Exit status: 0 when every vector matches, 1 on any mismatch, 2 on bad input (unknown unit or
parameter value, no usable simulator, cocotb not installed), 3 when the simulator build or
run itself fails.
"""

import argparse
import secrets

from lowbit.hdl import catalog
from lowbit.sim import benches, cosim

from .errors import ToolFailure, UsageError
from .output import check_output, write_json
from .unit_options import command_line, unit_parser, unit_values

__all__ = ["register", "run"]


def _add_common(parser):
    parser.add_argument("--vectors", metavar="N",
                        help="operations to check, each what one copy of the unit does with "
                             "fresh operands in one cycle (a MAC step, a product, an adder step, "
                             "a block, a PE cycle; for systolic one MAC of the GEMM), rounded up "
                             "to whole cycles of the bench's lanes; default: the unit's own (see "
                             "lowbit.sim.benches)")
    parser.add_argument("--sim", metavar="{verilator,icarus}",
                        help="HDL simulator (default: $LOWBIT_SIM, else Verilator if installed, "
                             "else Icarus)")
    parser.add_argument("--seed", metavar="S",
                        help="seed of the random vectors (default: a fresh one, printed)")
    parser.add_argument("--json", metavar="FILE",
                        help="write the report as JSON to FILE ('-': standard output)")
    parser.add_argument("--waves", action="store_true",
                        help="on a mismatch, run the same vectors again recording waveforms "
                             "and print the waveform files")


def register(subparsers):
    p = subparsers.add_parser(
        "cosim", help="co-simulate a unit's generated Verilog against the golden model",
        description="Generate a catalogue unit, run its Verilog under cocotb (Verilator or "
                    "Icarus) and compare it bit for bit with the golden model. "
                    "`lowbit cosim UNIT -h` lists the unit's parameters. Exit status 0 all "
                    "equal, 1 on any mismatch, 2 on bad input, 3 if the simulator fails.")
    p.add_argument("unit", nargs="?", help="unit name (see `lowbit generate --list`)")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="--vectors N, --sim, --seed S, --json FILE, --waves and the unit's "
                        "parameters")
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
    if opts.json:
        check_output("--json", opts.json)
    if opts.sim is not None and opts.sim not in cosim.SIMULATORS:
        raise ValueError(f"--sim must be one of {', '.join(cosim.SIMULATORS)}, not {opts.sim!r}")
    cosim.require_cocotb()
    try:
        sim = cosim.find_simulator(opts.sim)
    except cosim.SimulatorNotFound as e:
        raise UsageError(str(e)) from None

    values = unit_values(opts, unit)
    _, resolved = unit.resolve(**values)          # bad values fail here, before any build
    try:
        report = benches.cosim(unit.name, values, vectors, seed, sim)
    except cosim.CosimError as e:
        raise ToolFailure(f"{unit.name}: {e}") from None
    if report.command is None:
        extra = ["--sim", sim, "--seed", seed] + (["--vectors", vectors] if vectors else [])
        report.command = command_line("lowbit cosim", unit, resolved, extra)
    waves = []
    if opts.waves and not report.ok:
        with cosim.record_waves() as runs:
            benches.cosim(unit.name, values, vectors, seed, sim)
        waves = [str(p) for p in cosim.waveform_files(runs)]
        report.notes.append("waveforms: " + (", ".join(waves) if waves else
                                             f"none written (run folders: {runs})"))
    if opts.json:
        write_json(opts.json, report.to_dict() | {"waveforms": waves})
    if opts.json != "-":
        print(report.format())
    return 0 if report.ok else 1
