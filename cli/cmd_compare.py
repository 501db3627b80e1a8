"""``lowbit compare``: the FP-vs-INT datapath cost report (see :mod:`lowbit.sim.compare`)."""

import os
import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lowbit.sim import compare as cmp
from lowbit.sim.compare import DEFAULT_UNITS

from .cmd_synth import ENERGY_VIEWS
from .errors import UsageError
from .output import STDOUT, check_output, write_text
from .table import print_table

__all__ = ["register"]


def register(sub):
    keys = ", ".join(u.key for u in DEFAULT_UNITS)
    p = sub.add_parser(
        "compare", help="FP-vs-INT datapath cost report (synthesis of generated units)",
        description="Generate and synthesise INT8, FP8 (E4M3/E5M2 with FP16, FP32 and exact "
                    "accumulators), MXFP8/MXINT8 and OverQ units; print area, flip-flops, logic "
                    "depth and energy per MAC ((a) gate-count model, (b) gate-level toggles) as "
                    "ratios to INT8, write a PNG plot, and compare with "
                    "the published 50-180% finding. Results are cached.")
    p.add_argument("--units", default=None, metavar="LIST",
                   help=f"comma-separated subset of: {keys} (default all)")
    p.add_argument("--target", choices=["generic", "ice40", "ecp5"], default="generic",
                   help="add FPGA place-and-route columns (LUTs, carry, DSP, Fmax)")
    p.add_argument("--plot", default="lowbit-compare.png", metavar="FILE",
                   help="PNG output path (default lowbit-compare.png; '' for none)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the results as JSON to FILE ('-': standard output, instead "
                        "of the table)")
    p.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel (1..16)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    p.add_argument("--node-scale", type=float, default=1.0,
                   help="energy scale factor for another node (1 = 45 nm)")
    p.add_argument("--vdd", type=float, default=0.9, help="supply voltage in V (0.3..1.5)")
    p.add_argument("--freq", type=float, default=100.0, help="FPGA clock constraint in MHz")
    p.add_argument("--energy", choices=ENERGY_VIEWS, default="both",
                   help="energy per MAC from (a) the gate-count model (gates), (b) gate-level "
                        "toggles on uniform random operands (toggles: a few seconds per unit, "
                        "cached), or both (default); the same choices as `lowbit synth --energy`")
    p.add_argument("--mx-k", type=int, default=8,
                   help="block length of the MX dot units (default 8; the MX formats use 32, "
                        "which takes several CPU-minutes per unit to synthesise)")
    p.set_defaults(func=run)


def run(args):
    if args.node_scale <= 0:
        raise ValueError(f"--node-scale must be > 0, not {args.node_scale}")
    if not 0.3 <= args.vdd <= 1.5:
        raise ValueError(f"--vdd must be in 0.3..1.5, not {args.vdd}")
    if not 1 <= args.jobs <= 16:
        raise UsageError(f"--jobs must be an integer from 1 to 16, not {args.jobs}")
    if args.plot:
        check_output("--plot", args.plot, stdout=False, suffix=".png")
    if args.json is not None:
        check_output("--json", args.json)
    units = None
    if args.units is not None:
        units = [u.strip() for u in args.units.split(",")]
        if not all(units):
            raise UsageError(f"--units needs a comma-separated list of unit keys "
                             f"({', '.join(u.key for u in DEFAULT_UNITS)}), not {args.units!r}")
    start = time.perf_counter()
    tty = sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  disable=not tty, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task("generating Verilog", total=None)

        def progress(label, done, total):
            if tty:
                bar.update(task, total=total, completed=done, description=f"synthesised {label}")
            else:
                print(f"[{done}/{total}] synthesised {label}", file=sys.stderr, flush=True)

        rows = cmp.compare(units, args.target, use_cache=not args.no_cache, jobs=args.jobs,
                           progress=progress, node_scale=args.node_scale, vdd=args.vdd,
                           freq_mhz=args.freq, mx_k=args.mx_k, toggles=args.energy != "gates")
    elapsed = time.perf_counter() - start
    # with --json - the JSON is standard output and the report goes to stderr
    report = sys.stderr if args.json == STDOUT else sys.stdout
    target = "" if args.target == "generic" else f" + {args.target}"
    views = {"gates": "(a) gate-count model",
             "toggles": "(b) gate-level toggles, uniform random operands, zero delay (no glitches)"}
    shown = [views[v] for v in ("gates", "toggles") if args.energy in (v, "both")]
    print_table(cmp.rows_table(rows, gates=args.energy != "toggles"),
                f"Cost per multiply-accumulate, synthesised with Yosys (generic{target}); "
                f"energy at 45 nm x {args.node_scale:g}, {args.vdd:g} V: " + "; ".join(shown),
                file=report)
    print(cmp.anchor_statement(rows), file=report)
    cached = sum(r.generic.from_cache for r in rows)
    print(f"\n{len(rows)} units, {cached} generic results from the cache, {elapsed:.1f} s",
          file=report)
    if args.plot:
        cmp.plot(rows, args.plot)
        print(f"plot: {os.path.abspath(args.plot)}", file=report)
    if args.json is not None:
        write_text(args.json, cmp.to_json(rows, args.target) + "\n")
        if args.json != STDOUT:
            print(f"json: {os.path.abspath(args.json)}", file=report)
    return 0
