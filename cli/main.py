"""The ``lowbit`` command line.

Each subcommand lives in its own module ``lowbit.cli.cmd_<name>`` exposing
``register(subparsers)``; the module sets ``func`` on its parser with
``parser.set_defaults(func=...)``. ``func(args)`` returns the exit status.

Exit status, the same for every subcommand:

=====  ===========================================================================================
0      done; every check passed
1      the check failed: a co-simulation mismatch, a GEMM on a board that differs from the golden
       one, an FPGA build that does not meet timing or does not fit the device
2      bad input: an unknown option, a value out of range, an output path that cannot be written,
       a missing optional extra (the message says which to install); one line on stderr
3      a tool or simulator failed to run (synthesis error, simulator build or crash, board build
       failure); the message says where the logs are
4      an internal error of lowbit (a bug): one line on stderr; ``LOWBIT_TRACEBACK=1`` shows the
       traceback
130    interrupted (Ctrl-C); 141 when standard output was closed early (``lowbit ... | head``)
=====  ===========================================================================================
"""

import argparse
import os
import signal
import sys
import threading
import warnings

from amaranth.hdl import UnusedElaboratable

import lowbit
from lowbit.fpga.extras import MissingExtra

from . import (cmd_cache, cmd_compare, cmd_cosim, cmd_formats, cmd_fpga, cmd_generate, cmd_simulate,
               cmd_sweep, cmd_synth)
from .errors import ToolFailure, UsageError

__all__ = ["main", "UsageError", "ToolFailure", "EXIT_FAILED", "EXIT_USAGE", "EXIT_TOOL",
           "EXIT_INTERNAL"]

EXIT_FAILED, EXIT_USAGE, EXIT_TOOL, EXIT_INTERNAL = 1, 2, 3, 4

# Order in which the subcommands appear in ``lowbit --help``.
SUBCOMMANDS = [cmd_formats, cmd_generate, cmd_cosim, cmd_synth, cmd_compare, cmd_simulate, cmd_sweep,
               cmd_fpga, cmd_cache]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = _Parser(
        prog="lowbit",
        description="Bit-exact models, Amaranth generators, co-simulation and cost reports "
                    "for low-precision neural-network datapaths (INT8, FP8, MX, OverQ). Exit "
                    "status: 0 done, 1 a check failed, 2 bad input, 3 a tool failed, 4 internal "
                    "error.")
    parser.add_argument("--version", action="version", version=f"lowbit {lowbit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def _quiet_exit():
    """Objects left half-built by an interrupt or an error must not print warnings at exit."""
    warnings.filterwarnings("ignore", category=UnusedElaboratable)


def _in_finaliser(frame):
    """True when ``frame`` runs inside a ``__del__`` (or code it called): an exception raised
    there is printed as "Exception ignored" and dropped by Python, so a Ctrl-C would be lost."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame):
    """SIGINT raises ``KeyboardInterrupt`` as Python's default does, but never inside a
    finaliser: there it would be swallowed (Amaranth's ``MustUse.__del__`` runs for every
    half-built elaboratable, and a long generation kept running after Ctrl-C). The interrupt is
    then delivered again 20 ms later, from wherever the program is by then."""
    if _in_finaliser(frame):
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        return
    raise KeyboardInterrupt


class _interrupts:
    """Install :func:`_on_sigint` (and the same for its retry timer) for the duration of one
    command; the previous handlers come back afterwards (``main`` is also called in-process)."""

    def __enter__(self):
        self._saved = None
        if threading.current_thread() is threading.main_thread():
            self._saved = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM))
            signal.signal(signal.SIGINT, _on_sigint)
            signal.signal(signal.SIGALRM, _on_sigint)
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGINT, self._saved[0])
            signal.signal(signal.SIGALRM, self._saved[1])
        return False


def _join_negative_values(argv):
    """``--opt -inf`` -> ``--opt=-inf``: argparse takes a token that starts with ``-`` for an
    option unless it looks like a plain negative number (``-3``, ``-0.5``); ``-inf``, ``-1e30``
    and ``-nan`` are values too."""
    out = []
    for tok in argv:
        if (out and out[-1].startswith("--") and "=" not in out[-1] and tok.startswith("-")
                and len(tok) > 1):
            try:
                float(tok)
            except ValueError:
                pass
            else:
                out[-1] = f"{out[-1]}={tok}"
                continue
        out.append(tok)
    return out


def main(argv=None):
    parser = build_parser()
    argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:       # argparse would name the top-level parser; the user typed a subcommand
        where = f"lowbit {args.command}" if getattr(args, "command", None) else "lowbit"
        print(f"{where}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        print("lowbit: error: missing command (lowbit --help lists them)", file=sys.stderr)
        return EXIT_USAGE
    where = f"lowbit {args.command}"
    try:
        with _interrupts():
            return int(args.func(args) or 0)
    except (TypeError, ValueError, UsageError, MissingExtra) as e:
        _quiet_exit()
        print(f"{where}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ToolFailure as e:
        _quiet_exit()
        print(f"{where}: error: {e}", file=sys.stderr)
        return EXIT_TOOL
    except KeyboardInterrupt:
        _quiet_exit()
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (``| head``) went away: no traceback, and no second error at exit
        _quiet_exit()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as e:          # a bug: one line, the traceback on request
        _quiet_exit()
        if os.environ.get("LOWBIT_TRACEBACK"):
            raise
        print(f"{where}: internal error: {type(e).__name__}: {e} (a bug in lowbit; "
              f"LOWBIT_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
