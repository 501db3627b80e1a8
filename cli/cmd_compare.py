"""``lowbit compare``: the FP-vs-INT datapath cost report (see :mod:`lowbit.sim.compare`)."""

import os
import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lowbit.sim import compare as cmp
from lowbit.sim.compare import DEFAULT_UNITS

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
    p.add_argument("--units", default="", help=f"comma-separated subset of: {keys} (default all)")
    p.add_argument("--target", choices=["generic", "ice40", "ecp5"], default="generic",
                   help="add FPGA place-and-route columns (LUTs, carry, DSP, Fmax)")
    p.add_argument("--plot", default="lowbit-compare.png", help="PNG output path ('' for none)")
    p.add_argument("--json", default="", help="also write the results as JSON to this path")
    p.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel (1..16)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    p.add_argument("--node-scale", type=float, default=1.0,
                   help="energy scale factor for another node (1 = 45 nm)")
    p.add_argument("--vdd", type=float, default=0.9, help="supply voltage in V (0.3..1.5)")
    p.add_argument("--freq", type=float, default=100.0, help="FPGA clock constraint in MHz")
    p.add_argument("--energy", choices=("both", "gates"), default="both",
                   help="both: (a) gate-count model and (b) gate-level toggles on random operands "
                        "(a few seconds per unit, cached); gates: (a) only")
    p.add_argument("--mx-k", type=int, default=8,
                   help="block length of the MX dot units (default 8; the MX formats use 32, "
                        "which takes several CPU-minutes per unit to synthesise)")
    p.set_defaults(func=run)


def run(args):
    if args.node_scale <= 0:
        raise ValueError(f"--node-scale must be > 0, not {args.node_scale}")
    if not 0.3 <= args.vdd <= 1.5:
        raise ValueError(f"--vdd must be in 0.3..1.5, not {args.vdd}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"--plot must be a .png path, not {args.plot!r}")
    units = [u.strip() for u in args.units.split(",") if u.strip()]
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
                           freq_mhz=args.freq, mx_k=args.mx_k, toggles=args.energy == "both")
    elapsed = time.perf_counter() - start
    target = "" if args.target == "generic" else f" + {args.target}"
    print_table(cmp.rows_table(rows),
                f"Cost per multiply-accumulate, synthesised with Yosys (generic{target}); "
                f"energy at 45 nm x {args.node_scale:g}, {args.vdd:g} V: (a) gate-count model"
                + ("; (b) gate-level toggles, uniform random operands, zero delay (no glitches)"
                   if args.energy == "both" else ""))
    print(cmp.anchor_statement(rows))
    cached = sum(r.generic.from_cache for r in rows)
    print(f"\n{len(rows)} units, {cached} generic results from the cache, {elapsed:.1f} s")
    if args.plot:
        cmp.plot(rows, args.plot)
        print(f"plot: {os.path.abspath(args.plot)}")
    if args.json:
        with open(args.json, "w") as f:
            f.write(cmp.to_json(rows, args.target))
        print(f"json: {os.path.abspath(args.json)}")
    return 0
