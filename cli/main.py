"""The ``lowbit`` command line.

Each subcommand lives in its own module ``lowbit.cli.cmd_<name>`` exposing
``register(subparsers)``; the module sets ``func`` on its parser with
``parser.set_defaults(func=...)``. ``func(args)`` returns the exit status.

Errors from bad user input (``TypeError``, ``ValueError`` and :class:`UsageError`) become a
one-line message on stderr and exit status 2, never a traceback.
"""

import argparse
import sys

from . import cmd_compare, cmd_cosim, cmd_formats, cmd_fpga, cmd_generate, cmd_simulate, cmd_synth
from .errors import UsageError

__all__ = ["main", "UsageError"]

# Order in which the subcommands appear in ``lowbit --help``.
SUBCOMMANDS = [cmd_formats, cmd_generate, cmd_cosim, cmd_synth, cmd_compare, cmd_simulate, cmd_fpga]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = _Parser(
        prog="lowbit",
        description="Bit-exact models, Amaranth generators, co-simulation and cost reports "
                    "for low-precision neural-network datapaths (INT8, FP8, MX, OverQ).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (TypeError, ValueError, UsageError) as e:
        print(f"lowbit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
